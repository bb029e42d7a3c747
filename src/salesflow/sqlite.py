"""``SQLiteRepository``: the pipeline in one file, shared by threads and processes.

Built on the standard library's :mod:`sqlite3`. The file is in WAL mode, so readers
never wait for the writer; writers take the file's write lock up front
(``BEGIN IMMEDIATE``) and wait up to ``timeout`` seconds for it, so several processes
can commit to one file and each command simply waits its turn. Every thread gets its
own connection.

Each record is a row holding its JSON (made by :mod:`salesflow.serialization`) and
the columns that queries filter, sort or sum on. The schema carries a version; an
older file is upgraded in place when it is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from salesflow._sql import (
    PAUSED,
    Cursor,
    GroupSum,
    PipelineGroup,
    SQLRepository,
    ThreadConnections,
    micro_units,
)
from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.checks import AMOUNT_PLACES
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.errors import ConcurrencyError, LockTimeout, StorageError, ValidationError
from salesflow.queries import Basis, SearchQuery
from salesflow.serialization import encode_row, load_record, record_name

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteRepository"]

Migration: TypeAlias = Callable[[sqlite3.Connection], None]

#: SQLITE_BUSY_SNAPSHOT: a read transaction's snapshot is too old to write from;
#: answered at once (no lock was waited for), so a conflict to run again.
_BUSY_SNAPSHOT = getattr(sqlite3, "SQLITE_BUSY_SNAPSHOT", 517)

# -- schema ------------------------------------------------------------------------

#: Version 1: the records as JSON with the few columns the first queries needed.
_V1 = (
    """CREATE TABLE processes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        key TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (workspace, key)
    )""",
    """CREATE TABLE opportunities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        process TEXT NOT NULL,
        stage TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (workspace, id)
    )""",
    """CREATE TABLE activities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        opportunity_id TEXT,
        status TEXT NOT NULL,
        due TEXT NOT NULL,
        data TEXT NOT NULL,
        UNIQUE (workspace, id),
        FOREIGN KEY (workspace, opportunity_id) REFERENCES opportunities (workspace, id)
    )""",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        opportunity_id TEXT,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
)

#: Version 2: the columns reports filter and sum on, and indexes for every query.
_V2 = (
    "ALTER TABLE opportunities ADD COLUMN owner TEXT",
    "ALTER TABLE opportunities ADD COLUMN expected_close TEXT",
    "ALTER TABLE opportunities ADD COLUMN closed_on TEXT",
    "ALTER TABLE opportunities ADD COLUMN value_amount TEXT",
    "ALTER TABLE opportunities ADD COLUMN value_currency TEXT",
    "ALTER TABLE opportunities ADD COLUMN customer_id TEXT",
    "ALTER TABLE opportunities ADD COLUMN created_at TEXT",
    "ALTER TABLE activities ADD COLUMN owner TEXT",
    "ALTER TABLE events ADD COLUMN at TEXT",
    "ALTER TABLE events ADD COLUMN actor TEXT",
    "CREATE INDEX opportunities_by_process ON opportunities (workspace, process, seq)",
    "CREATE INDEX opportunities_by_status ON opportunities (workspace, status, expected_close)",
    "CREATE INDEX opportunities_by_owner ON opportunities (workspace, owner)",
    "CREATE INDEX opportunities_by_customer ON opportunities (workspace, customer_id)",
    "CREATE INDEX opportunities_by_close ON opportunities (workspace, expected_close)",
    "CREATE INDEX activities_by_due ON activities (workspace, due, id)",
    "CREATE INDEX activities_by_opportunity ON activities (workspace, opportunity_id, due)",
    "CREATE INDEX activities_by_owner ON activities (workspace, owner, due)",
    "CREATE INDEX activities_by_status ON activities (workspace, status, due)",
    "CREATE INDEX events_by_opportunity ON events (workspace, opportunity_id, seq)",
)


def _run(statements: Sequence[str]) -> Migration:
    def migrate(connection: sqlite3.Connection) -> None:
        for statement in statements:
            connection.execute(statement)

    return migrate


def _fill_v2_columns(connection: sqlite3.Connection) -> None:
    """Fill the columns version 2 added from each row's JSON."""
    tables: tuple[tuple[str, type[Opportunity | Activity | Event], str, tuple[str, ...]], ...] = (
        ("opportunities", Opportunity, "opportunity", _V2_OPPORTUNITY_COLUMNS),
        ("activities", Activity, "activity", ("owner",)),
        ("events", Event, "event", ("at", "actor")),
    )
    for table, cls, kind, names in tables:
        rows = connection.execute(f"SELECT seq, workspace, id, data FROM {table}").fetchall()
        for seq, workspace, id_, data in rows:
            value: Opportunity | Activity | Event = load_record(
                data, cls, record_name(kind, id_, workspace)
            )
            row = _sql(encode_row(value, workspace))
            connection.execute(
                f"UPDATE {table} SET {', '.join(f'{n} = :{n}' for n in names)} WHERE seq = :seq",
                {**{n: row[n] for n in names}, "seq": seq},
            )


