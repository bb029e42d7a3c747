"""PostgresRepository: the contract, its schema, translated errors, generated records."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import attrs
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from salesflow import (
    Activity,
    ChangeSet,
    Event,
    Money,
    Opportunity,
    Organization,
    Related,
    Status,
)
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import Repository
from salesflow.postgres import SCHEMA_VERSION, PostgresRepository
from salesflow.serialization import encode_row
from salesflow.testing import (
    T0,
    DurableRepositoryContract,
    make_activity,
    make_event,
    make_opportunity,
    make_process,
)
from tests import strategies
from tests.integration.upgrades import assert_the_query_side_answers, postgres_at_version

pytestmark = pytest.mark.postgres


class TestPostgresRepository(DurableRepositoryContract):
    @pytest.fixture(autouse=True)
    def _database(self, postgres_dsn: str, postgres_schema: str) -> None:
        self.dsn = postgres_dsn
        self.schema = postgres_schema

    def make_repository(self, workspace: str) -> Repository:
        return PostgresRepository(self.dsn, workspace=workspace, schema=self.schema)

    def overwrite_stored_data(self, table: str, workspace: str, key: str, data: str) -> None:
        column = "key" if table == "processes" else "id"
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            changed = connection.execute(
                f'UPDATE "{self.schema}".{table} SET data = %s::jsonb '
                f"WHERE workspace = %s AND {column} = %s",
                (data, workspace, key),
            ).rowcount
        assert changed == 1


@pytest.fixture
def repository(postgres_dsn: str, postgres_schema: str) -> Iterator[PostgresRepository]:
    workspace = f"w-{uuid.uuid4().hex}"
    repository = PostgresRepository(postgres_dsn, workspace=workspace, schema=postgres_schema)
    yield repository
    repository.close()


def test_the_first_use_creates_the_schema_at_the_latest_version(
    postgres_dsn: str, fresh_schema: str
) -> None:
    repository = PostgresRepository(postgres_dsn, schema=fresh_schema)
    try:
        assert repository.schema_version() == SCHEMA_VERSION
    finally:
        repository.close()
    PostgresRepository(postgres_dsn, schema=fresh_schema).close()  # a second use: no-op
    with psycopg.connect(postgres_dsn) as connection:
        versions = connection.execute(
            f'SELECT version FROM "{fresh_schema}".schema_version'
        ).fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


#: The columns of opportunities in schema versions 1 and 2.
V1_COLUMNS = [
    "workspace",
    "id",
    "version",
    "process",
    "stage",
    "status",
    "owner",
    "expected_close",
    "closed_on",
    "value_amount",
    "value_currency",
    "customer_id",
    "created_at",
]


def old_schema(
    dsn: str, schema: str, version: int, opportunities: tuple[Opportunity, ...] = ()
) -> None:
    """A schema as ``version`` (1 or 2) left it, holding these opportunities: made with
    the migrations of that time, its rows written as salesflow then wrote them."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        quoted = f'"{schema}"'
        postgres_at_version(connection, schema, version)
        for opportunity in opportunities:
            row = encode_row(opportunity, "default")
            connection.execute(
                f"INSERT INTO {quoted}.opportunities ({', '.join(V1_COLUMNS)}, data) "
                f"VALUES ({', '.join('%s' for _ in V1_COLUMNS)}, %s::jsonb)",
                [*(row[n] for n in V1_COLUMNS), row["data"]],
            )


def test_a_version_1_schema_gets_the_stage_index_in_place(
    postgres_dsn: str, fresh_schema: str
) -> None:
    old_schema(
        postgres_dsn,
        fresh_schema,
        1,
        (make_opportunity("o-1"), make_opportunity("o-2", stage="proposal")),
    )
    indexes = f"SELECT indexname FROM pg_indexes WHERE schemaname = '{fresh_schema}'"
    with psycopg.connect(postgres_dsn) as connection:
        assert ("opportunities_by_stage",) not in connection.execute(indexes).fetchall()
    repository = PostgresRepository(postgres_dsn, schema=fresh_schema)
    try:
        assert repository.schema_version() == SCHEMA_VERSION == 6
        assert repository.count_by_stage("standard") == {"lead": 1, "proposal": 1}
        assert [o.id for o in repository.opportunities(stages=["proposal"])] == ["o-2"]
    finally:
        repository.close()
    with psycopg.connect(postgres_dsn) as connection:
        assert ("opportunities_by_stage",) in connection.execute(indexes).fetchall()
        definition = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s "
            "AND indexname = 'opportunities_by_stage'",
            (fresh_schema,),
        ).fetchone()
        assert definition is not None
        assert "(workspace, process, stage)" in definition[0]


