"""``PostgresRepository``: one pipeline shared by many app processes and hosts.

Needs the ``postgres`` extra (``pip install "salesflow[postgres]"``, psycopg 3); the
rest of salesflow never imports this module.

Every thread that uses a repository gets its own connection, opened on first use and
reopened if it breaks. Transactions run at READ COMMITTED: each write of an
opportunity or activity is conditional on the version it was read at
(``UPDATE ... WHERE version = <read version>``, ``INSERT ... ON CONFLICT DO
NOTHING``), and a write that touches no row is a conflict. A concurrent writer of the
same row waits for the first one's commit, then finds the version moved on, so no
update is ever lost. A commit that adds to the history of stored opportunities takes
a transaction-scoped advisory lock per opportunity, so that history is in commit
order; opportunities the commit creates need none, so a bulk import of any size takes
no locks. Searches and pipeline totals read in one REPEATABLE READ, READ ONLY
transaction each, so that a page and its count agree. The tables live in a schema of
their own (``salesflow`` unless told otherwise), created and upgraded on first use
under an advisory lock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

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
from salesflow.domain.opportunity import Opportunity
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.queries import Basis
from salesflow.serialization import encode_row, load_record, record_name

__all__ = ["SCHEMA_VERSION", "PostgresRepository"]

#: SQLSTATEs that mean "someone else got there first; run the command again":
#: serialization_failure, deadlock_detected, lock_not_available.
_RETRYABLE = frozenset({"40001", "40P01", "55P03"})

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
    # Version 4: the events in time order, so that a report as of a past moment reads
    # only the events recorded after it.
    ("CREATE INDEX events_by_time ON {s}.events (workspace, at)",),
)
#: The schema version this release writes.
SCHEMA_VERSION = len(_MIGRATIONS)

#: The opportunity columns version 3 added, filled from each row's JSON.
_V3_COLUMNS = ("probability", "annual_amount", "annual_currency", "sort_title", "search_text")


class PostgresRepository(SQLRepository):
    """A repository in a PostgreSQL database, for many processes on many hosts.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL. ``workspace`` names
    the slice of the tables this repository reads and writes; ``schema`` the
    PostgreSQL schema holding the tables. ``timeout`` is how many seconds a write
    waits for another transaction's locks before giving up with
    ``ConcurrencyError``; ``connect_timeout`` bounds each connection attempt.

    Each thread opens one connection on first use. :meth:`close` may be called at
    any time, from any thread: it refuses new work (``StorageError``) and closes each
    connection once its thread's current operation has ended.
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
    ) -> None:
        workspace = checks.name(workspace, "PostgresRepository.workspace")
        dsn = checks.text(dsn, "PostgresRepository.dsn", blank=False)
        if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
            raise ValidationError(
                f"PostgresRepository.schema: {schema!r} must be a plain identifier "
                "(letters, digits and _, at most 63)"
            )
        self.dsn = dsn
        self.workspace = workspace
        self.schema = schema
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._s = f'"{schema}"'
        self._where = _describe(dsn, schema)
        self._connections: ThreadConnections[psycopg.Connection[Any]] = ThreadConnections(
            lambda: repr(self), self._open, _close, _usable
        )
        self._local = self._connections.local
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresRepository({self._where}, workspace={self.workspace!r})"

    # -- connections and errors ------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        """This thread's connection (opened, or replaced if broken, when it is not
        in use); StorageError once closed."""
        return self._connections.current()

    def _open(self) -> psycopg.Connection[Any]:
        with self._translated("connecting"):
            connection = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self.connect_timeout
            )
            # Whatever the server's default: the version checks are designed for it.
            connection.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        return connection

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Turn psycopg's errors into salesflow's, naming the database and the work."""
        try:
            yield
        except psycopg.Error as error:
            connection = getattr(self._local, "connection", None)
            if connection is not None and not _usable(connection):
                self._connections.forget(connection)
            if error.sqlstate in _RETRYABLE:
                raise ConcurrencyError(
                    f"PostgreSQL {self._where}: {doing} met a concurrent transaction "
                    f"(SQLSTATE {error.sqlstate}): {error}"
                ) from error
            raise StorageError(f"PostgreSQL {self._where}: {doing} failed: {error}") from error

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[psycopg.Cursor[Any]]:
        """One READ COMMITTED transaction whose lock waits end after ``timeout``."""
        with (
            self._connections.use() as connection,
            self._translated(doing),
            connection.transaction(),
            connection.cursor() as cursor,
        ):
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                (f"{max(1, round(self.timeout * 1000))}ms",),
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
        ``opportunities_by_stage``."""
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
        cursor.execute(
            f"SELECT status = '{PAUSED}', stage, {currency}, count(*), sum({amount}), "
            f"sum({amount} * probability) FROM {self._table('opportunities')} "
            f"WHERE {where} GROUP BY 1, 2, 3",
            parameters,
        )
        return [
            (paused, stage, code, int(count), micro_units(total), micro_units(weighted))
            for paused, stage, code, count, total, weighted in cursor.fetchall()
        ]

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
        """Create or upgrade the tables; safe when many processes start at once."""
        if self.schema_version() == SCHEMA_VERSION:
            return
        with self._transaction("upgrading the schema") as cursor:
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


def _usable(connection: psycopg.Connection[Any]) -> bool:
    return not connection.closed and not connection.broken


def _close(connection: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):
        connection.close()


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
