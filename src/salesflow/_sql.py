"""What the SQL repositories share: the reads, the queries and the version-checked commit.

``SQLiteRepository`` and ``PostgresRepository`` keep the same tables with nearly the
same columns and answer the same queries; they differ in their driver and in how they
store amounts. :class:`SQLRepository` holds the queries and the commit once, written
against a few hooks each adapter provides: how a query runs and a read or write
transaction opens (with the driver's errors translated), the driver's placeholder, how
the JSON column is written and read, how values are stored in columns, how a sorted
column puts its empty values last, and how the pipeline's sums are taken exactly.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import decimal
import json
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import attrs
from moneyed import Money

from salesflow import queries
from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.process import Process
from salesflow.domain.values import ActivityStatus, Status
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import ChangeSet, PendingCall, Repository
from salesflow.queries import (
    Basis,
    ClosedDeal,
    DealState,
    ForecastQuery,
    ForecastRow,
    ForecastTotals,
    Page,
    PipelineTotals,
    Revision,
    SearchQuery,
    StageTotal,
)
from salesflow.serialization import (
    converter,
    decode_detail,
    dump_record,
    encode_row,
    load_event,
    load_record,
    load_versioned,
    record_name,
)

__all__ = [
    "Cursor",
    "GroupSum",
    "PipelineGroup",
    "SQLRepository",
    "ThreadConnections",
    "exact_decimal",
    "micro_units",
]

V = TypeVar("V", Opportunity, Activity)
C = TypeVar("C")

#: One group of the pipeline's sums: (paused, stage, currency, count, the sum of the
#: amounts in micro-units, the sum of amount x probability in micro-units).
PipelineGroup = tuple[bool, str, str, int, int, int]

#: One group of exactly summed opportunities: (the group's key values, count, the sum
#: of the values in micro-units, the sum of value x probability in micro-units).
GroupSum = tuple[tuple[Any, ...], int, int, int]

#: How many ids one ``IN (...)`` list holds at most.
_CHUNK = 500

#: The status of an opportunity that is paused, as stored.
PAUSED = Status.PAUSED.value


class Cursor(Protocol):
    """The part of a DB-API cursor the shared code uses (sqlite3's and psycopg's)."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Sequence[Any], /) -> object: ...

    def executemany(self, query: str, params: Iterable[Sequence[Any]], /) -> object: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


#: Exact arithmetic for :func:`micro_units`: amounts of fewer digits than this precision
#: are scaled without rounding, whatever context the host application set.
_SCALING = decimal.Context(prec=60)


def micro_units(amount: Decimal) -> int:
    """An amount with at most six decimal places as an exact integer of millionths."""
    if amount.is_finite() and amount.adjusted() < 40:  # scaled exactly (60 digits)
        scaled = amount.scaleb(checks.AMOUNT_PLACES, _SCALING)
        whole = int(scaled)
        if scaled != whole:
            raise ValueError(f"{amount} has more than {checks.AMOUNT_PLACES} decimal places")
        return whole
    sign, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{amount} is not a finite amount")
    units: int = int("".join(map(str, digits)) or "0")
    shift = exponent + checks.AMOUNT_PLACES
    if shift >= 0:
        units *= 10**shift
    else:
        units, rest = divmod(units, 10**-shift)
        if rest:
            raise ValueError(f"{amount} has more than {checks.AMOUNT_PLACES} decimal places")
    return -units if sign else units


def exact_decimal(units: int, places: int) -> Decimal:
    """``units`` x 10^-places as a Decimal, exactly (no context rounding), without
    trailing zeros after the decimal point."""
    while places > 0 and units % 10 == 0 and units:
        units //= 10
        places -= 1
    if units == 0:
        places = 0
    return Decimal(f"{units}E-{places}")


class ThreadConnections(Generic[C]):
    """One connection per thread, and a :meth:`close` that is safe at any time.

    A thread marks its connection in use for the length of one operation (a query, a
    transaction, a command block) with :meth:`use`. :meth:`close` refuses all new
    work at once and closes the idle connections; a connection in use is left to its
    thread, which closes it when its operation ends. So no connection is ever closed
    under a thread that is using it (which, with sqlite3, can crash the interpreter).
    """

    def __init__(
        self,
        name: Callable[[], str],
        connect: Callable[[], C],
        disconnect: Callable[[C], None],
        usable: Callable[[C], bool] = lambda connection: True,
    ) -> None:
        self._name = name
        self._connect = connect
        self._disconnect = disconnect
        self._usable = usable
        #: This thread's connection (attribute ``connection``) and how deeply it is
        #: in use (attribute ``depth``).
        self.local = threading.local()
        self._lock = threading.Lock()
        #: Every connection opened and not yet closed.
        self._open: list[C] = []
        #: The ids of the connections in use (each alive: in ``_open`` or a thread's).
        self._busy: set[int] = set()
        self.closed = False

    def _refuse(self) -> StorageError:
        return StorageError(f"{self._name()} is closed")

    def current(self) -> C:
        """This thread's connection, opened if there is none (or it is unusable)."""
        with self._lock:
            if self.closed:
                raise self._refuse()
            connection: C | None = getattr(self.local, "connection", None)
            in_use: int = getattr(self.local, "depth", 0)
            if connection is not None and (in_use or self._usable(connection)):
                return connection
        if connection is not None:
            self.forget(connection)
        connection = self._connect()
        with self._lock:
            if not self.closed:
                self._open.append(connection)
                self.local.connection = connection
                return connection
        self._disconnect(connection)
        raise self._refuse()

    @contextlib.contextmanager
    def use(self) -> Iterator[C]:
        """This thread's connection, in use until the block ends (then closed, if
        :meth:`close` was called meanwhile); StorageError once closed."""
        depth: int = getattr(self.local, "depth", 0)
        if depth:  # nested in this thread's operation: its connection, still in use
            self.local.depth = depth + 1
            try:
                yield self.local.connection
            finally:
                self.local.depth = depth
            return
        while True:
            connection = self.current()
            with self._lock:
                if self.closed:
                    raise self._refuse()
                if getattr(self.local, "connection", None) is connection:
                    self._busy.add(id(connection))
                    self.local.depth = 1
                    break
        try:
            yield connection
        finally:
            with self._lock:
                self.local.depth = 0
                self._busy.discard(id(connection))
                doomed = self.closed and connection in self._open
                if doomed:
                    self._open.remove(connection)
                    self.local.connection = None
            if doomed:
                self._disconnect(connection)

    def forget(self, connection: C) -> None:
        """Close ``connection`` (this thread's, found broken); the thread's next
        operation opens another."""
        with self._lock:
            if connection not in self._open:
                return
            self._open.remove(connection)
        self._disconnect(connection)

    def close(self) -> None:
        """Refuse new work; close the idle connections now and leave each one in use
        to its thread, which closes it when its operation ends. Idempotent; safe from
        any thread at any time."""
        with self._lock:
            self.closed = True
            idle = [c for c in self._open if id(c) not in self._busy]
            self._open = [c for c in self._open if id(c) in self._busy]
        for connection in idle:
            self._disconnect(connection)


