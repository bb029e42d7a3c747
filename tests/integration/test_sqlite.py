"""SQLiteRepository: the contract, the file's settings, migrations, bad data, locks."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings

import salesflow.sqlite as sqlite_module
from salesflow import (
    Activity,
    ChangeSet,
    Event,
    EventKind,
    Money,
    Opportunity,
    Organization,
    Related,
    SalesFlow,
    Status,
)
from salesflow.domain.events import Details, Frozen
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import Repository
from salesflow.queries import SearchQuery, pipeline_totals
from salesflow.serialization import converter, encode_row
from salesflow.sqlite import SCHEMA_VERSION, SQLiteRepository
from salesflow.testing import (
    T0,
    DurableRepositoryContract,
    make_activity,
    make_event,
    make_opportunity,
)
from tests import strategies
from tests.integration.upgrades import assert_the_query_side_answers, sqlite_at_version


@contextlib.contextmanager
def raw(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A plain connection to the file, committed and closed on exit."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


class TestSQLiteRepository(DurableRepositoryContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "pipeline.db"

    def make_repository(self, workspace: str) -> Repository:
        return SQLiteRepository(self.path, workspace=workspace)

    def overwrite_stored_data(self, table: str, workspace: str, key: str, data: str) -> None:
        column = "key" if table == "processes" else "id"
        with raw(self.path) as connection:
            changed = connection.execute(
                f"UPDATE {table} SET data = ? WHERE workspace = ? AND {column} = ?",
                (data, workspace, key),
            ).rowcount
        assert changed == 1


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "pipeline.db"


@pytest.fixture
def repository(path: Path) -> Iterator[SQLiteRepository]:
    repository = SQLiteRepository(path, workspace="main")
    yield repository
    repository.close()


# -- the file ----------------------------------------------------------------------


def test_the_file_is_in_wal_mode_with_foreign_keys_a_busy_timeout_and_full_sync(
    repository: SQLiteRepository, path: Path
) -> None:
    connection = repository._connection()
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert connection.execute("PRAGMA busy_timeout").fetchone() == (30000,)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert repository.schema_version() == SCHEMA_VERSION == 8
    with raw(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_queries_can_filter_and_sum_on_real_columns(
    repository: SQLiteRepository, path: Path
) -> None:
    berlin = dt.timezone(dt.timedelta(hours=2))
    repository.commit(
        ChangeSet(
            opportunities=(
                make_opportunity("o-1", value=Money("10.10", "EUR"), owner="ann"),
                make_opportunity(
                    "o-2",
                    value=Money("0.000001", "EUR"),
                    expected_close=dt.date(2026, 5, 1),
                ),
            ),
            activities=(
                make_activity(
                    "a-1", due=dt.datetime(2026, 3, 2, 10, 0, tzinfo=berlin), owner="bob"
                ),
            ),
        )
    )
    with raw(path) as connection:
        rows = connection.execute(
            "SELECT id, value_amount, value_currency, owner, expected_close, created_at "
            "FROM opportunities ORDER BY id"
        ).fetchall()
        assert rows == [
            ("o-1", "10.10", "EUR", "ann", None, "2026-03-02T09:00:00.000000Z"),
            ("o-2", "0.000001", "EUR", None, "2026-05-01", "2026-03-02T09:00:00.000000Z"),
        ]
        assert connection.execute("SELECT due, owner FROM activities").fetchall() == [
            ("2026-03-02T08:00:00.000000Z", "bob")
        ]
        plan = " ".join(
            str(row)
            for row in connection.execute(
                "EXPLAIN QUERY PLAN SELECT data FROM activities "
                "WHERE workspace = 'main' AND owner = 'bob' ORDER BY due"
            )
        )
        assert "activities_by_owner" in plan


def test_a_memory_path_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a file path"):
        SQLiteRepository(":memory:")


def test_a_blank_workspace_is_refused(path: Path) -> None:
    with pytest.raises(ValidationError, match="workspace"):
        SQLiteRepository(path, workspace=" ")


def test_a_file_that_cannot_be_opened_is_a_storage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "pipeline.db"
    with pytest.raises(StorageError, match="no-such-folder"):
        SQLiteRepository(missing)


def test_a_closed_repository_refuses_work(path: Path) -> None:
    repository = SQLiteRepository(path)
    repository.close()
    with pytest.raises(StorageError, match="closed"):
        repository.opportunities()


# -- errors on writing -------------------------------------------------------------


def test_a_detail_the_converter_cannot_store_names_the_event(
    repository: SQLiteRepository,
) -> None:
    # A caller cannot build such an event; one built past the checks (as the domain
    # builds its own) is still refused by the repository, naming it.
    with pytest.raises(ValidationError, match=r"Event\.details\['tags'\]"):
        make_event("e-1", "o-1", tags={"a", "b"})
    unchecked = attrs.evolve(
        make_event("e-1", "o-1"), details=Frozen(Details.checked({"tags": {"a", "b"}}))
    )
    with pytest.raises(StorageError, match=r"event 'e-1'.*set"):
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),), events=(unchecked,)))
    assert repository.opportunities() == []


def test_a_writer_waits_for_the_lock_then_gives_up_with_a_conflict(path: Path) -> None:
    repository = SQLiteRepository(path, timeout=0.2)
    try:
        with raw(path) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            with pytest.raises(ConcurrencyError, match="stayed locked"):
                repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
            blocker.rollback()
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        assert repository.get_opportunity("o-1") == make_opportunity("o-1")
    finally:
        repository.close()


def test_text_that_is_not_json_is_a_storage_error(repository: SQLiteRepository, path: Path) -> None:
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
    with raw(path) as connection:
        connection.execute("UPDATE opportunities SET data = '{not json' WHERE id = 'o-1'")
    with pytest.raises(StorageError, match=r"opportunity 'o-1' \(workspace 'main'\)"):
        repository.get_opportunity("o-1")


# -- migrations --------------------------------------------------------------------

#: The schema salesflow's first release wrote, as it was: kept here verbatim so that
#: the upgrade path from real version 1 files stays tested.
V1_DDL = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE processes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (workspace, key)
);
CREATE TABLE opportunities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    process TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (workspace, id)
);
CREATE TABLE activities (
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
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL,
    id TEXT NOT NULL,
    opportunity_id TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
INSERT INTO schema_version VALUES (1, '2026-01-05T10:00:00.000000Z');
"""


