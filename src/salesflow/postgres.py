"""``PostgresRepository``: one pipeline shared by many app processes and hosts.

Needs the ``postgres`` extra (``pip install "salesflow[postgres]"``: psycopg 3 and
psycopg_pool); the rest of salesflow never imports this module.

Connections come from a ``psycopg_pool.ConnectionPool`` per repository: each
operation (a query, a transaction, a command block) takes one for its length and
gives it back, and the pool checks a connection before handing it out, so one broken
by a server restart is replaced unnoticed. Every connection has bounded waits: a
connect timeout, a server-side statement timeout, TCP keepalives and a TCP user
timeout, and a client-side deadline per operation that cuts the connection of an
operation still waiting on a silent network -- so a dead network becomes a
``StorageError`` within a bounded time, never a hang.

Transactions run at READ COMMITTED: each write of an opportunity or activity is
conditional on the version it was read at (``UPDATE ... WHERE version = <read
version>``, ``INSERT ... ON CONFLICT DO NOTHING``), and a write that touches no row is
a conflict. A concurrent writer of the same row waits for the first one's commit, then
finds the version moved on, so no update is ever lost. A commit that adds to the
history of stored opportunities takes a transaction-scoped advisory lock per
opportunity, so that history is in commit order; opportunities the commit creates
need none, so a bulk import of any size takes no locks. Searches and pipeline totals
read in one REPEATABLE READ, READ ONLY transaction each, so that a page and its count
agree. The tables live in a schema of their own (``salesflow`` unless told otherwise),
created and upgraded on first use under an advisory lock.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from salesflow._sql import (
    PAUSED,
    Cursor,
    GroupSum,
    PipelineGroup,
    SQLRepository,
    micro_units,
)
from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.opportunity import Opportunity
from salesflow.errors import ConcurrencyError, LockTimeout, StorageError, ValidationError
from salesflow.queries import Basis
from salesflow.serialization import encode_row, load_record, record_name

__all__ = ["SCHEMA_VERSION", "PostgresRepository"]

#: SQLSTATEs that mean "someone else got there first; run the command again":
#: serialization_failure, deadlock_detected.
_RETRYABLE = frozenset({"40001", "40P01"})

#: lock_not_available: a lock wait reached ``lock_timeout`` (the repository's
#: ``timeout``). A ``LockTimeout``, which ``SalesFlow`` does not run again.
_LOCK_NOT_AVAILABLE = "55P03"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: The migrations, in order: ``_MIGRATIONS[n]`` upgrades a schema from version n to
#: n + 1. ``{s}`` is the quoted schema name. Identifiers and the ``id`` columns use
#: the "C" collation, so that ordering by id is by code point, as in Python.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {s}.processes (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            data jsonb NOT NULL,
            PRIMARY KEY (workspace, key)
        )""",
        """CREATE TABLE {s}.opportunities (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            version integer NOT NULL,
            process text NOT NULL,
            stage text NOT NULL,
            status text NOT NULL,
            owner text,
            expected_close date,
            closed_on date,
            value_amount numeric NOT NULL,
            value_currency text NOT NULL,
            customer_id text,
            created_at timestamptz NOT NULL,
            data jsonb NOT NULL,
            PRIMARY KEY (workspace, id)
        )""",
        """CREATE TABLE {s}.activities (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            version integer NOT NULL,
            opportunity_id text COLLATE "C",
            status text NOT NULL,
            owner text,
            due timestamptz NOT NULL,
            data jsonb NOT NULL,
            PRIMARY KEY (workspace, id),
            FOREIGN KEY (workspace, opportunity_id) REFERENCES {s}.opportunities (workspace, id)
        )""",
        """CREATE TABLE {s}.events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            workspace text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            opportunity_id text COLLATE "C",
            kind text NOT NULL,
            at timestamptz NOT NULL,
            actor text,
            data jsonb NOT NULL
        )""",
        "CREATE INDEX ON {s}.processes (workspace, seq)",
        "CREATE INDEX ON {s}.opportunities (workspace, process, seq)",
        "CREATE INDEX ON {s}.opportunities (workspace, status, expected_close)",
        "CREATE INDEX ON {s}.opportunities (workspace, owner)",
        "CREATE INDEX ON {s}.opportunities (workspace, customer_id)",
        "CREATE INDEX ON {s}.opportunities (workspace, expected_close)",
        "CREATE INDEX ON {s}.activities (workspace, due, id)",
        "CREATE INDEX ON {s}.activities (workspace, opportunity_id, due)",
        "CREATE INDEX ON {s}.activities (workspace, owner, due)",
        "CREATE INDEX ON {s}.activities (workspace, status, due)",
        "CREATE INDEX ON {s}.events (workspace, opportunity_id, seq)",
    ),
    # Version 2: for counting a process' opportunities by stage and reading those of
    # some stages (what replacing a process asks).
    ("CREATE INDEX opportunities_by_stage ON {s}.opportunities (workspace, process, stage)",),
    # Version 3: the columns searches filter and sort on and the pipeline sums, the
    # related ids beside each opportunity, the version of the processes, and indexes
    # for searches, the pipeline (from the index alone) and the activities of one
    # opportunity in due order.
    (
        "ALTER TABLE {s}.opportunities ADD COLUMN probability integer, "
        "ADD COLUMN annual_amount numeric, ADD COLUMN annual_currency text, "
        'ADD COLUMN sort_title text COLLATE "C", ADD COLUMN search_text text',
        """CREATE TABLE {s}.opportunity_related (
            workspace text COLLATE "C" NOT NULL,
            related_id text COLLATE "C" NOT NULL,
            opportunity_id text COLLATE "C" NOT NULL,
            PRIMARY KEY (workspace, related_id, opportunity_id)
        )""",
        """CREATE TABLE {s}.process_versions (
            workspace text COLLATE "C" PRIMARY KEY,
            version bigint NOT NULL
        )""",
        "FILL_V3",  # not SQL: fill the new columns from each row's JSON (_fill_v3)
        "ALTER TABLE {s}.opportunities ALTER COLUMN probability SET NOT NULL, "
        "ALTER COLUMN sort_title SET NOT NULL, ALTER COLUMN search_text SET NOT NULL",
        "CREATE INDEX opportunity_related_by_opportunity "
        "ON {s}.opportunity_related (workspace, opportunity_id)",
        "DROP INDEX {s}.activities_workspace_opportunity_id_due_idx",
        "CREATE INDEX activities_by_opportunity "
        "ON {s}.activities (workspace, opportunity_id, due, id)",
        "DROP INDEX {s}.opportunities_workspace_owner_idx",
        "CREATE INDEX opportunities_by_owner "
        "ON {s}.opportunities (workspace, owner, expected_close, id)",
        "DROP INDEX {s}.opportunities_workspace_expected_close_idx",
        "CREATE INDEX opportunities_by_close ON {s}.opportunities (workspace, expected_close, id)",
        "DROP INDEX {s}.opportunities_by_stage",
        "CREATE INDEX opportunities_by_stage ON {s}.opportunities (workspace, process, stage) "
        "INCLUDE (status, owner, value_currency, value_amount, probability, annual_currency, "
        "annual_amount, id)",
    ),
    # Version 4: the change feed and the outbox. Each event gets its position in its
    # workspace's commit order -- the stored events numbered 1, 2, ... in the order
    # they were stored, as history reads them -- with a unique index that serves
    # changes(after=...); event_positions holds each workspace's last position, the
    # row every commit that adds events locks last (see _next_positions); the outbox
    # holds the outbound calls not yet made.
    (
        "ALTER TABLE {s}.events ADD COLUMN position bigint",
        "UPDATE {s}.events AS e SET position = numbered.position FROM ("
        "SELECT seq, row_number() OVER (PARTITION BY workspace ORDER BY seq) AS position "
        "FROM {s}.events) AS numbered WHERE numbered.seq = e.seq",
        "ALTER TABLE {s}.events ALTER COLUMN position SET NOT NULL",
        "CREATE UNIQUE INDEX events_by_position ON {s}.events (workspace, position)",
        """CREATE TABLE {s}.event_positions (
            workspace text COLLATE "C" PRIMARY KEY,
            position bigint NOT NULL
        )""",
        "INSERT INTO {s}.event_positions (workspace, position) "
        "SELECT workspace, max(position) FROM {s}.events GROUP BY workspace",
        """CREATE TABLE {s}.outbox (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            workspace text COLLATE "C" NOT NULL,
            id text COLLATE "C" NOT NULL,
            kind text NOT NULL,
            opportunity_id text COLLATE "C" NOT NULL,
            action_id text NOT NULL,
            queued_at timestamptz NOT NULL,
            attempts integer NOT NULL,
            lease_until timestamptz,
            last_error text,
            data jsonb NOT NULL,
            PRIMARY KEY (workspace, id)
        )""",
        "CREATE INDEX outbox_by_seq ON {s}.outbox (workspace, seq)",
    ),
    # Version 5: the events in time order, so that a report as of a past moment reads
    # only the events recorded after it.
    # A customer's opportunities in the searches' default order, as the owner's are.
    (
        "CREATE INDEX events_by_time ON {s}.events (workspace, at)",
        "DROP INDEX {s}.opportunities_workspace_customer_id_idx",
        "CREATE INDEX opportunities_by_customer "
        "ON {s}.opportunities (workspace, customer_id, expected_close, id)",
    ),
    # Version 6: every definition of each process with when it was defined, so that a
    # report as of a past moment reads the stages as they were then. A schema upgraded
    # from an earlier version knows only the current definitions: they count as
    # defined since '-infinity'.
    (
        """CREATE TABLE {s}.process_history (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            workspace text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            defined_at timestamptz NOT NULL,
            data jsonb NOT NULL
        )""",
        "CREATE INDEX process_history_by_time "
        "ON {s}.process_history (workspace, key, defined_at, seq)",
        "INSERT INTO {s}.process_history (workspace, key, defined_at, data) "
        "SELECT workspace, key, '-infinity', data FROM {s}.processes ORDER BY seq",
    ),
)
#: The schema version this release writes.
SCHEMA_VERSION = len(_MIGRATIONS)