def test_a_version_2_schema_gets_the_query_columns_in_place(
    postgres_dsn: str, fresh_schema: str
) -> None:
    stored = (
        make_opportunity(
            "o-1",
            title="Ferry refit",
            description="Hull & DECK",
            customer=Organization("c-1", "Fjord Ferries"),
            related=(Related("contact", "p-1"), Related("company", "c-9")),
            value=Money("1234.567891", "NOK"),
            annual_value=Money("0.5", "NOK"),
            probability_override=40,
            owner="kari",
            expected_close=dt.date(2026, 4, 1),
        ),
        make_opportunity("o-2", stage="proposal", stage_probability=50, owner="kari"),
        make_opportunity("o-3", status=Status.PAUSED, related=(Related("contact", "p-1"),)),
    )
    old_schema(postgres_dsn, fresh_schema, 2, stored)
    repository = PostgresRepository(postgres_dsn, schema=fresh_schema)
    try:
        assert repository.schema_version() == SCHEMA_VERSION
        assert repository.processes_version() == 0
        assert_the_query_side_answers(repository, stored)
        repository.commit(ChangeSet(processes=(make_process("p-1"),), defined_at=T0))
        assert repository.processes_version() == 1
    finally:
        repository.close()
    with psycopg.connect(postgres_dsn) as connection:
        rows = connection.execute(
            f'SELECT id, probability, annual_amount, sort_title, search_text FROM "{fresh_schema}"'
            ".opportunities ORDER BY id"
        ).fetchall()
        assert rows == [
            ("o-1", 40, Decimal("0.5"), "ferry refit", "ferry refit hull & deck fjord ferries"),
            ("o-2", 50, None, "deal o-2", "deal o-2  "),
            ("o-3", 15, None, "deal o-3", "deal o-3  "),
        ]
        indexes: dict[str, str] = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                (fresh_schema,),
            ).fetchall()
        )
        assert "(workspace, opportunity_id, due, id)" in indexes["activities_by_opportunity"]
        assert "activities_workspace_opportunity_id_due_idx" not in indexes
        assert "INCLUDE" in indexes["opportunities_by_stage"]


def test_a_version_2_schema_with_bad_data_is_left_as_it_was(
    postgres_dsn: str, fresh_schema: str
) -> None:
    old_schema(postgres_dsn, fresh_schema, 2, (make_opportunity("o-1"),))
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"UPDATE \"{fresh_schema}\".opportunities SET data = '[]'")
    with pytest.raises(StorageError, match="opportunity 'o-1'"):
        PostgresRepository(postgres_dsn, schema=fresh_schema)
    with psycopg.connect(postgres_dsn) as connection:
        assert connection.execute(
            f'SELECT max(version) FROM "{fresh_schema}".schema_version'
        ).fetchone() == (2,)


def test_a_schema_from_a_newer_salesflow_is_refused(postgres_dsn: str, fresh_schema: str) -> None:
    PostgresRepository(postgres_dsn, schema=fresh_schema).close()
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'INSERT INTO "{fresh_schema}".schema_version (version) VALUES (99)')
    with pytest.raises(StorageError, match="schema version 99"):
        PostgresRepository(postgres_dsn, schema=fresh_schema)


def test_amounts_dates_and_moments_are_real_columns(
    repository: PostgresRepository, postgres_dsn: str
) -> None:
    berlin = dt.timezone(dt.timedelta(hours=2))
    repository.commit(
        ChangeSet(
            opportunities=(
                make_opportunity(
                    "o-1", value=Money("10.10", "EUR"), expected_close=dt.date(2026, 5, 1)
                ),
                make_opportunity("o-2", value=Money("0.05", "EUR")),
            ),
            activities=(make_activity("a-1", due=dt.datetime(2026, 3, 2, 10, 0, tzinfo=berlin)),),
        )
    )
    with psycopg.connect(postgres_dsn) as connection:
        total, close = connection.execute(
            "SELECT sum(value_amount), max(expected_close) "
            f'FROM "{repository.schema}".opportunities WHERE workspace = %s',
            (repository.workspace,),
        ).fetchone() or (None, None)
        assert total == Decimal("10.15")
        assert close == dt.date(2026, 5, 1)
        (due,) = connection.execute(
            f'SELECT due FROM "{repository.schema}".activities WHERE workspace = %s',
            (repository.workspace,),
        ).fetchone() or (None,)
        assert due == dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def test_a_bad_schema_name_or_dsn_is_refused(postgres_dsn: str) -> None:
    with pytest.raises(ValidationError, match="plain identifier"):
        PostgresRepository(postgres_dsn, schema='x"; DROP TABLE y; --')
    with pytest.raises(ValidationError, match="workspace"):
        PostgresRepository(postgres_dsn, workspace="")
    with pytest.raises(ValidationError, match="connection string"):
        PostgresRepository("host=localhost port")


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError, match="connecting failed") as caught:
        PostgresRepository("postgresql://someone:secret@127.0.0.1:1/nowhere", connect_timeout=2)
    assert "secret" not in str(caught.value)
    assert "nowhere@127.0.0.1:1" in str(caught.value)