_V2_OPPORTUNITY_COLUMNS = (
    "owner",
    "expected_close",
    "closed_on",
    "value_amount",
    "value_currency",
    "customer_id",
    "created_at",
)


def _upgrade_to_v2(connection: sqlite3.Connection) -> None:
    _run(_V2)(connection)
    _fill_v2_columns(connection)


#: Version 3: an index for counting a process' opportunities by stage and for reading
#: those of some stages (what replacing a process asks).
_V3 = ("CREATE INDEX opportunities_by_stage ON opportunities (workspace, process, stage)",)

#: Version 4: the columns searches filter and sort on and the pipeline sums (amounts
#: as exact integers: whole units and millionths), the related ids beside each
#: opportunity, the version of the processes, and indexes that answer searches, the
#: pipeline and the activities of one opportunity (in due order) from the index alone.
_V4_COLUMNS = (
    "ALTER TABLE opportunities ADD COLUMN probability INTEGER",
    "ALTER TABLE opportunities ADD COLUMN value_whole INTEGER",
    "ALTER TABLE opportunities ADD COLUMN value_micro INTEGER",
    "ALTER TABLE opportunities ADD COLUMN annual_amount TEXT",
    "ALTER TABLE opportunities ADD COLUMN annual_currency TEXT",
    "ALTER TABLE opportunities ADD COLUMN annual_whole INTEGER",
    "ALTER TABLE opportunities ADD COLUMN annual_micro INTEGER",
    "ALTER TABLE opportunities ADD COLUMN sort_title TEXT",
    "ALTER TABLE opportunities ADD COLUMN search_text TEXT",
    """CREATE TABLE opportunity_related (
        workspace TEXT NOT NULL,
        related_id TEXT NOT NULL,
        opportunity_id TEXT NOT NULL,
        PRIMARY KEY (workspace, related_id, opportunity_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE process_versions (
        workspace TEXT PRIMARY KEY,
        version INTEGER NOT NULL
    ) WITHOUT ROWID""",
)
_V4_INDEXES = (
    "CREATE INDEX opportunity_related_by_opportunity "
    "ON opportunity_related (workspace, opportunity_id)",
    # Covers ``activities(opportunity_id=...)`` with its ORDER BY due, id.
    "DROP INDEX activities_by_opportunity",
    "CREATE INDEX activities_by_opportunity ON activities (workspace, opportunity_id, due, id)",
    # A search's default order (expected_close, empty last, then id), alone or by owner.
    "DROP INDEX opportunities_by_owner",
    "CREATE INDEX opportunities_by_owner "
    "ON opportunities (workspace, owner, expected_close IS NULL, expected_close, id)",
    "CREATE INDEX opportunities_by_close_order "
    "ON opportunities (workspace, expected_close IS NULL, expected_close, id)",
    # Everything the pipeline reads, in the order it groups by, so that it sums from the
    # index alone without sorting; with the id, also what order_by="stage" sorts.
    "DROP INDEX opportunities_by_stage",
    "CREATE INDEX opportunities_by_stage ON opportunities (workspace, process, stage, status, "
    "owner, value_currency, annual_currency, value_whole, value_micro, probability, "
    "annual_whole, annual_micro, id)",
    # What a text search reads: it scans this instead of the table, and finds the page
    # of the default order (expected_close, then id) in it too.
    "CREATE INDEX opportunities_by_text "
    "ON opportunities (workspace, search_text, expected_close, id)",
)
#: The opportunity columns version 4 added, filled from each row's JSON.
_V4_OPPORTUNITY_COLUMNS = (
    "probability",
    "value_whole",
    "value_micro",
    "annual_amount",
    "annual_currency",
    "annual_whole",
    "annual_micro",
    "sort_title",
    "search_text",
)