@pytest.fixture
def v1_file(tmp_path: Path) -> tuple[Path, Opportunity, Activity, Event]:
    """A file as the version 1 schema wrote it, holding one of each record."""
    path = tmp_path / "old.db"
    opportunity = make_opportunity("o-1", owner="ann", value=Money("250.00", "GBP"))
    activity = make_activity("a-1", opportunity_id="o-1", owner="bob")
    event = make_event("e-1", "o-1", changes={"owner": (None, "ann")})
    with raw(path) as connection:
        connection.executescript(V1_DDL)
        connection.execute(
            "INSERT INTO opportunities (workspace, id, version, process, stage, status, data) "
            "VALUES ('main', 'o-1', 1, 'standard', 'lead', 'open', ?)",
            (json.dumps(converter.unstructure(opportunity)),),
        )
        connection.execute(
            "INSERT INTO activities (workspace, id, version, opportunity_id, status, due, data) "
            "VALUES ('main', 'a-1', 1, 'o-1', 'planned', '2026-03-02T09:00:00.000000Z', ?)",
            (json.dumps(converter.unstructure(activity)),),
        )
        connection.execute(
            "INSERT INTO events (workspace, id, opportunity_id, kind, data) "
            "VALUES ('main', 'e-1', 'o-1', 'updated', ?)",
            (json.dumps(converter.unstructure(event)),),
        )
    return path, opportunity, activity, event