def test_a_writer_waits_for_a_row_lock_then_gives_up_with_a_conflict(
    repository: PostgresRepository, postgres_dsn: str, postgres_schema: str
) -> None:
    opportunity = make_opportunity("o-1")
    repository.commit(ChangeSet(opportunities=(opportunity,)))
    impatient = PostgresRepository(
        postgres_dsn, workspace=repository.workspace, schema=postgres_schema, timeout=0.2
    )
    try:
        with psycopg.connect(postgres_dsn) as blocker:
            blocker.execute(
                f'SELECT 1 FROM "{postgres_schema}".opportunities '
                "WHERE workspace = %s AND id = 'o-1' FOR UPDATE",
                (repository.workspace,),
            )
            with pytest.raises(ConcurrencyError, match="55P03"):
                impatient.commit(ChangeSet(opportunities=(attrs.evolve(opportunity, version=2),)))
            blocker.rollback()
        impatient.commit(ChangeSet(opportunities=(attrs.evolve(opportunity, version=2),)))
    finally:
        impatient.close()
    stored = repository.get_opportunity("o-1")
    assert stored is not None
    assert stored.version == 2


def test_connections_broken_by_the_server_are_replaced_unnoticed(
    postgres_dsn: str, postgres_schema: str
) -> None:
    name = f"salesflow-test-{uuid.uuid4().hex[:8]}"
    dsn = psycopg.conninfo.make_conninfo(postgres_dsn, application_name=name)
    repository = PostgresRepository(dsn, schema=postgres_schema, workspace=name)
    try:
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        # The pool checks a connection before handing it out: the next read works.
        assert repository.get_opportunity("o-1") == make_opportunity("o-1")
    finally:
        repository.close()


def test_text_postgresql_cannot_hold_never_reaches_it(repository: PostgresRepository) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1", title="a\x00b"),)))
    assert repository.opportunities() == []


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    opportunity=strategies.opportunities(),
    activity=strategies.activities,
    event=strategies.events(),
)
def test_generated_records_round_trip_through_jsonb(
    repository: PostgresRepository, opportunity: Opportunity, activity: Activity, event: Event
) -> None:
    # Each example gets ids of its own: the workspace outlives the examples.
    key = f"gen-{uuid.uuid4().hex}"
    opportunity = attrs.evolve(opportunity, id=key, version=1)
    activity = attrs.evolve(activity, id=key, opportunity_id=key, version=1)
    event = attrs.evolve(event, opportunity_id=key)
    repository.commit(
        ChangeSet(opportunities=(opportunity,), activities=(activity,), events=(event,))
    )
    assert repository.get_opportunity(key) == opportunity
    assert repository.get_activity(key) == activity
    assert repository.history(key) == [event]


def test_transactions_are_read_committed_whatever_the_server_default(
    postgres_dsn: str, postgres_schema: str
) -> None:
    dsn = psycopg.conninfo.make_conninfo(
        postgres_dsn, options="-c default_transaction_isolation=serializable"
    )
    repository = PostgresRepository(dsn, schema=postgres_schema, workspace="isolation")
    try:
        with repository._transaction("checking the isolation level") as cursor:
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("read committed",)
    finally:
        repository.close()


def test_new_opportunities_take_no_history_lock(
    repository: PostgresRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nobody else can write the history of an opportunity this change set creates, so
    # only stored ones are locked: a bulk import would run out of lock memory.
    locked: list[Sequence[str]] = []
    order_history = repository._order_history

    def spy(cursor: Any, ids: Sequence[str]) -> None:
        locked.append(list(ids))
        order_history(cursor, ids)

    monkeypatch.setattr(repository, "_order_history", spy)
    stored = make_opportunity("o-stored")
    repository.commit(ChangeSet(opportunities=(stored,), events=(make_event("e-0", "o-stored"),)))
    repository.commit(
        ChangeSet(
            opportunities=(
                make_opportunity("o-new-1"),
                make_opportunity("o-new-2"),
                attrs.evolve(stored, version=2),
            ),
            events=(
                make_event("e-1", "o-new-1"),
                make_event("e-2", "o-new-2"),
                make_event("e-3", "o-stored"),
                make_event("e-4", "o-loose"),
            ),
        )
    )
    assert locked == [[], ["o-loose", "o-stored"]]


def test_one_change_set_creates_more_opportunities_than_the_lock_table_holds(
    repository: PostgresRepository, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        (per_transaction,) = connection.execute("SHOW max_locks_per_transaction").fetchone() or (
            "64",
        )
        (connections,) = connection.execute("SHOW max_connections").fetchone() or ("100",)
    count = int(per_transaction) * int(connections) + 500
    opportunities = tuple(make_opportunity(f"o-{i}") for i in range(count))
    events = tuple(make_event(f"e-{i}", f"o-{i}") for i in range(count))
    repository.commit(ChangeSet(opportunities=opportunities, events=events))
    assert repository.count_by_stage("standard") == {"lead": count}
    assert repository.history(f"o-{count - 1}") == [events[-1]]


def test_an_id_another_transaction_takes_meanwhile_is_named(
    repository: PostgresRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if another transaction stored "o-2" after this one looked the ids up.
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-2"),)))
    monkeypatch.setattr(repository, "_stored_ids", lambda cursor, table, ids: set())
    with pytest.raises(ValidationError, match="Opportunity 'o-2': the id is already taken"):
        repository.commit(
            ChangeSet(
                opportunities=tuple(make_opportunity(f"o-{i}", title="New") for i in range(1, 5))
            )
        )
    assert [o.id for o in repository.opportunities()] == ["o-2"]