def _upgrade_to_v4(connection: sqlite3.Connection) -> None:
    _run(_V4_COLUMNS)(connection)
    names = _V4_OPPORTUNITY_COLUMNS
    update = f"UPDATE opportunities SET {', '.join(f'{n} = :{n}' for n in names)} WHERE seq = :seq"
    last = 0
    while rows := connection.execute(
        "SELECT seq, workspace, id, data FROM opportunities WHERE seq > ? ORDER BY seq LIMIT 1000",
        (last,),
    ).fetchall():
        last = rows[-1][0]
        updates: list[dict[str, object]] = []
        related: list[tuple[str, str, str]] = []
        for seq, workspace, id_, data in rows:
            opportunity = load_record(data, Opportunity, record_name("opportunity", id_, workspace))
            row = _storage_row(encode_row(opportunity, workspace))
            updates.append({**{n: row[n] for n in names}, "seq": seq})
            related.extend(
                (workspace, related_id, id_)
                for related_id in dict.fromkeys(r.id for r in opportunity.related)
            )
        connection.executemany(update, updates)
        connection.executemany(
            "INSERT OR IGNORE INTO opportunity_related (workspace, related_id, opportunity_id) "
            "VALUES (?, ?, ?)",
            related,
        )
    _run(_V4_INDEXES)(connection)


#: Version 5: the change feed and the outbox. Each event gets its position in its
#: workspace's commit order -- the stored events numbered 1, 2, ... in the order they
#: were stored, as history reads them -- with a unique index that serves
#: ``changes(after=...)``; the outbox holds the outbound calls not yet made.
_V5 = (
    "ALTER TABLE events ADD COLUMN position INTEGER",
    "UPDATE events SET position = numbered.position FROM ("
    "SELECT seq, row_number() OVER (PARTITION BY workspace ORDER BY seq) AS position "
    "FROM events) AS numbered WHERE numbered.seq = events.seq",
    "CREATE UNIQUE INDEX events_by_position ON events (workspace, position)",
    """CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        opportunity_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        lease_until TEXT,
        last_error TEXT,
        data TEXT NOT NULL,
        UNIQUE (workspace, id)
    )""",
    "CREATE INDEX outbox_by_seq ON outbox (workspace, seq)",
)
#: Version 6: the events in time order, so that a report as of a past moment reads
#: only the events recorded after it; a customer's opportunities in the searches'
#: default order (as the owner's are), so that a customer card reads only its own.
_V6 = (
    "CREATE INDEX events_by_time ON events (workspace, at)",
    "DROP INDEX opportunities_by_customer",
    "CREATE INDEX opportunities_by_customer "
    "ON opportunities (workspace, customer_id, expected_close IS NULL, expected_close, id)",
    "ANALYZE",
)