#: The opportunity columns version 3 added, filled from each row's JSON.
_V3_COLUMNS = ("probability", "annual_amount", "annual_currency", "sort_title", "search_text")


class _Deadlines:
    """A client-side deadline per operation: a watch thread cuts the socket of an
    operation still running at its deadline, so the thread waiting on it gets an
    error instead of waiting for as long as the network stays silent.

    Cutting happens under the same lock as the end of an operation, so a connection
    whose operation has ended is never cut.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, psycopg.Connection[Any]]] = {}
        self._wake = threading.Event()
        self._watcher: threading.Thread | None = None
        #: How many connections were cut (for the tests and for logs).
        self.cut = 0

    @contextlib.contextmanager
    def watch(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        key = id(connection)
        with self._lock:
            self._running[key] = (time.monotonic() + self.seconds, connection)
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(
                    target=self._watch, name="salesflow-postgres-deadlines", daemon=True
                )
                self._watcher.start()
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(key, None)

    def _watch(self) -> None:
        tick = min(1.0, max(0.05, self.seconds / 4))
        while True:
            self._wake.wait(tick)
            if self._wake.is_set():
                return
            now = time.monotonic()
            with self._lock:
                for key, (deadline, connection) in list(self._running.items()):
                    if deadline <= now:
                        del self._running[key]
                        _cut(connection)
                        self.cut += 1

    def stop(self) -> None:
        self._wake.set()


def _cut(connection: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down: whatever waits on it fails at once (the
    pool then discards the connection)."""
    with contextlib.suppress(OSError, psycopg.Error):
        duplicate = socket.socket(fileno=os.dup(connection.fileno()))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


