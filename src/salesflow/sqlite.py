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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeAlias

from salesflow._sql import SQLRepository
from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.serialization import encode_row, load_record, record_name

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteRepository"]

Migration: TypeAlias = Callable[[sqlite3.Connection], None]

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

#: The migrations in order: ``MIGRATIONS[n]`` upgrades a file from version n to n + 1.
MIGRATIONS: tuple[Migration, ...] = (_run(_V1), _upgrade_to_v2, _run(_V3))
#: The schema version this release writes.
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)"""


# -- values in columns -------------------------------------------------------------


def _column_value(value: object) -> object:
    """Python values as SQLite stores them: sortable text for moments and dates,
    exact decimal text for amounts."""
    if isinstance(value, dt.datetime):
        return _utc_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _utc_text(moment: dt.datetime) -> str:
    """A UTC moment as fixed-width text that sorts in time order."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _sql(columns: Mapping[str, object]) -> dict[str, object]:
    return {name: _column_value(value) for name, value in columns.items()}


# -- the repository ----------------------------------------------------------------


class SQLiteRepository(SQLRepository):
    """A repository in one SQLite file; safe for several threads and processes.

    ``path`` is the database file (created if missing; upgraded in place if an older
    salesflow wrote it). ``workspace`` names the slice of the file this repository
    reads and writes. ``timeout`` is how many seconds a write waits for another
    writer's transaction before giving up with ``ConcurrencyError``.

    Each thread that uses the repository opens its own connection on first use;
    :meth:`close` closes them all (call it when no thread is using the repository).
    """

    _mark = "?"
    _json_mark = "?"
    _constraint_errors = (sqlite3.IntegrityError,)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        workspace: str = "default",
        timeout: float = 30.0,
    ) -> None:
        workspace = checks.name(workspace, "SQLiteRepository.workspace")
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
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._migrate(self._connection())
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteRepository({self.path!r}, workspace={self.workspace!r})"

    # -- connections and errors ------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        with self._translated("opening the file"):
            connection = sqlite3.connect(
                self.path,
                timeout=self.timeout,
                isolation_level=None,  # transactions are begun and ended explicitly
                check_same_thread=False,  # used by one thread, closed by close()
            )
            try:
                self._enable_wal(connection)
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("PRAGMA synchronous = FULL")
            except BaseException:
                connection.close()
                raise
        with self._lock:
            self._connections.append(connection)
        self._local.connection = connection
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
            code = getattr(error, "sqlite_errorcode", 0) & 0xFF
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise ConcurrencyError(
                    f"SQLite file {self.path!r} stayed locked by another writer for "
                    f"{self.timeout} s while {doing}: {error}"
                ) from error
            raise StorageError(f"SQLite file {self.path!r}: {doing} failed: {error}") from error

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Cursor]:
        """One write transaction, begun with the file's write lock held: writers take
        turns, so history is in commit order without more locking."""
        connection = self._connection()
        with self._translated(doing), contextlib.closing(connection.cursor()) as cursor:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    cursor.execute("ROLLBACK")
                raise

    def _query(self, doing: str, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        connection = self._connection()
        with self._translated(doing):
            return connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        """Close every connection this repository opened; later use raises StorageError."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

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

    # -- schema ----------------------------------------------------------------

    def _migrate(self, connection: sqlite3.Connection) -> None:
        with self._transaction("upgrading the schema"):
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

    def schema_version(self) -> int:
        """The schema version of the file (``SCHEMA_VERSION`` once opened)."""
        rows = self._query("reading the schema version", "SELECT max(version) FROM schema_version")
        return int(rows[0][0])
