"""What the SQL repositories share: the reads and the version-checked commit.

``SQLiteRepository`` and ``PostgresRepository`` keep the same tables with the same
columns and answer the same queries; they differ in their driver. :class:`SQLRepository`
holds the queries and the commit once, written against a few hooks each adapter
provides: how a query runs and a write transaction opens (with the driver's errors
translated), the driver's placeholder, how the JSON column is written and read, how
values are stored in columns, and which constraint errors a write can meet.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.process import Process
from salesflow.domain.values import ActivityStatus
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import ChangeSet, Repository
from salesflow.queries import Basis, Page, PipelineTotals, SearchQuery, pipeline_totals
from salesflow.serialization import (
    dump_record,
    encode_row,
    load_record,
    load_versioned,
    record_name,
)

__all__ = ["Cursor", "SQLRepository"]

V = TypeVar("V", Opportunity, Activity)


class Cursor(Protocol):
    """The part of a DB-API cursor the shared writes use (sqlite3's and psycopg's)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Sequence[Any], /) -> object: ...

    def fetchone(self) -> Any: ...


class SQLRepository(Repository):
    """The reads and the commit of a repository kept in SQL tables.

    The tables: ``processes`` (workspace, key, data), ``opportunities`` and
    ``activities`` (workspace, id, version, the query columns of
    :func:`~salesflow.serialization.encode_row`, data) and ``events`` (the same, without
    a version); each has a ``seq`` column in insertion order, and ``data`` holds the
    record's JSON.
    """

    #: The driver's placeholder for one positional parameter.
    _mark: ClassVar[str]
    #: The placeholder for the JSON of a record, in the column ``data``.
    _json_mark: ClassVar[str]
    #: The column ``data`` as JSON text, in a select.
    _json_text: ClassVar[str] = "data"
    #: The driver errors a write meets when a row breaks a rule of its table.
    _constraint_errors: ClassVar[tuple[type[Exception], ...]]

    # -- hooks -----------------------------------------------------------------

    @abc.abstractmethod
    def _query(self, doing: str, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """The rows of one read, driver errors translated (naming what was being done)."""

    @abc.abstractmethod
    def _transaction(self, doing: str) -> contextlib.AbstractContextManager[Cursor]:
        """One write transaction, committed when the block ends without an error and
        rolled back otherwise, driver errors translated (naming what was being done)."""

    @abc.abstractmethod
    def _rule_broken(
        self, error: Exception, table: str, kind: str, record: Opportunity | Activity
    ) -> StorageError:
        """The error for ``record`` breaking a rule of ``table`` (one of
        ``_constraint_errors``, typically an activity naming an opportunity not stored)."""

    def _table(self, name: str) -> str:
        """How statements name one of the tables."""
        return name

    def _column(self, value: object) -> object:
        """A Python value as the driver stores it in a query column."""
        return value

    def _order_history(self, cursor: Cursor, opportunity_ids: Sequence[str]) -> None:
        """Called first in a commit's transaction with the opportunities whose events it
        inserts (sorted): make commits that add to one history commit in the order
        their events are inserted. Nothing to do where writers already take turns."""

    # -- reads -----------------------------------------------------------------

    def processes(self) -> list[Process]:
        rows = self._select("reading processes", "key", "processes", (), order="seq")
        return [
            load_record(data, Process, record_name("process", key, self.workspace))
            for key, data in rows
        ]

    def get_opportunity(self, opportunity_id: str) -> Opportunity | None:
        return self._get(Opportunity, "opportunities", "opportunity", opportunity_id)

    def get_activity(self, activity_id: str) -> Activity | None:
        return self._get(Activity, "activities", "activity", activity_id)

    def opportunities(
        self, *, process: str | None = None, stages: Collection[str] | None = None
    ) -> list[Opportunity]:
        keys = self._stage_keys(stages)
        if keys == ():
            return []
        conditions: list[tuple[str, str, object]] = []
        if process is not None:
            conditions.append(("process", "=", process))
        if keys is not None:
            conditions.append(("stage", "IN", keys))
        rows = self._select(
            "reading opportunities", "id, version", "opportunities", conditions, order="seq"
        )
        return load_versioned(rows, Opportunity, self.workspace)

    def count_by_stage(self, process: str) -> dict[str, int]:
        mark = self._mark
        rows = self._query(
            f"counting the opportunities of process {process!r} by stage",
            f"SELECT stage, count(*) FROM {self._table('opportunities')} "
            f"WHERE workspace = {mark} AND process = {mark} GROUP BY stage",
            (self.workspace, process),
        )
        # Sorted here, not by the database, whose collation may not order as Python does.
        return {stage: int(count) for stage, count in sorted(rows)}

    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        conditions = [
            (column, operator, value)
            for column, operator, value in (
                ("opportunity_id", "=", opportunity_id),
                ("status", "=", status.value if status is not None else None),
                ("owner", "=", owner),
                ("due", ">=", self._bound(due_from, "due_from")),
                ("due", "<=", self._bound(due_to, "due_to")),
            )
            if value is not None
        ]
        rows = self._select(
            "reading activities", "id, version", "activities", conditions, order="due, id"
        )
        return load_versioned(rows, Activity, self.workspace)

    def history(self, opportunity_id: str) -> list[Event]:
        rows = self._select(
            f"reading the history of opportunity {opportunity_id!r}",
            "id",
            "events",
            [("opportunity_id", "=", opportunity_id)],
            order="seq",
        )
        return [
            load_record(data, Event, record_name("event", id_, self.workspace))
            for id_, data in rows
        ]

    def _get(self, type_: type[V], table: str, kind: str, id_: str) -> V | None:
        rows = self._select(f"reading {kind} {id_!r}", "id, version", table, [("id", "=", id_)])
        found = load_versioned(rows, type_, self.workspace)
        return found[0] if found else None

    def _select(
        self,
        doing: str,
        columns: str,
        table: str,
        conditions: Iterable[tuple[str, str, object]],
        *,
        order: str | None = None,
    ) -> list[Any]:
        """Rows of ``columns`` and then the JSON, from this workspace's rows of ``table``
        that meet every ``(column, operator, value)`` condition; with the operator
        ``IN``, the value is a non-empty tuple of the values to match."""
        sql = (
            f"SELECT {columns}, {self._json_text} FROM {self._table(table)} "
            f"WHERE workspace = {self._mark}"
        )
        parameters: list[object] = [self.workspace]
        for column, operator, value in conditions:
            if operator == "IN":
                if not isinstance(value, tuple) or not value:
                    raise TypeError(f"IN on {column} needs a non-empty tuple, got {value!r}")
                sql += f" AND {column} IN ({', '.join(self._mark for _ in value)})"
                parameters.extend(value)
            else:
                sql += f" AND {column} {operator} {self._mark}"
                parameters.append(value)
        if order is not None:
            sql += f" ORDER BY {order}"
        return self._query(doing, sql, parameters)

    def _bound(self, moment: dt.datetime | None, name: str) -> object:
        if moment is None:
            return None
        return self._column(checks.aware(moment, f"activities({name}=...)"))

    # -- the query side --------------------------------------------------------

    def search(self, query: SearchQuery) -> Page:
        return query.page(self.opportunities(process=query.process))

    def pipeline_totals(
        self, process: str, *, basis: Basis, owner: str | None = None
    ) -> PipelineTotals:
        return pipeline_totals(self.opportunities(process=process), basis=basis, owner=owner)

    # -- the unit of work ------------------------------------------------------

    def commit(self, changes: ChangeSet) -> None:
        if not changes:
            return
        # Encoded before the transaction begins, so that no lock waits on Python work.
        processes = [
            (p.key, dump_record(p, record_name("process", p.key, self.workspace)))
            for p in changes.processes
        ]
        opportunities = [(o, self._row(o)) for o in changes.opportunities]
        activities = [(a, self._row(a)) for a in changes.activities]
        events = [self._row(e) for e in changes.events]
        mark = self._mark
        with self._transaction("committing a change set") as cursor:
            self._order_history(
                cursor,
                sorted({e.opportunity_id for e in changes.events if e.opportunity_id is not None}),
            )
            for key, data in processes:
                cursor.execute(
                    f"INSERT INTO {self._table('processes')} (workspace, key, data) "
                    f"VALUES ({mark}, {mark}, {self._json_mark}) "
                    "ON CONFLICT (workspace, key) DO UPDATE SET data = excluded.data",
                    (self.workspace, key, data),
                )
            for opportunity, row in opportunities:
                self._write(cursor, "opportunities", "opportunity", opportunity, row)
            for activity, row in activities:
                self._write(cursor, "activities", "activity", activity, row)
            for activity in changes.deleted_activities:
                cursor.execute(
                    f"DELETE FROM {self._table('activities')} "
                    f"WHERE workspace = {mark} AND id = {mark} AND version = {mark}",
                    (self.workspace, activity.id, activity.version),
                )
                if cursor.rowcount != 1:
                    found = self._stored_version(cursor, "activities", activity.id)
                    raise ConcurrencyError(
                        f"Activity {activity.id!r} is stored at version {found}, so it cannot "
                        f"be deleted from version {activity.version}, a stale read"
                    )
            for row in events:
                cursor.execute(
                    f"INSERT INTO {self._table('events')} ({', '.join(row)}) "
                    f"VALUES ({self._values(row)})",
                    list(row.values()),
                )

    def _write(
        self,
        cursor: Cursor,
        table: str,
        kind: str,
        record: Opportunity | Activity,
        row: dict[str, object],
    ) -> None:
        """Insert version 1 or update from version - 1. A version 1 whose id is taken
        is a ``ValidationError``; any other version mismatch is a conflict."""
        mark = self._mark
        try:
            if record.version == 1:
                cursor.execute(
                    f"INSERT INTO {self._table(table)} ({', '.join(row)}) "
                    f"VALUES ({self._values(row)}) ON CONFLICT (workspace, id) DO NOTHING",
                    list(row.values()),
                )
            else:
                names = [name for name in row if name not in ("workspace", "id")]
                assignments = ", ".join(f"{name} = {self._placeholder(name)}" for name in names)
                cursor.execute(
                    f"UPDATE {self._table(table)} SET {assignments} "
                    f"WHERE workspace = {mark} AND id = {mark} AND version = {mark}",
                    [*(row[name] for name in names), self.workspace, record.id, record.version - 1],
                )
        except self._constraint_errors as error:
            raise self._rule_broken(error, table, kind, record) from error
        if cursor.rowcount != 1 and record.version == 1:
            # The insert met a row with this id (the transaction is rolled back).
            raise ValidationError(f"{kind.capitalize()} {record.id!r}: the id is already taken")
        if cursor.rowcount != 1:
            found = self._stored_version(cursor, table, record.id)
            raise ConcurrencyError(
                f"{kind.capitalize()} {record.id!r} is stored at version {found}, "
                f"so version {record.version} cannot be written "
                f"(it must be one above the stored version; 1 for a new record)"
            )

    def _missing_opportunity(self, activity: Activity) -> StorageError:
        """The error for ``activity`` naming an opportunity this workspace lacks."""
        return StorageError(
            f"Activity {activity.id!r} names opportunity {activity.opportunity_id!r}, "
            f"which is not stored in workspace {self.workspace!r}"
        )

    def _stored_version(self, cursor: Cursor, table: str, id_: str) -> int:
        cursor.execute(
            f"SELECT version FROM {self._table(table)} "
            f"WHERE workspace = {self._mark} AND id = {self._mark}",
            (self.workspace, id_),
        )
        row = cursor.fetchone()
        return int(row[0]) if row is not None else 0

    def _row(self, value: Opportunity | Activity | Event) -> dict[str, object]:
        """The row of a record, its values as the driver stores them."""
        return {name: self._column(v) for name, v in encode_row(value, self.workspace).items()}

    def _values(self, columns: Iterable[str]) -> str:
        """The placeholders for a row of ``columns``, in order."""
        return ", ".join(self._placeholder(name) for name in columns)

    def _placeholder(self, column: str) -> str:
        return self._json_mark if column == "data" else self._mark