class _PooledConnections:
    """Connections from a ``psycopg_pool`` pool, one per operation of a thread.

    A thread takes a connection for the length of one operation (a query, a
    transaction, a command block) with :meth:`use`; an operation nested in another on
    the same thread shares its connection. :meth:`close` refuses new work at once;
    each connection in use is closed when its operation gives it back.
    """

    def __init__(
        self,
        name: Callable[[], str],
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]],
        deadlines: _Deadlines,
    ) -> None:
        self._name = name
        self._pool = pool
        self._deadlines = deadlines
        #: This thread's connection (attribute ``connection``) while in use, and how
        #: deeply (attribute ``depth``).
        self.local = threading.local()
        self._lent: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()

    @property
    def _open(self) -> list[psycopg.Connection[Any]]:
        """The connections handed out so far that are still open."""
        return [c for c in list(self._lent) if not c.closed]

    @contextlib.contextmanager
    def use(self, *, deadline: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one operation; ``deadline``: cut it if the operation
        outlives the repository's ``operation_timeout``. StorageError once closed, or
        when no connection frees up within the pool's wait."""
        depth: int = getattr(self.local, "depth", 0)
        if depth:
            self.local.depth = depth + 1
            try:
                yield self.local.connection
            finally:
                self.local.depth = depth
            return
        try:
            connection = self._pool.getconn()
        except psycopg_pool.PoolClosed:
            raise StorageError(f"{self._name()} is closed") from None
        except psycopg_pool.PoolTimeout as error:
            raise StorageError(
                f"{self._name()}: no working connection within {self._pool.timeout:g} s "
                f"(all {self._pool.max_size} of the pool in use, or the server unreachable): "
                f"{error}"
            ) from error
        except psycopg.Error as error:
            raise StorageError(f"{self._name()}: connecting failed: {error}") from error
        self._lent.add(connection)
        self.local.connection = connection
        self.local.depth = 1
        try:
            if deadline:
                with self._deadlines.watch(connection):
                    yield connection
            else:
                yield connection
        finally:
            self.local.depth = 0
            self.local.connection = None
            with contextlib.suppress(psycopg.Error):
                self._pool.putconn(connection)

    def close(self) -> None:
        """Refuse new work; idle connections close now, those in use when given back."""
        self._pool.close(timeout=1.0)
        self._deadlines.stop()


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{where}: expected a number of seconds, got {value!r}")
    if not 0 < value <= 86_400:
        raise ValidationError(f"{where}: must be above 0 and at most 86400 seconds, not {value}")
    return float(value)


def _milliseconds(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


class PostgresRepository(SQLRepository):
    """A repository in a PostgreSQL database, for many processes on many hosts.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL. ``workspace`` names
    the slice of the tables this repository reads and writes; ``schema`` the
    PostgreSQL schema holding the tables, created (with the schema) on first use, or
    upgraded. With ``create=False`` a schema without salesflow's tables (or no such
    schema) is a ``StorageError`` and nothing is created: for tools that only read
    an existing pipeline.

    Connections: at most ``pool_size`` at once, from a pool (``min_connections`` kept
    open); a thread waits up to ``pool_timeout`` seconds for one to come free.

    Waits, each ending in an error rather than a hang (all in seconds):

    - ``timeout``: how long a write waits for another transaction's locks before
      giving up with ``LockTimeout`` (a ``ConcurrencyError`` that ``SalesFlow`` does
      not run again: the caller has waited as long as it allowed);
    - ``connect_timeout``: each connection attempt;
    - ``statement_timeout``: each statement, on the server;
    - ``network_timeout``: how long the network may stay silent (TCP keepalives and
      the TCP user timeout) before the connection counts as dead;
    - ``operation_timeout``: a deadline per operation (a query, a transaction, a
      command block), kept by the client: an operation still running then has its
      connection cut and fails with ``StorageError``, whatever the network does.

    :meth:`close` may be called at any time, from any thread: it refuses new work
    (``StorageError``) and closes each connection once its thread's current
    operation has ended.
    """

    _mark = "%s"
    _json_mark = "%s::jsonb"
    _json_text = "data::text"
    _constraint_errors = (psycopg.errors.ForeignKeyViolation,)

    def __init__(
        self,
        dsn: str,
        *,
        workspace: str = "default",
        schema: str = "salesflow",
        timeout: float = 30.0,
        connect_timeout: int = 10,
        statement_timeout: float = 60.0,
        network_timeout: float = 30.0,
        operation_timeout: float = 120.0,
        pool_size: int = 10,
        min_connections: int = 1,
        pool_timeout: float = 30.0,
        create: bool = True,
    ) -> None:
        where = "PostgresRepository"
        workspace = checks.name(workspace, f"{where}.workspace")
        self.create = checks.flag(create, f"{where}.create")
        dsn = checks.text(dsn, f"{where}.dsn", blank=False)
        if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
            raise ValidationError(
                f"{where}.schema: {schema!r} must be a plain identifier "
                "(letters, digits and _, at most 63)"
            )
        self.dsn = dsn
        self.workspace = workspace
        self.schema = schema
        self.timeout = _seconds(timeout, f"{where}.timeout")
        self.connect_timeout = checks.integer(
            connect_timeout, f"{where}.connect_timeout", 1, 86_400
        )
        self.statement_timeout = _seconds(statement_timeout, f"{where}.statement_timeout")
        self.network_timeout = _seconds(network_timeout, f"{where}.network_timeout")
        self.operation_timeout = _seconds(operation_timeout, f"{where}.operation_timeout")
        self.pool_size = checks.integer(pool_size, f"{where}.pool_size", 1, 10_000)
        self.min_connections = checks.integer(
            min_connections, f"{where}.min_connections", 0, self.pool_size
        )
        self.pool_timeout = _seconds(pool_timeout, f"{where}.pool_timeout")
        self._s = f'"{schema}"'
        self._where = _describe(dsn, schema)
        self._deadlines = _Deadlines(self.operation_timeout)
        # Connect once directly, so that a wrong DSN or an unreachable server is
        # reported at once, with the driver's reason (a pool would only time out).
        with self._translated("connecting"):
            psycopg.connect(dsn, **self._connection_options()).close()
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            dsn,
            kwargs=self._connection_options(),
            min_size=self.min_connections,
            max_size=self.pool_size,
            timeout=self.pool_timeout,
            configure=self._configure,
            check=self._check,
            name=f"salesflow {self._where}",
            open=False,
        )
        pool.open(wait=False)
        self._connections = _PooledConnections(lambda: repr(self), pool, self._deadlines)
        self._local = self._connections.local
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresRepository({self._where}, workspace={self.workspace!r})"

    # -- connections and errors ------------------------------------------------

    def _connection_options(self) -> dict[str, Any]:
        """libpq options of every connection: autocommit (transactions are explicit),
        the connect timeout, and TCP keepalives and user timeout that give up on a
        peer silent for ``network_timeout``."""
        silence = self.network_timeout
        return {
            "autocommit": True,
            "connect_timeout": max(2, self.connect_timeout),
            "keepalives": 1,
            "keepalives_idle": max(1, math.floor(silence / 2)),
            "keepalives_interval": max(1, math.floor(silence / 6)),
            "keepalives_count": 3,
            "tcp_user_timeout": max(1, round(silence * 1000)),
        }

    def _configure(self, connection: psycopg.Connection[Any]) -> None:
        """Set up a new connection of the pool."""
        # Whatever the server's default: the version checks are designed for it.
        connection.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        connection.execute(
            "SELECT set_config('statement_timeout', %s, false), "
            "set_config('idle_in_transaction_session_timeout', %s, false)",
            (
                _milliseconds(self.statement_timeout),
                # A client that vanishes inside a transaction must not hold its
                # locks for long: the server ends such a session after this.
                _milliseconds(self.operation_timeout),
            ),
        )

    def _check(self, connection: psycopg.Connection[Any]) -> None:
        """Before the pool hands a connection out: check that it still answers, within
        the operation deadline (a connection that does not is replaced)."""
        with self._deadlines.watch(connection):
            psycopg_pool.ConnectionPool.check_connection(connection)

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Turn psycopg's errors into salesflow's, naming the database and the work."""
        try:
            yield
        except psycopg.Error as error:
            if error.sqlstate == _LOCK_NOT_AVAILABLE:
                raise LockTimeout(
                    f"PostgreSQL {self._where}: {doing} waited longer than the lock "
                    f"timeout ({self.timeout:g} s) for another transaction "
                    f"(SQLSTATE {error.sqlstate}): {error}"
                ) from error
            if error.sqlstate in _RETRYABLE:
                raise ConcurrencyError(
                    f"PostgreSQL {self._where}: {doing} met a concurrent transaction "
                    f"(SQLSTATE {error.sqlstate}): {error}"
                ) from error
            if error.sqlstate == "57014":  # query_canceled: the statement timeout
                raise StorageError(
                    f"PostgreSQL {self._where}: {doing} took longer than the statement "
                    f"timeout ({self.statement_timeout:g} s): {error}"
                ) from error
            raise StorageError(f"PostgreSQL {self._where}: {doing} failed: {error}") from error

    @contextlib.contextmanager
    def _transaction(self, doing: str, *, deadline: bool = True) -> Iterator[psycopg.Cursor[Any]]:
        """One READ COMMITTED transaction whose lock waits end after ``timeout``."""
        with (
            self._connections.use(deadline=deadline) as connection,
            self._translated(doing),
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", (_milliseconds(self.timeout),)
            )
            yield cursor

    @contextlib.contextmanager
    def _snapshot(self, doing: str) -> Iterator[psycopg.Cursor[Any]]:
        """One REPEATABLE READ, READ ONLY transaction: its reads see one snapshot."""
        with (
            self._connections.use() as connection,
            self._translated(doing),
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield cursor

    def _query(self, doing: str, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        block = self._block()
        if block is not None:  # inside a command block: in its transaction
            with self._translated(doing):
                block.execute(sql, parameters)
                return block.fetchall()
        with (
            self._connections.use() as connection,
            self._translated(doing),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, parameters)
            return cursor.fetchall()

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
        if isinstance(record, Activity):  # the activities' only foreign key
            return self._missing_opportunity(record)
        return StorageError(
            f"{kind.capitalize()} {record.id!r} breaks a rule of the {table} table "
            f"in workspace {self.workspace!r}: {error}"
        )

    def _table(self, name: str) -> str:
        return f"{self._s}.{name}"

    def _text_filter(self, needle: str) -> tuple[str, list[object]]:
        return "strpos(search_text, %s) > 0", [needle]

    def _pipeline_groups(
        self, cursor: Cursor, process: str, *, basis: Basis, owner: str | None
    ) -> list[PipelineGroup]:
        """Summed exactly as ``numeric``, from the covering index
        ``opportunities_by_stage``; the weighted sums are taken per probability."""
        if basis == "annual_value":
            currency, amount = (
                f"CASE WHEN annual_amount <> 0 THEN annual_{name} ELSE value_{name} END"
                for name in ("currency", "amount")
            )
        else:
            currency, amount = "value_currency", "value_amount"
        where = "workspace = %s AND process = %s"
        parameters: list[object] = [self.workspace, process]
        if owner is not None:
            where += " AND owner = %s"
            parameters.append(owner)
        # Grouped by probability too, so that the database sums amounts only; the
        # weighted sum is each group's exact sum times its probability (a whole
        # number), which spares a numeric product per row.
        cursor.execute(
            f"SELECT status = '{PAUSED}', stage, {currency}, probability, count(*), "
            f"sum({amount}) FROM {self._table('opportunities')} "
            f"WHERE {where} GROUP BY 1, 2, 3, 4",
            parameters,
        )
        groups: dict[tuple[bool, str, str], list[int]] = {}
        for paused, stage, code, probability, count, total in cursor.fetchall():
            units = micro_units(total)
            group = groups.setdefault((paused, stage, code), [0, 0, 0])
            group[0] += int(count)
            group[1] += units
            group[2] += units * int(probability)
        return [
            (paused, stage, code, count, total, weighted)
            for (paused, stage, code), (count, total, weighted) in groups.items()
        ]

    def _next_positions(self, cursor: Cursor, count: int) -> int:
        # The workspace's counter row, moved on by ``count``: its row lock is held to
        # the end of this transaction, so the next commit that adds events waits here
        # until this one has committed (and is visible) or rolled back, and then
        # numbers after it. The commit's last statement but one: the lock is held for
        # the insert of the events and the COMMIT only. (Why a sequence would not do:
        # docs/storage.md, "The change feed".)
        cursor.execute(
            f"INSERT INTO {self._table('event_positions')} AS p (workspace, position) "
            "VALUES (%s, %s) ON CONFLICT (workspace) DO UPDATE "
            "SET position = p.position + excluded.position RETURNING position",
            (self.workspace, count),
        )
        row = cursor.fetchone()
        return int(row[0]) - count + 1

    def _claimable(self) -> str:
        # A row another claimer has locked is passed over, not waited for.
        return "FOR UPDATE SKIP LOCKED"

    def _group_sums(
        self, cursor: Cursor, keys: Sequence[str], where: str, parameters: Sequence[object]
    ) -> list[GroupSum]:
        """Summed exactly as ``numeric``."""
        n = len(keys)
        cursor.execute(
            f"SELECT {', '.join(keys)}, count(*), sum(value_amount), "
            f"sum(value_amount * probability) FROM {self._table('opportunities')} "
            f"WHERE {where} GROUP BY {', '.join(str(i + 1) for i in range(n))}",
            parameters,
        )
        return [
            (tuple(row[:n]), int(row[n]), micro_units(row[n + 1]), micro_units(row[n + 2]))
            for row in cursor.fetchall()
        ]

    def _json_string(self, column: str, *path: str) -> str:
        return f"({column} #>> '{{{','.join(path)}}}')"

    def _json_object(self, column: str, *path: str) -> str:
        return f"({column} #> '{{{','.join(path)}}}')"

    def _month(self, column: str) -> str:
        return f"to_char({column}, 'YYYY-MM')"

    def _hold(self, cursor: Cursor, opportunity_id: str) -> None:
        # The row lock makes the other writers of this opportunity wait (up to
        # ``timeout``); being READ COMMITTED, each read after it sees the last commit.
        cursor.execute(
            f"SELECT 1 FROM {self._table('opportunities')} "
            "WHERE workspace = %s AND id = %s FOR UPDATE",
            (self.workspace, opportunity_id),
        )

    # A workspace PostgreSQL has no statistics for yet (one being imported into) can get
    # a plan that reads all its rows for ``id IN (...)``: the insert finds a taken id.
    _looks_up_new_ids = False

    def _taken_meanwhile(self, cursor: Cursor, table: str, ids: Sequence[str]) -> list[str]:
        # The rows of these ids that another transaction wrote (xmin: the writer).
        cursor.execute(
            f"SELECT id FROM {self._table(table)} WHERE workspace = %s AND id = ANY(%s) "
            "AND xmin::text <> (pg_current_xact_id()::text::numeric %% 4294967296)::text",
            (self.workspace, list(ids)),
        )
        late = {row[0] for row in cursor.fetchall()}
        return [id_ for id_ in ids if id_ in late]

    def _order_history(self, cursor: Cursor, opportunity_ids: Sequence[str]) -> None:
        # History is read in insertion order; holding a lock per opportunity while
        # its events are inserted makes that order the commit order.
        for opportunity_id in opportunity_ids:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"salesflow history {self.schema} {self.workspace} {opportunity_id}",),
            )

    # -- schema ----------------------------------------------------------------

    def schema_version(self) -> int:
        """The version of the tables' schema (0 before the first use)."""
        rows = self._query(
            "reading the schema version",
            "SELECT to_regclass(%s) IS NOT NULL",
            (f"{self._s}.schema_version",),
        )
        if not rows[0][0]:
            return 0
        sql = _VERSION_SQL.replace("{s}", self._s)
        return int(self._query("reading the schema version", sql)[0][0])

    def _migrate(self) -> None:
        """Create or upgrade the tables; safe when many processes start at once. With
        ``create=False``, a schema without salesflow's tables is a StorageError."""
        found = self.schema_version()
        if found == SCHEMA_VERSION:
            return
        if found == 0 and not self.create:
            raise StorageError(
                f"PostgreSQL {self._where} holds no salesflow pipeline; nothing was created"
            )
        # A migration may take long on a big store: no operation deadline.
        with self._transaction("upgrading the schema", deadline=False) as cursor:
            # Held to the end of this transaction: the others wait, then see it done.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"salesflow schema {self.schema}",),
            )
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {self._s}")
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self._s}.schema_version ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor.execute(_VERSION_SQL.replace("{s}", self._s))
            row = cursor.fetchone()
            current = int(row[0]) if row is not None else 0
            if current > SCHEMA_VERSION:
                raise StorageError(
                    f"PostgreSQL {self._where} has schema version {current}, newer than "
                    f"{SCHEMA_VERSION}, the newest this salesflow knows: upgrade salesflow"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    if statement == "FILL_V3":
                        self._fill_v3(cursor)
                    else:
                        cursor.execute(statement.replace("{s}", self._s))
                cursor.execute(
                    f"INSERT INTO {self._s}.schema_version (version) VALUES (%s)",
                    (version + 1,),
                )

    def _fill_v3(self, cursor: psycopg.Cursor[Any]) -> None:
        """Fill the columns and related ids version 3 added from each row's JSON."""
        names = _V3_COLUMNS
        update = (
            f"UPDATE {self._s}.opportunities SET "
            f"{', '.join(f'{n} = %({n})s' for n in names)} WHERE seq = %(seq)s"
        )
        last = 0
        while True:
            cursor.execute(
                f"SELECT seq, workspace, id, data::text FROM {self._s}.opportunities "
                "WHERE seq > %s ORDER BY seq LIMIT 1000",
                (last,),
            )
            rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            updates: list[dict[str, object]] = []
            related: list[tuple[str, str, str]] = []
            for seq, workspace, id_, data in rows:
                opportunity = load_record(
                    data, Opportunity, record_name("opportunity", id_, workspace)
                )
                row = encode_row(opportunity, workspace)
                updates.append({**{n: row[n] for n in names}, "seq": seq})
                related.extend(
                    (workspace, related_id, id_)
                    for related_id in dict.fromkeys(r.id for r in opportunity.related)
                )
            cursor.executemany(update, updates)
            cursor.executemany(
                f"INSERT INTO {self._s}.opportunity_related "
                "(workspace, related_id, opportunity_id) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                related,
            )


_VERSION_SQL = "SELECT coalesce(max(version), 0) FROM {s}.schema_version"


def _describe(dsn: str, schema: str) -> str:
    """Where the tables are, without the password: ``db@host:port/schema``."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error as error:
        raise ValidationError(f"PostgresRepository.dsn: not a connection string: {error}") from None
    return (
        f"{info.get('dbname') or info.get('user') or '?'}@{info.get('host') or 'localhost'}"
        f":{info.get('port') or 5432}/{schema}"
    )