#: Version 7: every definition of each process with when it was defined, so that a
#: report as of a past moment reads the stages as they were then. A file upgraded
#: from an earlier version knows only the current definitions: they count as defined
#: since the beginning of time.
_V7 = (
    """CREATE TABLE process_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace TEXT NOT NULL,
        key TEXT NOT NULL,
        defined_at TEXT NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX process_history_by_time ON process_history (workspace, key, defined_at, seq)",
    "INSERT INTO process_history (workspace, key, defined_at, data) "
    "SELECT workspace, key, '0001-01-01T00:00:00.000000Z', data "
    "FROM processes ORDER BY seq",
)

#: Version 8: the opportunities of one status in a search's default order, so that a
#: page of a status with few deals (the won ones of a young pipeline) is read from the
#: index instead of walking every deal in close order to find them.
_V8 = (
    "DROP INDEX opportunities_by_status",
    "CREATE INDEX opportunities_by_status "
    "ON opportunities (workspace, status, expected_close IS NULL, expected_close, id)",
    "ANALYZE opportunities",
)

#: The migrations in order: ``MIGRATIONS[n]`` upgrades a file from version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (
    _run(_V1),
    _upgrade_to_v2,
    _run(_V3),
    _upgrade_to_v4,
    _run(_V5),
    _run(_V6),
    _run(_V7),
    _run(_V8),
)
#: The schema version this release writes.
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)"""


# -- values in columns -------------------------------------------------------------


#: The types of column values SQLite stores as they are.
_AS_IS = frozenset({str, int, type(None), bool, float, bytes})


def _column_value(value: object) -> object:
    """Python values as SQLite stores them: sortable text for moments and dates,
    exact decimal text for amounts."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, dt.datetime):
        return _utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _utc_text(moment: dt.datetime) -> str:
    """A UTC moment as fixed-width text that sorts in time order. The last one is
    kept: the records of a commit are mostly stamped with the same moment."""
    last = _LAST_MOMENT[0]
    if last[0] == moment:  # the same instant: the same UTC text
        return last[1]
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    text = utc.isoformat(timespec="microseconds") + "Z"
    _LAST_MOMENT[0] = (moment, text)
    return text


#: The moment :func:`_utc_text` wrote last, and its text.
_LAST_MOMENT: list[tuple[dt.datetime, str]] = [
    (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "1970-01-01T00:00:00.000000Z")
]


def _sql(columns: Mapping[str, object]) -> dict[str, object]:
    as_is = _AS_IS
    return {
        name: value if type(value) in as_is else _column_value(value)
        for name, value in columns.items()
    }


#: Millionths in a whole unit of an amount.
_MICRO = 10**AMOUNT_PLACES


def _storage_row(columns: Mapping[str, object]) -> dict[str, object]:
    """A row of :func:`encode_row` as the file stores it: each amount also as whole
    units and millionths, two integers that SQLite sums and orders exactly."""
    row = _sql(columns)
    for amount_column, whole_column, micro_column in _SPLIT_AMOUNTS:
        if amount_column not in columns:
            continue
        amount = columns[amount_column]
        whole: int | None = None
        micro: int | None = None
        if isinstance(amount, Decimal):
            whole, micro = divmod(micro_units(amount), _MICRO)
        row[whole_column] = whole
        row[micro_column] = micro
    return row


#: The amount columns :func:`_storage_row` also writes as whole units and millionths.
_SPLIT_AMOUNTS = tuple(
    (f"{prefix}_amount", f"{prefix}_whole", f"{prefix}_micro") for prefix in ("value", "annual")
)


def _pipeline_sums(annual: str) -> str:
    """The pipeline's sums of one group, each twice: over the deals counted at their
    annual value (where ``annual`` holds), and over the others, counted at their value:
    the counts, whole units, millionths, and both times the probability."""
    return ", ".join(
        f"sum(CASE WHEN {annual} THEN {on} END), sum(CASE WHEN {annual} THEN NULL ELSE {off} END)"
        for on, off in (
            ("1", "1"),
            ("annual_whole", "value_whole"),
            ("annual_micro", "value_micro"),
            ("annual_whole * probability", "value_whole * probability"),
            ("annual_micro * probability", "value_micro * probability"),
        )
    )


def _add(
    sums: dict[tuple[bool, str, str], list[int]],
    key: tuple[bool, str, str],
    count: int,
    amount: int,
    weighted: int,
) -> None:
    if count:
        row = sums.setdefault(key, [0, 0, 0])
        row[0] += count
        row[1] += amount
        row[2] += weighted


def _close(connection: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        connection.close()


# -- the repository ----------------------------------------------------------------


class SQLiteRepository(SQLRepository):
    """A repository in one SQLite file; safe for several threads and processes.

    ``path`` is the database file (created if missing; upgraded in place if an older
    salesflow wrote it). With ``create=False`` a missing file, or one that holds no
    salesflow schema, is a ``StorageError`` and nothing is created or written: for
    tools that only read an existing pipeline. ``workspace`` names the slice of the
    file this repository reads and writes. ``timeout`` is how many seconds a write waits for another
    writer's transaction before giving up with ``LockTimeout`` (a
    ``ConcurrencyError`` that ``SalesFlow`` does not retry).

    Each thread that uses the repository opens its own connection on first use.
    :meth:`close` may be called at any time, from any thread: it refuses new work
    (``StorageError``) and closes each connection once its thread's current operation
    has ended.
    """

    _mark = "?"
    _json_mark = "?"
    _constraint_errors = (sqlite3.IntegrityError,)
    _value_order = ("value_whole", "value_micro")
    # SQLite rewrites every index naming a column an UPDATE sets, changed or not.
    _set_changed_only = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        workspace: str = "default",
        timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        workspace = checks.name(workspace, "SQLiteRepository.workspace")
        self.create = checks.flag(create, "SQLiteRepository.create")
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(f"SQLiteRepository.path: expected a file path, got {path!r}")
        self.path = checks.text(os.fspath(path), "SQLiteRepository.path", blank=False)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 <= timeout < 1e6
        ):
            raise ValidationError(
                f"SQLiteRepository.timeout: expected seconds >= 0, got {timeout!r}"
            )
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValidationError(
                f"SQLiteRepository.path: needs a file path, got {self.path!r}; use "
                "InMemoryRepository for a pipeline that lives in memory"
            )
        self.workspace = workspace
        self.timeout = timeout
        if not create:
            self._require_pipeline()
        self._connections = ThreadConnections(lambda: repr(self), self._open, _close)
        self._local = self._connections.local
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteRepository({self.path!r}, workspace={self.workspace!r})"

    # -- connections and errors ------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (opened if needed); StorageError once closed."""
        return self._connections.current()

    def _database(self) -> tuple[str, bool]:
        """What ``sqlite3.connect`` opens, and whether it is a URI: with ``create=False``
        the file is opened as an existing one (``mode=rw``), so that a file removed
        meanwhile is not made again."""
        if self.create:
            return self.path, False
        return f"{Path(self.path).absolute().as_uri()}?mode=rw", True

    def _require_pipeline(self) -> None:
        """With ``create=False``: StorageError unless the file exists and holds a
        salesflow schema. Nothing is written to the file to find out (not even its
        journal mode), whatever it holds."""
        missing = StorageError(
            f"SQLite file {self.path!r} holds no salesflow pipeline; nothing was created"
        )
        if not os.path.isfile(self.path):
            raise missing
        database, uri = self._database()
        with self._translated("looking for a pipeline"):
            connection = sqlite3.connect(database, timeout=self.timeout, uri=uri)
            try:
                found = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
            finally:
                connection.close()
        if found is None:
            raise missing

    def _open(self) -> sqlite3.Connection:
        database, uri = self._database()
        with self._translated("opening the file"):
            connection = sqlite3.connect(
                database,
                uri=uri,
                timeout=self.timeout,
                isolation_level=None,  # transactions are begun and ended explicitly
                # Used by one thread; closed by another only while no thread uses it.
                check_same_thread=False,
            )
            try:
                self._enable_wal(connection)
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("PRAGMA synchronous = FULL")
            except BaseException:
                connection.close()
                raise
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        """Put the file in WAL mode (once per file: the mode is stored in it).

        Switching needs the file to itself, and SQLite answers "database is locked" at
        once, without waiting out the busy timeout, when several processes open a new
        file together; so the switch is retried until the timeout has passed.
        """
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            except sqlite3.OperationalError as error:
                code = getattr(error, "sqlite_errorcode", 0) & 0xFF
                if code not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
                continue
            if str(mode).lower() != "wal":
                raise StorageError(f"SQLite file {self.path!r} cannot be put in WAL mode")
            return

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Turn sqlite3's errors into salesflow's, naming the file and what was done."""
        try:
            yield
        except sqlite3.Error as error:
            extended = getattr(error, "sqlite_errorcode", 0)
            code = extended & 0xFF
            if code == sqlite3.SQLITE_BUSY and extended != _BUSY_SNAPSHOT:
                # The busy handler waited out ``timeout``: running the command again
                # would only wait as long again.
                raise LockTimeout(
                    f"SQLite file {self.path!r} stayed locked by another writer for "
                    f"{self.timeout:g} s while {doing}: {error}"
                ) from error
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                # Answered at once, without waiting: a conflict worth another attempt.
                raise ConcurrencyError(
                    f"SQLite file {self.path!r}: {doing} met another connection's "
                    f"transaction: {error}"
                ) from error
            raise StorageError(f"SQLite file {self.path!r}: {doing} failed: {error}") from error

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Cursor]:
        """One write transaction, begun with the file's write lock held: writers take
        turns, so history is in commit order without more locking."""
        with (
            self._connections.use() as connection,
            self._translated(doing),
            contextlib.closing(connection.cursor()) as cursor,
        ):
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    cursor.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _snapshot(self, doing: str) -> Iterator[sqlite3.Cursor]:
        """One read transaction: in WAL mode, its reads all see the file as it was
        when the first of them ran, whatever writers commit meanwhile."""
        with (
            self._connections.use() as connection,
            self._translated(doing),
            contextlib.closing(connection.cursor()) as cursor,
        ):
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                if connection.in_transaction:
                    cursor.execute("COMMIT")

    def _query(self, doing: str, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        block = self._block()
        if block is not None:  # inside a command block: in its transaction
            with self._translated(doing):
                block.execute(sql, parameters)
                return block.fetchall()
        with self._connections.use() as connection, self._translated(doing):
            return connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        """Refuse new work (it raises StorageError) and close every connection this
        repository opened: the idle ones now, each one in use when its thread's
        current query, transaction or command block ends (a command block's commit
        then completes or fails as a whole). Safe at any time, from any thread;
        calling it again does nothing."""
        self._connections.close()

    # -- what the shared reads and writes ask of a driver ---------------------

    def _rule_broken(
        self, error: Exception, table: str, kind: str, record: Opportunity | Activity
    ) -> StorageError:
        if isinstance(record, Activity) and "FOREIGN KEY" in str(error):
            return self._missing_opportunity(record)
        return StorageError(
            f"{kind.capitalize()} {record.id!r} breaks a rule of the {table} table "
            f"in workspace {self.workspace!r}: {error}"
        )

    def _column(self, value: object) -> object:
        return _column_value(value)

    def _storage_row(self, columns: dict[str, Any]) -> dict[str, object]:
        return _storage_row(columns)

    def _nulls_last(self, expression: str, descending: bool, *, indexed: bool) -> list[str]:
        if not indexed:
            return [f"{expression} {'DESC' if descending else 'ASC'} NULLS LAST"]
        # As the indexes on (expected_close IS NULL, expected_close, id) are ordered.
        return [f"{expression} IS NULL", f"{expression} DESC" if descending else expression]

    def _text_filter(self, needle: str) -> tuple[str, list[object]]:
        return "instr(search_text, ?) > 0", [needle]

    def _next_positions(self, cursor: Cursor, count: int) -> int:
        # Every write transaction holds the file's write lock from its start (BEGIN
        # IMMEDIATE): commits take turns, so the next number after the highest stored
        # one is in commit order. One step down the index (workspace, position).
        cursor.execute(
            "SELECT coalesce(max(position), 0) FROM events WHERE workspace = ?",
            (self.workspace,),
        )
        return int(cursor.fetchone()[0]) + 1

    def _claimable(self) -> str:
        # The claim's transaction holds the write lock: no other claimer is at work.
        return ""

    def _searched(self, query: SearchQuery) -> str:
        # A text search scans the index of the search text, a small part of the table's
        # pages, and reads the table only for the rows that match.
        table = self._table("opportunities")
        return f"{table} INDEXED BY opportunities_by_text" if query.text else table

    def _pipeline_groups(
        self, cursor: Cursor, process: str, *, basis: Basis, owner: str | None
    ) -> list[PipelineGroup]:
        """Summed in SQL as integers (whole units and millionths apart) while reading
        the covering index ``opportunities_by_stage`` in its order (so the database
        neither reads the table nor sorts); should a sum overflow SQLite's 64-bit
        integers, the same columns are summed in Python instead.

        With ``basis="annual_value"``, each group sums its deals with an annual value
        (in ``annual_currency``) apart from those without (in ``value_currency``)."""
        where = "workspace = ? AND process = ?"
        parameters: list[object] = [self.workspace, process]
        if owner is not None:
            where += " AND owner = ?"
            parameters.append(owner)
        annual = "(annual_whole > 0 OR annual_micro > 0)" if basis == "annual_value" else "0"
        table = self._table("opportunities")
        sums: dict[tuple[bool, str, str], list[int]] = {}
        try:
            cursor.execute(
                f"SELECT stage, status, value_currency, annual_currency, "
                f"{_pipeline_sums(annual)} FROM {table} WHERE {where} "
                "GROUP BY stage, status, owner, value_currency, annual_currency",
                parameters,
            )
            found = cursor.fetchall()
        except sqlite3.OperationalError as error:
            if "integer overflow" not in str(error):
                raise
            cursor.execute(
                f"SELECT stage, status, {annual}, value_currency, value_whole, value_micro, "
                "annual_currency, annual_whole, annual_micro, probability "
                f"FROM {table} WHERE {where}",
                parameters,
            )
            for stage, status, on, *value, probability in cursor.fetchall():
                code, whole, micro = value[3:] if on else value[:3]
                amount = whole * _MICRO + micro
                _add(sums, (status == PAUSED, stage, code), 1, amount, amount * probability)
        else:
            for stage, status, value_code, annual_code, *numbers in found:
                n = [number or 0 for number in numbers]
                for code, i in ((annual_code, 0), (value_code, 1)):
                    amount = n[2 + i] * _MICRO + n[4 + i]
                    weighted = n[6 + i] * _MICRO + n[8 + i]
                    _add(sums, (status == PAUSED, stage, code), n[i], amount, weighted)
        return [(*key, count, a, w) for key, (count, a, w) in sums.items()]

    def _group_sums(
        self, cursor: Cursor, keys: Sequence[str], where: str, parameters: Sequence[object]
    ) -> list[GroupSum]:
        """Summed in SQL as integers (whole units and millionths apart); should a sum
        overflow SQLite's 64-bit integers, the same columns are summed in Python."""
        table = self._table("opportunities")
        n = len(keys)
        selected = ", ".join(keys)
        try:
            cursor.execute(
                f"SELECT {selected}, count(*), sum(value_whole), sum(value_micro), "
                "sum(value_whole * probability), sum(value_micro * probability) "
                f"FROM {table} WHERE {where} GROUP BY {', '.join(str(i + 1) for i in range(n))}",
                parameters,
            )
            found = cursor.fetchall()
        except sqlite3.OperationalError as error:
            if "integer overflow" not in str(error):
                raise
            cursor.execute(
                f"SELECT {selected}, value_whole, value_micro, probability FROM {table} "
                f"WHERE {where}",
                parameters,
            )
            sums: dict[tuple[Any, ...], list[int]] = {}
            for *key, whole, micro, probability in cursor.fetchall():
                amount = whole * _MICRO + micro
                row = sums.setdefault(tuple(key), [0, 0, 0])
                row[0] += 1
                row[1] += amount
                row[2] += amount * probability
            return [(key, c, a, w) for key, (c, a, w) in sums.items()]
        return [
            (
                tuple(row[:n]),
                int(row[n]),
                row[n + 1] * _MICRO + row[n + 2],
                row[n + 3] * _MICRO + row[n + 4],
            )
            for row in found
        ]

    def _json_string(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def _json_object(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def _month(self, column: str) -> str:
        return f"substr({column}, 1, 7)"

    # -- schema ----------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction("upgrading the schema") as cursor:
            connection = cursor.connection
            connection.execute(_VERSION_TABLE)
            (current,) = connection.execute(
                "SELECT coalesce(max(version), 0) FROM schema_version"
            ).fetchone()
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"SQLite file {self.path!r} has schema version {current}, newer than "
                    f"{SCHEMA_VERSION}, the newest this salesflow knows: upgrade salesflow"
                )
            for version in range(current, SCHEMA_VERSION):
                MIGRATIONS[version](connection)
                connection.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version + 1, _utc_text(dt.datetime.now(dt.UTC))),
                )
            if current < SCHEMA_VERSION:
                # Statistics for the planner, over the new indexes and the rows there are.
                connection.execute("ANALYZE")

    def schema_version(self) -> int:
        """The schema version of the file (``SCHEMA_VERSION`` once opened)."""
        rows = self._query("reading the schema version", "SELECT max(version) FROM schema_version")
        return int(rows[0][0])