class SQLRepository(Repository):
    """The reads, queries and commit of a repository kept in SQL tables.

    The tables: ``processes`` (workspace, key, data), ``opportunities`` and
    ``activities`` (workspace, id, version, the query columns of
    :func:`~salesflow.serialization.encode_row`, data) and ``events`` (the same, without
    a version); each has a ``seq`` column in insertion order, and ``data`` holds the
    record's JSON. Beside them, ``opportunity_related`` holds each opportunity's
    related ids (for ``search(related_id=...)``), written in the same transaction as
    the opportunity, ``process_versions`` one counter per workspace that each commit
    writing a process moves on, and ``process_history`` every definition of each
    process with its ``defined_at`` (for reports as of a past moment).

    Each event also has its ``position`` in the workspace's change feed, given at
    commit by :meth:`_next_positions`, with a unique index on (workspace, position).
    ``outbox`` holds the pending outbound calls: workspace, id, ``seq`` (queue order),
    ``attempts``, ``lease_until`` (None: free) and ``last_error`` as columns, and the
    call with the opportunity it concerns as JSON in ``data``.
    """

    #: The driver's placeholder for one positional parameter.
    _mark: ClassVar[str]
    #: The placeholder for the JSON of a record, in the column ``data``.
    _json_mark: ClassVar[str]
    #: The column ``data`` as JSON text, in a select.
    _json_text: ClassVar[str] = "data"
    #: The driver errors a write meets when a row breaks a rule of its table.
    _constraint_errors: ClassVar[tuple[type[Exception], ...]]
    #: Whether an update sets only the columns whose value changes (see ``_changed``).
    _set_changed_only: ClassVar[bool] = False
    #: The columns that order opportunities by value, most significant first.
    _value_order: ClassVar[tuple[str, ...]] = ("value_amount",)

    #: This thread's state: the adapter's connection, and the cursor of the open
    #: :meth:`command` block (attribute ``command``), if any.
    _local: threading.local

    # -- hooks -----------------------------------------------------------------

    @abc.abstractmethod
    def _translated(self, doing: str) -> contextlib.AbstractContextManager[None]:
        """Driver errors raised inside the block turned into salesflow's (naming what
        was being done)."""

    @abc.abstractmethod
    def _query(self, doing: str, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """The rows of one read, driver errors translated (naming what was being done)."""

    @abc.abstractmethod
    def _transaction(self, doing: str) -> contextlib.AbstractContextManager[Cursor]:
        """One write transaction, committed when the block ends without an error and
        rolled back otherwise, driver errors translated (naming what was being done)."""

    @abc.abstractmethod
    def _snapshot(self, doing: str) -> contextlib.AbstractContextManager[Cursor]:
        """One read-only transaction whose reads all see the same committed state,
        driver errors translated (naming what was being done)."""

    @abc.abstractmethod
    def _rule_broken(
        self, error: Exception, table: str, kind: str, record: Opportunity | Activity
    ) -> StorageError:
        """The error for ``record`` breaking a rule of ``table`` (one of
        ``_constraint_errors``, typically an activity naming an opportunity not stored)."""

    @abc.abstractmethod
    def _pipeline_groups(
        self, cursor: Cursor, process: str, *, basis: Basis, owner: str | None
    ) -> list[PipelineGroup]:
        """The pipeline's sums of ``process`` (of ``owner``), grouped by whether the
        opportunity is paused, its stage and the currency of its amount (the annual
        value where ``basis`` says so and one is set, else the value), exactly."""

    @abc.abstractmethod
    def _group_sums(
        self, cursor: Cursor, keys: Sequence[str], where: str, parameters: Sequence[object]
    ) -> list[GroupSum]:
        """The opportunities meeting ``where`` (SQL over the opportunities table, with
        ``parameters``) grouped by the SQL expressions ``keys``: per group its count and
        the exact sums of the values and of value x probability, in the database."""

    @abc.abstractmethod
    def _json_string(self, column: str, *path: str) -> str:
        """SQL reading the text (a JSON string) at ``path`` of a JSON column."""

    @abc.abstractmethod
    def _json_object(self, column: str, *path: str) -> str:
        """SQL reading the JSON object at ``path`` of a JSON column (None if missing);
        the driver hands it out as JSON text or as a dict."""

    @abc.abstractmethod
    def _month(self, column: str) -> str:
        """SQL giving the month (``YYYY-MM``) of a date column."""

    @abc.abstractmethod
    def _text_filter(self, needle: str) -> tuple[str, list[object]]:
        """A condition that an opportunity's ``search_text`` holds ``needle`` as a
        substring (compared as given: no pattern characters), and its parameters."""

    def _searched(self, query: SearchQuery) -> str:
        """What the FROM clause of ``query``'s statements names: the opportunities
        table (with the index to use, where the driver knows better than its planner)."""
        return self._table("opportunities")

    def _table(self, name: str) -> str:
        """How statements name one of the tables."""
        return name

    def _column(self, value: object) -> object:
        """A Python value as the driver stores it in a query column."""
        return value

    def _storage_row(self, columns: dict[str, Any]) -> dict[str, object]:
        """The columns of :func:`encode_row` as this driver's table stores them."""
        return {name: self._column(value) for name, value in columns.items()}

    def _nulls_last(self, expression: str, descending: bool, *, indexed: bool) -> list[str]:
        """ORDER BY terms sorting by ``expression`` with empty values last in either
        direction; ``indexed``: the expression is a column an index may order by."""
        return [f"{expression} {'DESC' if descending else 'ASC'} NULLS LAST"]

    def _order_history(self, cursor: Cursor, opportunity_ids: Sequence[str]) -> None:
        """Called first in a commit's transaction with the stored opportunities whose
        events it inserts (sorted): make commits that add to one history commit in the
        order their events are inserted. Nothing to do where writers already take
        turns. Opportunities the change set creates are left out: no other transaction
        can write their history before this one commits."""

    @abc.abstractmethod
    def _next_positions(self, cursor: Cursor, count: int) -> int:
        """Called last in a commit's transaction that inserts ``count`` events: the
        position of the first of them, the others following one by one. It must hand
        out positions in commit order: a transaction that commits later gets higher
        ones, and none commits a position lower than one already readable."""

    @abc.abstractmethod
    def _claimable(self) -> str:
        """What ends the SELECT that picks the outbound calls to claim, so that a row
        another claimer is taking is passed over (``FOR UPDATE SKIP LOCKED``), or
        nothing where writers take turns."""

    def _hold(self, cursor: Cursor, opportunity_id: str) -> None:
        """Called first in a :meth:`command` block's transaction: make other writers of
        ``opportunity_id`` wait until it ends. Nothing to do where writers already
        take turns."""

    def _taken_meanwhile(self, cursor: Cursor, table: str, ids: Sequence[str]) -> list[str]:
        """Of ``ids``, those a concurrent transaction stored while this one inserted a
        batch (where writers take turns, none can be)."""
        return list(ids)

    # -- command blocks --------------------------------------------------------

    def command(self, opportunity_id: str | None) -> contextlib.AbstractContextManager[None]:
        """One write transaction on this thread's connection, open for the block: the
        reads and the commit made inside it run in it (see ``Repository.command``)."""
        return self._command(opportunity_id)

    @contextlib.contextmanager
    def _command(self, opportunity_id: str | None) -> Iterator[None]:
        if self._block() is not None:  # nested: join the open block
            yield
            return
        doing = "running a command"
        if opportunity_id is not None:
            doing += f" on opportunity {opportunity_id!r}"
        with self._transaction(doing) as cursor:
            if opportunity_id is not None:
                self._hold(cursor, opportunity_id)
            self._local.command = cursor
            try:
                yield
            finally:
                self._local.command = None

    def _block(self) -> Cursor | None:
        """The cursor of this thread's open command block, if any."""
        block: Cursor | None = getattr(self._local, "command", None)
        return block

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[Cursor]:
        """A write transaction of its own, or, inside a command block, a savepoint of
        the block's: a write that fails undoes its own statements only, and the block's
        end commits the rest."""
        block = self._block()
        if block is None:
            with self._transaction(doing) as cursor:
                yield cursor
            return
        with self._translated(doing):
            block.execute("SAVEPOINT salesflow_commit", ())
            try:
                yield block
            except BaseException:
                # Where even this fails, the block is broken and rolls back as a whole.
                with contextlib.suppress(Exception):
                    block.execute("ROLLBACK TO SAVEPOINT salesflow_commit", ())
                    block.execute("RELEASE SAVEPOINT salesflow_commit", ())
                raise
            block.execute("RELEASE SAVEPOINT salesflow_commit", ())

    @contextlib.contextmanager
    def _reading(self, doing: str) -> Iterator[Cursor]:
        """A read-only snapshot, or, inside a command block, the block's transaction."""
        block = self._block()
        if block is None:
            with self._snapshot(doing) as cursor:
                yield cursor
            return
        with self._translated(doing):
            yield block

    # -- reads -----------------------------------------------------------------

    def processes(self) -> list[Process]:
        rows = self._select("reading processes", "key", "processes", (), order="seq")
        return [
            load_record(data, Process, record_name("process", key, self.workspace))
            for key, data in rows
        ]

    def processes_version(self) -> int:
        rows = self._query(
            "reading the version of the processes",
            f"SELECT version FROM {self._table('process_versions')} WHERE workspace = {self._mark}",
            (self.workspace,),
        )
        return int(rows[0][0]) if rows else 0

    def process_as_of(self, key: str, at: dt.datetime) -> Process | None:
        mark = self._mark
        rows = self._query(
            f"reading process {key!r} as defined at {at}",
            f"SELECT {self._json_text} FROM {self._table('process_history')} "
            f"WHERE workspace = {mark} AND key = {mark} AND defined_at <= {mark} "
            "ORDER BY defined_at DESC, seq DESC LIMIT 1",
            (self.workspace, key, self._column(checks.aware(at, "process_as_of(at)"))),
        )
        if not rows:
            return None
        return load_record(rows[0][0], Process, record_name("process", key, self.workspace))

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
            "id, position",
            "events",
            [("opportunity_id", "=", opportunity_id)],
            order="seq",
        )
        return self._events(rows)

    def changes(self, after: int, limit: int) -> list[Event]:
        mark = self._mark
        rows = self._query(
            f"reading the change feed after position {after}",
            f"SELECT id, position, {self._json_text} FROM {self._table('events')} "
            f"WHERE workspace = {mark} AND position > {mark} ORDER BY position LIMIT {mark}",
            (self.workspace, after, limit),
        )
        return self._events(rows)

    def _events(self, rows: Iterable[Sequence[Any]]) -> list[Event]:
        """Events from ``(id, position, data)`` rows."""
        return [
            load_event(data, int(position), record_name("event", id_, self.workspace))
            for id_, position, data in rows
        ]

    # -- the outbox ------------------------------------------------------------

    def claim_calls(
        self,
        *,
        now: dt.datetime,
        until: dt.datetime,
        limit: int,
        after: int = 0,
        ids: Collection[str] | None = None,
    ) -> list[PendingCall]:
        """One short write transaction: pick the free calls (passing over those
        another claimer is taking), lease them, and return them; the port is called
        after it has committed."""
        wanted = None if ids is None else sorted(set(ids))
        if limit <= 0 or wanted == []:
            return []
        if wanted is not None and len(wanted) > _CHUNK:  # one claim per chunk of ids
            claimed: list[PendingCall] = []
            for start in range(0, len(wanted), _CHUNK):
                claimed.extend(
                    self.claim_calls(
                        now=now,
                        until=until,
                        limit=limit - len(claimed),
                        after=after,
                        ids=wanted[start : start + _CHUNK],
                    )
                )
            return sorted(claimed, key=lambda call: call.seq)
        mark = self._mark
        table = self._table("outbox")
        sql = (
            f"SELECT id, attempts, seq, {self._json_text} FROM {table} "
            f"WHERE workspace = {mark} AND seq > {mark} "
            f"AND (lease_until IS NULL OR lease_until <= {mark})"
        )
        parameters: list[object] = [self.workspace, after, self._column(now)]
        if wanted is not None:
            sql += f" AND id IN ({self._marks(len(wanted))})"
            parameters.extend(wanted)
        sql += f" ORDER BY seq LIMIT {mark} {self._claimable()}"
        parameters.append(limit)
        with self._writing("claiming outbound calls") as cursor:
            cursor.execute(sql, parameters)
            rows = cursor.fetchall()
            if rows:
                cursor.executemany(
                    f"UPDATE {table} SET lease_until = {mark}, attempts = attempts + 1 "
                    f"WHERE workspace = {mark} AND id = {mark}",
                    [(self._column(until), self.workspace, row[0]) for row in rows],
                )
        return [self._load_call(id_, attempts + 1, seq, data) for id_, attempts, seq, data in rows]

    def finish_call(self, call_id: str) -> None:
        mark = self._mark
        with self._writing(f"marking outbound call {call_id!r} made") as cursor:
            cursor.execute(
                f"DELETE FROM {self._table('outbox')} WHERE workspace = {mark} AND id = {mark}",
                (self.workspace, call_id),
            )

    def release_call(self, call_id: str, error: str) -> None:
        mark = self._mark
        with self._writing(f"releasing outbound call {call_id!r}") as cursor:
            cursor.execute(
                f"UPDATE {self._table('outbox')} SET lease_until = NULL, last_error = {mark} "
                f"WHERE workspace = {mark} AND id = {mark}",
                (error, self.workspace, call_id),
            )

    def _load_call(self, id_: str, attempts: int, seq: int, data: str | bytes) -> PendingCall:
        record = record_name("outbound call", id_, self.workspace)
        call = load_record(data, PendingCall, record)
        if call.id != id_:
            raise StorageError(f"Stored {record} is inconsistent: its data says id {call.id!r}")
        return attrs.evolve(call, attempts=int(attempts), seq=int(seq))

    def _call_row(self, call: PendingCall) -> tuple[object, ...]:
        """The row of a call queued by a commit: workspace, id, kind, opportunity_id,
        action_id, queued_at and the JSON (without its attempts and seq)."""
        record = record_name("outbound call", call.id, self.workspace)
        try:
            data = converter.unstructure(call)
            del data["attempts"], data["seq"]
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError, ArithmeticError) as error:
            raise StorageError(f"{record} cannot be stored: {error}") from error
        return (
            self.workspace,
            call.id,
            call.kind.value,
            call.opportunity.id,
            call.action_id,
            self._column(call.queued_at),
            text,
        )

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
                sql += f" AND {column} IN ({self._marks(len(value))})"
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
        """One read transaction: the ids of the page (filtered, ordered and cut in the
        database), the number of matches when the page does not tell it, and the JSON
        of the page's opportunities -- the only ones decoded."""
        found = self._search_filter(query)
        if found is None:
            return Page(items=(), total=0)
        where, parameters = found
        table = self._table("opportunities")
        searched = self._searched(query)
        mark = self._mark
        ids: list[str] = []
        rows: list[Any] = []
        with self._reading("searching opportunities") as cursor:
            if query.limit > 0:
                order, order_parameters = self._search_order(query)
                cursor.execute(
                    f"SELECT id FROM {searched} WHERE {where} ORDER BY {order} "
                    f"LIMIT {mark} OFFSET {mark}",
                    [*parameters, *order_parameters, query.limit, query.offset],
                )
                ids = [row[0] for row in cursor.fetchall()]
            if 0 < len(ids) < query.limit or (not ids and query.limit > 0 and query.offset == 0):
                total = query.offset + len(ids)  # the page holds the last match
            else:
                cursor.execute(f"SELECT count(*) FROM {searched} WHERE {where}", parameters)
                total = int(cursor.fetchone()[0])
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                cursor.execute(
                    f"SELECT id, version, {self._json_text} FROM {table} "
                    f"WHERE workspace = {mark} AND id IN ({self._marks(len(chunk))})",
                    [self.workspace, *chunk],
                )
                rows.extend(cursor.fetchall())
        by_id = {row[0]: row for row in rows}
        items = load_versioned((by_id[i] for i in ids), Opportunity, self.workspace)
        return Page(items=tuple(items), total=total)

    def _search_filter(self, query: SearchQuery) -> tuple[str, list[object]] | None:
        """The WHERE clause of ``query`` and its parameters; None when it can match
        nothing (an empty collection of stages or statuses)."""
        mark = self._mark
        terms = [f"workspace = {mark}"]
        parameters: list[object] = [self.workspace]
        for column, value in (
            ("process", query.process),
            ("owner", query.owner),
            ("customer_id", query.customer_id),
        ):
            if value is not None:
                terms.append(f"{column} = {mark}")
                parameters.append(value)
        statuses = None if query.statuses is None else {s.value for s in query.statuses}
        for column, values in (("stage", query.stages), ("status", statuses)):
            if values is None:
                continue
            if not values:
                return None
            terms.append(f"{column} IN ({self._marks(len(values))})")
            parameters.extend(sorted(values))
        if query.related_id is not None:
            terms.append(
                f"id IN (SELECT opportunity_id FROM {self._table('opportunity_related')} "
                f"WHERE workspace = {mark} AND related_id = {mark})"
            )
            parameters.extend((self.workspace, query.related_id))
        if query.close_from is not None:
            terms.append(f"expected_close >= {mark}")
            parameters.append(self._column(query.close_from))
        if query.close_to is not None:
            terms.append(f"expected_close <= {mark}")
            parameters.append(self._column(query.close_to))
        if query.overdue is not None:
            # Never NULL: a deal without a close date is simply not overdue.
            overdue = (
                f"(status = {mark} AND expected_close IS NOT NULL AND expected_close < {mark})"
            )
            terms.append(overdue if query.overdue else f"NOT {overdue}")
            parameters.extend((Status.OPEN.value, self._column(query.today)))
        if query.text:
            text, more = self._text_filter(query.text.casefold())
            terms.append(text)
            parameters.extend(more)
        return " AND ".join(terms), parameters

    def _search_order(self, query: SearchQuery) -> tuple[str, list[object]]:
        """The ORDER BY of ``query`` and its parameters: its key with empty values last,
        then the id."""
        key, descending = query.order_key, query.descending
        terms: list[str] = []
        parameters: list[object] = []
        if key == "stage":
            rank, parameters = self._stage_rank(query)
            if rank is not None:
                terms = self._nulls_last(rank, descending, indexed=False)
        elif key == "expected_close":
            terms = self._nulls_last("expected_close", descending, indexed=True)
        else:
            columns = {
                "value": self._value_order,
                "created_at": ("created_at",),
                "title": ("sort_title",),
                "probability": ("probability",),
            }[key]  # never empty: a key the caller did not check fails loudly
            terms = [f"{column} DESC" if descending else column for column in columns]
        return ", ".join([*terms, "id"]), parameters

    def _stage_rank(self, query: SearchQuery) -> tuple[str | None, list[object]]:
        """A CASE giving each opportunity its stage's place in its process (NULL for a
        stage the processes do not have), or None when no stage has a place."""
        by_process: dict[str, list[tuple[str, int]]] = {}
        for (process, stage), rank in sorted(query.stage_order.items()):
            if query.process is None or process == query.process:
                by_process.setdefault(process, []).append((stage, rank))
        if not by_process:
            return None, []
        mark = self._mark
        parts = ["CASE process"]
        parameters: list[object] = []
        for process, ranks in by_process.items():
            parts.append(f"WHEN {mark} THEN CASE stage")
            parameters.append(process)
            for stage, rank in ranks:
                parts.append(f"WHEN {mark} THEN {int(rank)}")
                parameters.append(stage)
            parts.append("END")
        parts.append("END")
        return f"({' '.join(parts)})", parameters

    def pipeline_totals(
        self, process: str, *, basis: Basis, owner: str | None = None
    ) -> PipelineTotals:
        with self._reading(f"summing the pipeline of process {process!r}") as cursor:
            groups = self._pipeline_groups(cursor, process, basis=basis, owner=owner)
        paused = 0
        sums: dict[tuple[str, str], list[int]] = {}
        for is_paused, stage, currency, count, amount, weighted in groups:
            if is_paused:
                paused += int(count)
                continue
            row = sums.setdefault((stage, currency), [0, 0, 0])
            row[0] += int(count)
            row[1] += amount
            row[2] += weighted
        return PipelineTotals(
            rows=tuple(
                StageTotal(
                    stage,
                    currency,
                    count,
                    exact_decimal(amount, checks.AMOUNT_PLACES),
                    # amount x probability / 100: two more places, exactly.
                    exact_decimal(weighted, checks.AMOUNT_PLACES + 2),
                )
                for (stage, currency), (count, amount, weighted) in sorted(sums.items())
            ),
            paused=paused,
        )

    # -- reports ---------------------------------------------------------------

    def revision(self, process: str | None, at: dt.datetime) -> Revision:
        """Two reads in one snapshot, both led by the index of the events by time: the
        events recorded after ``at`` (whether each is a creation, and the changes it
        recorded), and the report columns of the opportunities they concern. Only the
        old value of the first change of each report field is decoded."""
        mark, table = self._mark, self._table("opportunities")
        moment = self._column(checks.aware(at, "revision(at)"))
        events = self._table("events")
        where = f"e.workspace = {mark} AND e.at > {mark}"
        parameters: list[object] = [self.workspace, moment]
        chosen = (
            f"o.workspace = {mark} "
            f"AND o.id IN (SELECT e.opportunity_id FROM {events} e WHERE {where})"
        )
        if process is not None:
            chosen += f" AND o.process = {mark}"
        with self._reading(f"revising the reports as of {at}") as cursor:
            changed = self._json_object("e.data", "details", "changes", "value")
            cursor.execute(
                f"SELECT e.opportunity_id, e.kind = 'created', "
                f"CASE WHEN e.kind <> 'created' THEN {changed} END "
                f"FROM {events} e WHERE {where} ORDER BY e.seq",
                parameters,
            )
            later = cursor.fetchall()
            cursor.execute(
                "SELECT o.id, o.process, o.stage, o.status, o.owner, o.value_currency, "
                "o.value_amount, o.annual_amount, o.annual_currency, o.probability, "
                f"o.expected_close, o.closed_on, o.created_at FROM {table} o WHERE {chosen}",
                [self.workspace, *parameters, *([process] if process is not None else [])],
            )
            rows = cursor.fetchall()
        created: set[str] = set()
        earlier: dict[str, dict[str, Any]] = {}
        for opportunity_id, is_creation, raw in later:
            if is_creation:
                created.add(opportunity_id)
            if raw is None or opportunity_id in created:
                continue
            found = json.loads(raw) if isinstance(raw, str | bytes) else raw
            first = earlier.setdefault(opportunity_id, {})
            for name in queries.STATE_FIELDS:
                if name in found and name not in first:
                    first[name] = _old_value(found[name])
        now: list[DealState] = []
        then: list[DealState] = []
        for (
            id_,
            key,
            stage,
            status,
            owner,
            code,
            value,
            annual,
            annual_code,
            probability,
            close,
            closed,
            created_at,
        ) in rows:
            fields = {
                "id": id_,
                "process": key,
                "stage": stage,
                "status": Status(status),
                "owner": owner,
                "currency": code,
                "value": _decimal(value),
                "annual_value": None if annual is None else _decimal(annual),
                "annual_currency": annual_code,
                "probability": int(probability),
                "expected_close": _day(close),
                "closed_on": _day(closed),
                "created_at": _moment(created_at),
            }
            now.append(DealState(**fields))
            if id_ not in created:
                then.append(DealState(**queries.unwind(fields, earlier.get(id_, {}))))
        return Revision(tuple(now), tuple(then))

    def forecast_totals(self, query: ForecastQuery) -> ForecastTotals:
        """The open and the won deals of the period summed by group and currency in
        the database; with ``query.deals``, the open deals' values and probabilities."""
        mark = self._mark
        where = f"workspace = {mark}"
        parameters: list[object] = [self.workspace]
        for column, value in (("process", query.process), ("owner", query.owner)):
            if value is not None:
                where += f" AND {column} = {mark}"
                parameters.append(value)
        bounds = [self._column(query.start), self._column(query.end)]
        sums: dict[tuple[str | None, str], list[Any]] = {}
        deals: list[tuple[str, Decimal, int]] = []
        with self._reading("summing the forecast") as cursor:
            for status, day, won in (("open", "expected_close", False), ("won", "closed_on", True)):
                group = {
                    None: "NULL",
                    "owner": "owner",
                    "stage": "stage",
                    "month": self._month(day),
                }[query.group_by]
                found = self._group_sums(
                    cursor,
                    (group, "value_currency"),
                    f"{where} AND status = '{status}' AND {day} >= {mark} AND {day} <= {mark}",
                    [*parameters, *bounds],
                )
                for (key, code), count, amount, weighted in found:
                    row = sums.setdefault((key, code), [0, 0, 0, 0, 0])
                    if won:
                        row[3] += count
                        row[4] += amount
                    else:
                        row[0] += count
                        row[1] += amount
                        row[2] += weighted
            if query.deals:
                cursor.execute(
                    "SELECT value_currency, value_amount, probability FROM "
                    f"{self._table('opportunities')} WHERE {where} AND status = 'open' "
                    f"AND expected_close >= {mark} AND expected_close <= {mark}",
                    [*parameters, *bounds],
                )
                deals = [(c, _decimal(a), int(p)) for c, a, p in cursor.fetchall()]
        places = checks.AMOUNT_PLACES
        return ForecastTotals(
            rows=tuple(
                ForecastRow(
                    key,
                    code,
                    n,
                    exact_decimal(amount, places),
                    exact_decimal(weighted, places + 2),
                    won_n,
                    exact_decimal(won, places),
                )
                for (key, code), (n, amount, weighted, won_n, won) in sorted(
                    sums.items(), key=lambda item: (item[0][0] is not None, item[0])
                )
            ),
            deals=tuple(sorted(deals)),
        )

    def closed_deals(
        self, process: str, *, start: dt.date | None, end: dt.date | None
    ) -> list[ClosedDeal]:
        """Two reads in one snapshot: the closed deals' columns (and the loss reason of
        the lost ones), and the stage each of their stage events entered."""
        mark, table = self._mark, self._table("opportunities")
        where = (
            f"o.workspace = {mark} AND o.process = {mark} AND o.status IN ('won', 'lost') "
            "AND o.closed_on IS NOT NULL"
        )
        parameters: list[object] = [self.workspace, process]
        for operator, bound in ((">=", start), ("<=", end)):
            if bound is not None:
                where += f" AND o.closed_on {operator} {mark}"
                parameters.append(self._column(bound))
        reason = self._json_string("o.data", "loss_reason")
        entered = (
            f"CASE e.kind WHEN 'created' THEN {self._json_string('e.data', 'details', 'stage')} "
            f"ELSE {self._json_string('e.data', 'details', 'to')} END"
        )
        with self._reading(f"reading the closed deals of process {process!r}") as cursor:
            cursor.execute(
                "SELECT o.id, o.status, o.value_currency, o.value_amount, o.created_at, "
                f"o.closed_on, CASE WHEN o.status = 'lost' THEN {reason} END "
                f"FROM {table} o WHERE {where}",
                parameters,
            )
            rows = cursor.fetchall()
            cursor.execute(
                f"SELECT e.opportunity_id, e.at, {entered} FROM {self._table('events')} e "
                f"JOIN {table} o ON o.workspace = e.workspace AND o.id = e.opportunity_id "
                f"WHERE {where} AND e.workspace = {mark} "
                "AND e.kind IN ('created', 'stage_changed') ORDER BY e.seq",
                [*parameters, self.workspace],
            )
            entries = cursor.fetchall()
        paths: dict[str, list[tuple[dt.datetime, str]]] = {}
        for opportunity_id, at, stage in entries:
            paths.setdefault(opportunity_id, []).append((_moment(at), stage))
        return sorted(
            (
                ClosedDeal(
                    id=id_,
                    won=status == Status.WON.value,
                    currency=code,
                    value=_decimal(value),
                    created_at=_moment(created),
                    closed_on=_day(closed),
                    loss_reason=loss_reason,
                    path=tuple(paths.get(id_, ())),
                )
                for id_, status, code, value, created, closed, loss_reason in rows
            ),
            key=lambda d: d.id,
        )

    def stuck(self, process: str, cutoffs: Mapping[str, dt.datetime]) -> list[Opportunity]:
        """Two reads in one snapshot: the open opportunities of the process in a stage of
        ``cutoffs``, each with the moment it entered its stage as its JSON records it
        (that one string read in the database, nothing decoded), and then the JSON of
        those that entered before their stage's cutoff -- the only ones decoded."""
        if not cutoffs:
            return []
        limits = {
            stage: checks.aware(moment, "stuck(cutoffs)") for stage, moment in cutoffs.items()
        }
        mark, table = self._mark, self._table("opportunities")
        entered = self._json_string("data", "stage_entered_at")
        rows: list[Any] = []
        with self._reading(f"finding the stuck opportunities of process {process!r}") as cursor:
            cursor.execute(
                f"SELECT id, stage, {entered} FROM {table} "
                f"WHERE workspace = {mark} AND process = {mark} AND status = 'open' "
                f"AND stage IN ({self._marks(len(limits))})",
                [self.workspace, process, *limits],
            )
            chosen = [
                id_
                for id_, stage, moment in cursor.fetchall()
                if _entered_before(moment, limits[stage])
            ]
            for first in range(0, len(chosen), _IDS_PER_READ):
                ids = chosen[first : first + _IDS_PER_READ]
                cursor.execute(
                    f"SELECT id, version, {self._json_text} FROM {table} "
                    f"WHERE workspace = {mark} AND id IN ({self._marks(len(ids))})",
                    [self.workspace, *ids],
                )
                rows.extend(cursor.fetchall())
        found = load_versioned(rows, Opportunity, self.workspace)
        return queries.stuck(found, process=process, cutoffs=limits)

    # -- the unit of work ------------------------------------------------------

    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        if not changes:
            return ()
        # Encoded before the transaction begins, so that no lock waits on Python work.
        processes = [
            (p.key, dump_record(p, record_name("process", p.key, self.workspace)))
            for p in changes.processes
        ]
        defined_at = self._column(changes.defined_at)
        opportunities = [(o, self._row(o)) for o in changes.opportunities]
        activities = [(a, self._row(a)) for a in changes.activities]
        events = [self._row(e) for e in changes.events]
        calls = [self._call_row(call) for call in changes.outbox]
        created = {o.id for o in changes.opportunities if o.version == 1}
        in_change_set = {o.id for o in changes.opportunities}
        mark = self._mark
        with self._writing("committing a change set") as cursor:
            self._order_history(
                cursor,
                sorted(
                    {e.opportunity_id for e in changes.events if e.opportunity_id is not None}
                    - created
                ),
            )
            if processes:
                cursor.executemany(
                    f"INSERT INTO {self._table('processes')} (workspace, key, data) "
                    f"VALUES ({mark}, {mark}, {self._json_mark}) "
                    "ON CONFLICT (workspace, key) DO UPDATE SET data = excluded.data",
                    [(self.workspace, key, data) for key, data in processes],
                )
                cursor.executemany(
                    f"INSERT INTO {self._table('process_history')} "
                    f"(workspace, key, defined_at, data) VALUES ({mark}, {mark}, {mark}, "
                    f"{self._json_mark})",
                    [(self.workspace, key, defined_at, data) for key, data in processes],
                )
                cursor.execute(
                    f"INSERT INTO {self._table('process_versions')} AS v (workspace, version) "
                    f"VALUES ({mark}, 1) "
                    "ON CONFLICT (workspace) DO UPDATE SET version = v.version + 1",
                    (self.workspace,),
                )
            self._write_all(cursor, "opportunities", "opportunity", opportunities, set())
            self._write_related(cursor, changes.opportunities)
            self._write_all(cursor, "activities", "activity", activities, in_change_set)
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
            if calls:
                cursor.executemany(
                    f"INSERT INTO {self._table('outbox')} (workspace, id, kind, opportunity_id, "
                    f"action_id, queued_at, attempts, data) VALUES "
                    f"({self._marks(6)}, 0, {self._json_mark}) "
                    "ON CONFLICT (workspace, id) DO NOTHING",
                    calls,
                )
                if cursor.rowcount != len(calls):
                    raise ValidationError(
                        f"Outbound calls {[c.id for c in changes.outbox]}: an id is already taken"
                    )
            if not events:
                return ()
            # Last, so that where numbering takes a lock it is held only to the commit.
            first = self._next_positions(cursor, len(events))
            columns = [*events[0], "position"]
            cursor.executemany(
                f"INSERT INTO {self._table('events')} ({', '.join(columns)}) "
                f"VALUES ({self._values(columns)})",
                [[*row.values(), first + n] for n, row in enumerate(events)],
            )
        return tuple(event.numbered(first + n) for n, event in enumerate(changes.events))

    def _write_all(
        self,
        cursor: Cursor,
        table: str,
        kind: str,
        records: Sequence[tuple[V, dict[str, object]]],
        parents: set[str],
    ) -> None:
        """Write ``records`` in order: each run of new records (version 1) in one
        ``executemany``, each update on its own. ``parents``: the opportunities of the
        change set, which new activities may name."""
        run: list[tuple[V, dict[str, object]]] = []
        for record, row in records:
            if record.version == 1:
                run.append((record, row))
                continue
            self._insert_run(cursor, table, kind, run, parents)
            run = []
            self._write(cursor, table, kind, record, row)
        self._insert_run(cursor, table, kind, run, parents)

    def _insert_run(
        self,
        cursor: Cursor,
        table: str,
        kind: str,
        run: Sequence[tuple[V, dict[str, object]]],
        parents: set[str],
    ) -> None:
        """Insert new records with one ``executemany``, first refusing, in their order,
        one whose id is taken (stored, or earlier in the run: ``ValidationError``) or an
        activity naming an opportunity neither stored nor in the change set
        (``StorageError``), as one insert after another would."""
        if len(run) < 2:
            for record, row in run:
                self._write(cursor, table, kind, record, row)
            return
        taken = (
            self._stored_ids(cursor, table, [record.id for record, _ in run])
            if self._looks_up_new_ids
            else set()
        )
        named = _named_opportunities(record for record, _ in run) - parents
        missing = named - self._stored_ids(cursor, "opportunities", sorted(named))
        seen: set[str] = set()
        for n, (record, _) in enumerate(run):
            if record.id in taken or record.id in seen:
                raise ValidationError(f"{kind.capitalize()} {record.id!r}: the id is already taken")
            seen.add(record.id)
            if isinstance(record, Activity) and record.opportunity_id in missing:
                if not self._looks_up_new_ids:  # a taken id before it is refused first
                    before = [earlier.id for earlier, _ in run[:n]]
                    if clashes := self._taken_meanwhile(cursor, table, before):
                        raise ValidationError(
                            f"{kind.capitalize()} {clashes[0]!r}: the id is already taken"
                        )
                raise self._missing_opportunity(record)
        columns = list(run[0][1])
        try:
            cursor.executemany(
                f"INSERT INTO {self._table(table)} ({', '.join(columns)}) "
                f"VALUES ({self._values(columns)}) ON CONFLICT (workspace, id) DO NOTHING",
                [[row[name] for name in columns] for _, row in run],
            )
        except self._constraint_errors as error:
            raise self._rule_broken(error, table, kind, run[0][0]) from error
        if cursor.rowcount != len(run):
            # Another transaction stored one of these ids since they were looked up.
            late = self._taken_meanwhile(cursor, table, [record.id for record, _ in run])
            clash = late[0] if late else run[0][0].id
            raise ValidationError(f"{kind.capitalize()} {clash!r}: the id is already taken")

    #: Whether a run of new records is first looked up by id, to refuse a taken one
    #: before inserting. Without it, the insert skips a taken id and the shortfall in
    #: its row count names it (see :meth:`_taken_meanwhile`): the same error, for a
    #: database whose planner may not probe the primary key for a long list of ids.
    _looks_up_new_ids = True

    def _stored_ids(self, cursor: Cursor, table: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` this workspace's ``table`` holds."""
        found: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            cursor.execute(
                f"SELECT id FROM {self._table(table)} "
                f"WHERE workspace = {self._mark} AND id IN ({self._marks(len(chunk))})",
                [self.workspace, *chunk],
            )
            found.update(row[0] for row in cursor.fetchall())
        return found

    def _write_related(self, cursor: Cursor, opportunities: Sequence[Opportunity]) -> None:
        """Keep ``opportunity_related`` in step with the opportunities written: the
        related ids of each one's last version in the change set."""
        last = {o.id: o for o in opportunities}
        stored = sorted({o.id for o in opportunities if o.version > 1})
        table = self._table("opportunity_related")
        mark = self._mark
        if stored:
            cursor.executemany(
                f"DELETE FROM {table} WHERE workspace = {mark} AND opportunity_id = {mark}",
                [(self.workspace, id_) for id_ in stored],
            )
        rows = [
            (self.workspace, related_id, opportunity.id)
            for opportunity in last.values()
            for related_id in dict.fromkeys(r.id for r in opportunity.related)
        ]
        if rows:
            cursor.executemany(
                f"INSERT INTO {table} (workspace, related_id, opportunity_id) "
                f"VALUES ({mark}, {mark}, {mark}) ON CONFLICT DO NOTHING",
                rows,
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
                if self._set_changed_only:
                    names = self._changed(cursor, table, record, row, names)
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

    def _changed(
        self,
        cursor: Cursor,
        table: str,
        record: Opportunity | Activity,
        row: dict[str, object],
        names: list[str],
    ) -> list[str]:
        """Of the columns ``names`` of ``record``'s row, those whose stored value
        differs, with ``version`` and ``data`` (which always change). Where the
        database rewrites every index naming a column an UPDATE sets, whatever its
        value, setting only these leaves the other indexes alone. A row that is not
        stored at ``record.version - 1`` leaves every name: the UPDATE then finds no
        row, and the caller reports the conflict."""
        columns = [name for name in names if name not in ("version", "data")]
        cursor.execute(
            f"SELECT version, {', '.join(columns)} FROM {self._table(table)} "
            f"WHERE workspace = {self._mark} AND id = {self._mark}",
            (self.workspace, record.id),
        )
        stored = cursor.fetchone()
        if stored is None or stored[0] != record.version - 1:
            return names
        changed = {name for name, old in zip(columns, stored[1:], strict=True) if row[name] != old}
        return [name for name in names if name in changed or name in ("version", "data")]

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
        return self._storage_row(encode_row(value, self.workspace))

    def _marks(self, count: int) -> str:
        """``count`` placeholders, for an ``IN (...)`` list."""
        return ", ".join([self._mark] * count)

    def _values(self, columns: Iterable[str]) -> str:
        """The placeholders for a row of ``columns``, in order."""
        return ", ".join(self._placeholder(name) for name in columns)

    def _placeholder(self, column: str) -> str:
        return self._json_mark if column == "data" else self._mark


def _old_value(pair: Any) -> Any:
    """The old value of one tagged ``(old, new)`` pair of an event's changes, decoded
    straight for the shapes the report fields take (strings, integers, None, Status,
    Money, dates) and by :func:`decode_detail` otherwise."""
    if isinstance(pair, dict) and pair.get("type") == "tuple":
        items = pair.get("value")
        if isinstance(items, list) and len(items) == 2:
            old = items[0]
            if old is None or isinstance(old, str | int):
                return old
            if isinstance(old, dict):
                tag, payload = old.get("type"), old.get("value")
                if tag == "Status" and isinstance(payload, str):
                    return Status(payload)
                if tag == "date" and isinstance(payload, str):
                    return dt.date.fromisoformat(payload)
                if tag == "Money" and isinstance(payload, dict):
                    return Money(Decimal(payload["amount"]), payload["currency"])
    old, _ = decode_detail(pair)
    return old


#: How many ids one ``IN (...)`` read names at most (well below any driver's limit).
_IDS_PER_READ = 500


def _entered_before(text: object, cutoff: dt.datetime) -> bool:
    """Whether the stored ``stage_entered_at`` (ISO text with its offset) is before
    ``cutoff``; also True when it cannot be read, so that decoding the record reports
    the bad data."""
    try:
        moment = dt.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return True
    if moment is None or moment.utcoffset() is None:
        return True
    return moment < cutoff


def _decimal(value: object) -> Decimal:
    """An amount column as an exact Decimal (SQLite keeps its exact text)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _day(value: Any) -> Any:
    """A date column (SQLite keeps ISO text) as a date, or None."""
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _moment(value: Any) -> dt.datetime:
    """A moment column (SQLite keeps UTC text) as an aware datetime."""
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment


def _named_opportunities(records: Iterable[object]) -> set[str]:
    """The opportunities the activities among ``records`` name."""
    return {
        record.opportunity_id
        for record in records
        if isinstance(record, Activity) and record.opportunity_id is not None
    }