def test_a_version_1_file_is_upgraded_in_place(
    v1_file: tuple[Path, Opportunity, Activity, Event],
) -> None:
    path, opportunity, activity, event = v1_file
    repository = SQLiteRepository(path, workspace="main")
    try:
        assert repository.schema_version() == SCHEMA_VERSION
        assert repository.get_opportunity("o-1") == opportunity
        assert repository.history("o-1") == [event]
        assert repository.activities(owner="bob") == [activity]  # a version 2 column
        moved = attrs.evolve(opportunity, stage="won", version=2)
        repository.commit(ChangeSet(opportunities=(moved,)))
        assert repository.get_opportunity("o-1") == moved
    finally:
        repository.close()
    with raw(path) as connection:
        assert connection.execute(
            "SELECT owner, value_amount, value_currency, created_at FROM opportunities"
        ).fetchall() == [("ann", "250.00", "GBP", "2026-03-02T09:00:00.000000Z")]
        assert connection.execute("SELECT at, actor FROM events").fetchall() == [
            ("2026-03-02T09:00:00.000000Z", "ann")
        ]
        versions = [v for (v,) in connection.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        indexes = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        assert {
            "activities_by_owner",
            "events_by_opportunity",
            "opportunities_by_stage",
            "events_by_time",
        } <= indexes
        assert connection.execute(
            "SELECT probability, value_whole, value_micro, sort_title, search_text "
            "FROM opportunities"
        ).fetchall() == [(15, 250, 0, "deal o-1", "deal o-1  ")]


#: The columns of opportunities, activities and events in versions 2 and 3.
V2_COLUMNS = {
    "opportunities": [
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
        "data",
    ],
    "activities": [
        "workspace",
        "id",
        "version",
        "opportunity_id",
        "status",
        "owner",
        "due",
        "data",
    ],
    "events": ["workspace", "id", "opportunity_id", "kind", "at", "actor", "data"],
}


def old_file(
    path: Path,
    version: int,
    opportunities: tuple[Opportunity, ...] = (),
    activities: tuple[Activity, ...] = (),
) -> None:
    """A file as schema ``version`` (2 or 3) left it, holding these records: made with
    the migrations of that time, its rows written as salesflow then wrote them."""
    with raw(path) as connection:
        sqlite_at_version(connection, version)
        for table, records in (("opportunities", opportunities), ("activities", activities)):
            names = V2_COLUMNS[table]
            for record in records:
                row = sqlite_module._sql(encode_row(record, "main"))
                connection.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})",
                    [row[n] for n in names],
                )


def test_a_version_2_file_gets_the_stage_index_in_place(path: Path) -> None:
    old_file(path, 2, (make_opportunity("o-1"), make_opportunity("o-2", stage="proposal")))
    with raw(path) as connection:
        indexes = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        assert "opportunities_by_stage" not in indexes
    repository = SQLiteRepository(path, workspace="main")
    try:
        assert repository.schema_version() == SCHEMA_VERSION
        assert repository.count_by_stage("standard") == {"lead": 1, "proposal": 1}
        assert [o.id for o in repository.opportunities(stages=["proposal"])] == ["o-2"]
    finally:
        repository.close()
    with raw(path) as connection:
        indexes = {n for (n,) in connection.execute("SELECT name FROM sqlite_master")}
        assert "opportunities_by_stage" in indexes
        versions = [v for (v,) in connection.execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_a_version_3_file_gets_the_query_columns_in_place(path: Path) -> None:
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
    activities = (
        make_activity("a-2", opportunity_id="o-1", due=T0 + dt.timedelta(hours=1)),
        make_activity("a-1", opportunity_id="o-1", due=T0 + dt.timedelta(hours=1)),
    )
    old_file(path, 3, stored, activities)
    repository = SQLiteRepository(path, workspace="main")
    try:
        assert repository.schema_version() == SCHEMA_VERSION == 8
        assert repository.processes_version() == 0
        assert_the_query_side_answers(repository, stored)
        assert [a.id for a in repository.activities(opportunity_id="o-1")] == ["a-1", "a-2"]
        repository.commit(
            ChangeSet(opportunities=(attrs.evolve(stored[0], related=(), version=2),))
        )
        assert (
            repository.search(SearchQuery(today=dt.date(2026, 3, 2), related_id="c-9")).total == 0
        )
    finally:
        repository.close()
    with raw(path) as connection:
        assert connection.execute(
            "SELECT id, probability, value_whole, value_micro, annual_whole, annual_micro, "
            "sort_title, search_text FROM opportunities ORDER BY id"
        ).fetchall() == [
            (
                "o-1",
                40,
                1234,
                567891,
                0,
                500000,
                "ferry refit",
                "ferry refit hull & deck fjord ferries",
            ),
            ("o-2", 50, 1000, 0, None, None, "deal o-2", "deal o-2  "),
            ("o-3", 15, 1000, 0, None, None, "deal o-3", "deal o-3  "),
        ]
        assert connection.execute(
            "SELECT related_id, opportunity_id FROM opportunity_related ORDER BY 1, 2"
        ).fetchall() == [("p-1", "o-3")]
        indexes = dict(
            connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        )
        assert "(workspace, opportunity_id, due, id)" in indexes["activities_by_opportunity"]
        assert "opportunity_related_by_opportunity" in indexes
        # ANALYZE ran after the upgrade: the planner knows the new indexes' sizes.
        analysed = {name for (name,) in connection.execute("SELECT idx FROM sqlite_stat1")}
        assert {"activities_by_opportunity", "opportunities_by_stage"} <= analysed


def test_a_version_3_file_with_bad_data_is_left_as_it_was(path: Path) -> None:
    old_file(path, 3, (make_opportunity("o-1"), make_opportunity("o-2")))
    with raw(path) as connection:
        connection.execute("UPDATE opportunities SET data = '[]' WHERE id = 'o-2'")
    with pytest.raises(StorageError, match="opportunity 'o-2'"):
        SQLiteRepository(path, workspace="main")
    with raw(path) as connection:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (3,)
        columns = [row[1] for row in connection.execute("PRAGMA table_info(opportunities)")]
        assert "search_text" not in columns


def plan(repository: SQLiteRepository, sql: str, parameters: tuple[object, ...] = ()) -> str:
    return " ".join(
        str(row[3])
        for row in repository._connection().execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
    )


def test_the_activities_of_an_opportunity_come_in_order_from_their_index(
    repository: SQLiteRepository,
) -> None:
    found = plan(
        repository,
        "SELECT id, version, data FROM activities WHERE workspace = 'main' "
        "AND opportunity_id = 'o-1' ORDER BY due, id",
    )
    assert "USING INDEX activities_by_opportunity (workspace=? AND opportunity_id=?)" in found
    assert "TEMP B-TREE" not in found


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"owner": "ann"}, "opportunities_by_owner"),
        ({"customer_id": "c-1"}, "opportunities_by_customer"),
    ],
)
def test_a_search_by_owner_or_customer_reads_its_page_in_index_order(
    repository: SQLiteRepository, filters: dict[str, str], index: str
) -> None:
    query = SearchQuery(today=dt.date(2026, 3, 2), **filters)  # type: ignore[arg-type]
    found = repository._search_filter(query)
    assert found is not None
    where, parameters = found
    order, more = repository._search_order(query)
    sql = f"SELECT id FROM opportunities WHERE {where} ORDER BY {order} LIMIT 50"
    page = plan(repository, sql, (*parameters, *more))
    assert index in page
    assert "TEMP B-TREE" not in page
    count = plan(repository, f"SELECT count(*) FROM opportunities WHERE {where}", tuple(parameters))
    assert f"COVERING INDEX {index}" in count


def test_a_text_search_scans_the_text_index_not_the_table(repository: SQLiteRepository) -> None:
    query = SearchQuery(today=dt.date(2026, 3, 2), text="Fjord")
    found = repository._search_filter(query)
    assert found is not None
    where, parameters = found
    order, more = repository._search_order(query)
    table = repository._searched(query)
    page = plan(
        repository,
        f"SELECT id FROM {table} WHERE {where} ORDER BY {order} LIMIT 50",
        (*parameters, *more),
    )
    assert "COVERING INDEX opportunities_by_text" in page
    count = plan(repository, f"SELECT count(*) FROM {table} WHERE {where}", tuple(parameters))
    assert "COVERING INDEX opportunities_by_text" in count


def test_pipeline_sums_beyond_64_bits_are_taken_in_python(repository: SQLiteRepository) -> None:
    largest = Money("999999999999999.999999", "USD")
    stored = tuple(
        make_opportunity(f"o-{i}", value=largest, probability_override=100) for i in range(100)
    )
    repository.commit(ChangeSet(opportunities=stored))
    statements: list[str] = []
    connection = repository._connection()
    connection.set_trace_callback(statements.append)
    try:
        totals = repository.pipeline_totals("standard", basis="value")
    finally:
        connection.set_trace_callback(None)
    assert totals == pipeline_totals(stored, basis="value")
    assert totals.rows[0].amount == Decimal("99999999999999999.9999")
    # The integer sum overflowed, so the columns were read and summed in Python.
    assert len([s for s in statements if s.startswith("SELECT stage")]) == 2


def test_the_pipeline_sums_from_the_stage_index_alone(repository: SQLiteRepository) -> None:
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
    statements: list[str] = []
    connection = repository._connection()
    connection.set_trace_callback(statements.append)
    try:
        for basis in ("value", "annual_value"):
            repository.pipeline_totals("standard", basis=basis, owner="ann")
    finally:
        connection.set_trace_callback(None)
    sums = [s for s in statements if "sum(" in s]
    assert len(sums) == 2
    for statement in sums:
        assert "COVERING INDEX opportunities_by_stage" in plan(repository, statement)


def test_counting_by_stage_reads_only_the_stage_index(repository: SQLiteRepository) -> None:
    plan = " ".join(
        str(row)
        for row in repository._connection().execute(
            "EXPLAIN QUERY PLAN SELECT stage, count(*) FROM opportunities "
            "WHERE workspace = 'main' AND process = 'standard' GROUP BY stage"
        )
    )
    assert "COVERING INDEX opportunities_by_stage" in plan
    assert "TEMP B-TREE" not in plan


def test_a_version_1_file_with_bad_data_is_left_as_it_was(
    v1_file: tuple[Path, Opportunity, Activity, Event],
) -> None:
    path = v1_file[0]
    with raw(path) as connection:
        connection.execute("UPDATE opportunities SET data = '{}'")
    with pytest.raises(StorageError, match="opportunity 'o-1'"):
        SQLiteRepository(path, workspace="main")
    with raw(path) as connection:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
        columns = [row[1] for row in connection.execute("PRAGMA table_info(opportunities)")]
        assert "owner" not in columns


def test_a_file_from_a_newer_salesflow_is_refused(path: Path) -> None:
    SQLiteRepository(path).close()
    with raw(path) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, '2030-01-01T00:00:00Z')")
    with pytest.raises(StorageError, match="schema version 99"):
        SQLiteRepository(path)


def test_opening_twice_does_not_migrate_twice(path: Path) -> None:
    SQLiteRepository(path).close()
    SQLiteRepository(path).close()
    with raw(path) as connection:
        assert connection.execute("SELECT count(*) FROM schema_version").fetchone() == (
            SCHEMA_VERSION,
        )


# -- generated records -------------------------------------------------------------


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    opportunity=strategies.opportunities(id="o-gen"),
    activity=strategies.activities,
    event=strategies.events(opportunity_id="o-gen"),
)
def test_generated_records_round_trip_through_the_file(
    repository: SQLiteRepository, opportunity: Opportunity, activity: Activity, event: Event
) -> None:
    opportunity = attrs.evolve(opportunity, version=1)
    activity = attrs.evolve(activity, id="a-gen", opportunity_id="o-gen", version=1)
    repository.commit(
        ChangeSet(opportunities=(opportunity,), activities=(activity,), events=(event,))
    )
    try:
        assert repository.get_opportunity("o-gen") == opportunity
        assert repository.get_activity("a-gen") == activity
        assert repository.history("o-gen") == [event]
    finally:
        with raw(repository.path) as connection:
            for table in ("events", "activities", "opportunities"):
                connection.execute(f"DELETE FROM {table}")


def test_event_kinds_are_stored_by_value(repository: SQLiteRepository, path: Path) -> None:
    event = Event("e-1", EventKind.STAGE_CHANGED, None, dt.datetime.now(dt.UTC), None, {})
    repository.commit(ChangeSet(events=(event,)))
    with raw(path) as connection:
        assert connection.execute("SELECT kind, opportunity_id FROM events").fetchall() == [
            ("stage_changed", None)
        ]


@pytest.mark.parametrize("workspace", ["\ud800", "a\x00b", "", 5])
def test_a_workspace_that_cannot_be_stored_is_refused(tmp_path: Path, workspace: object) -> None:
    with pytest.raises(ValidationError):
        SQLiteRepository(tmp_path / "p.db", workspace=workspace)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [None, 5, b"x", "a\x00b"])
def test_a_path_that_is_not_a_file_path_is_refused(path: object) -> None:
    with pytest.raises(ValidationError):
        SQLiteRepository(path)  # type: ignore[arg-type]


def test_a_page_of_one_status_is_read_in_order_from_its_index(
    repository: SQLiteRepository,
) -> None:
    app = SalesFlow(repository)
    app.create_opportunities(
        {"title": f"Deal {n}", "expected_close": dt.date(2026, 1, 1 + n % 28)} for n in range(300)
    )
    app.mark_won(app.search(limit=1).items[0].id)
    statements: list[str] = []
    repository._connection().set_trace_callback(statements.append)
    try:
        page = app.search(statuses="won")
    finally:
        repository._connection().set_trace_callback(None)
    assert page.total == 1
    (select,) = [s for s in statements if s.startswith("SELECT id FROM opportunities")]
    found = plan(repository, select)
    assert "INDEX opportunities_by_status (workspace=? AND status=?)" in found
    assert "TEMP B-TREE" not in found  # no sort: the index gives the order
