"""Stores written before the change feed: their events get positions in stored order.

A SQLite file at schema version 4 and a PostgreSQL schema at version 3 -- made with
the migrations of that time, their rows written as salesflow then wrote them -- are
upgraded in place: each workspace's stored events are numbered 1, 2, ... in the order
they were stored (the order ``history`` reads them in), new commits carry on from
there, the outbox works, and the query side still answers.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

import salesflow.postgres as postgres_module
import salesflow.sqlite as sqlite_module
from salesflow import (
    ChangeSet,
    Event,
    EventKind,
    Money,
    Opportunity,
    Organization,
    Related,
    Status,
)
from salesflow.ports import Repository
from salesflow.postgres import PostgresRepository
from salesflow.serialization import converter, encode_row
from salesflow.sqlite import SQLiteRepository
from salesflow.testing import T0, make_call, make_event, make_opportunity
from tests.integration.upgrades import (
    assert_the_query_side_answers,
    postgres_at_version,
    sqlite_at_version,
)

#: The events of two workspaces as an older salesflow stored them, interleaved.
STORED = [
    ("main", make_event("e-1", "o-1", changes={"owner": (None, "ann")})),
    ("other", make_event("x-1", "o-9")),
    ("main", Event("e-2", EventKind.NOTE_ADDED, "o-1", T0 - dt.timedelta(days=1), None, {})),
    ("main", make_event("e-3", None)),
    ("other", make_event("x-2", "o-9")),
    ("main", make_event("e-4", "o-2", n=4)),
]
OPPORTUNITIES = (
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

#: The event columns before the feed (SQLite version 2 on, PostgreSQL version 1 on).
EVENT_COLUMNS = ["workspace", "id", "opportunity_id", "kind", "at", "actor"]


def assert_the_feed_carries_on(repository: Repository, stored: list[Opportunity]) -> None:
    """The upgraded ``main`` workspace: its old events at 1..4 in stored order, new ones
    after them, a working outbox, and the query side."""
    assert [(e.id, e.position) for e in repository.changes(0, 100)] == [
        ("e-1", 1),
        ("e-2", 2),
        ("e-3", 3),
        ("e-4", 4),
    ]
    assert repository.changes(0, 100)[0] == STORED[0][1]
    assert [(e.id, e.position) for e in repository.history("o-1")] == [("e-1", 1), ("e-2", 2)]
    (new,) = repository.commit(
        ChangeSet(events=(make_event("e-5", "o-1"),), outbox=(make_call("c-1", stored[0]),))
    )
    assert new.position == 5
    assert [e.id for e in repository.changes(4, 100)] == ["e-5"]
    (call,) = repository.claim_calls(now=T0, until=T0 + dt.timedelta(minutes=5), limit=10)
    assert (call.id, call.opportunity) == ("c-1", stored[0])
    assert_the_query_side_answers(repository, stored)


def _v4_file(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            sqlite_at_version(connection, 4)
            for opportunity in OPPORTUNITIES:
                row = sqlite_module._storage_row(encode_row(opportunity, "main"))
                names = list(row)
                connection.execute(
                    f"INSERT INTO opportunities ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})",
                    [row[n] for n in names],
                )
                connection.executemany(
                    "INSERT INTO opportunity_related VALUES ('main', ?, ?)",
                    [(r.id, opportunity.id) for r in opportunity.related],
                )
            for workspace, event in STORED:
                row = sqlite_module._sql(encode_row(event, workspace))
                connection.execute(
                    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}, data) "
                    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)}, ?)",
                    [*(row[n] for n in EVENT_COLUMNS), json.dumps(converter.unstructure(event))],
                )
    finally:
        connection.close()


def test_a_version_4_sqlite_file_numbers_its_events_in_stored_order(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _v4_file(path)
    repository = SQLiteRepository(path, workspace="main")
    try:
        assert repository.schema_version() == sqlite_module.SCHEMA_VERSION == 8
        assert_the_feed_carries_on(repository, list(OPPORTUNITIES))
    finally:
        repository.close()
    other = SQLiteRepository(path, workspace="other")
    try:
        assert [(e.id, e.position) for e in other.changes(0, 10)] == [("x-1", 1), ("x-2", 2)]
    finally:
        other.close()
    connection = sqlite3.connect(path)
    try:
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                "EXPLAIN QUERY PLAN SELECT id, position, data FROM events "
                "WHERE workspace = 'main' AND position > 2 ORDER BY position LIMIT 10"
            )
        )
        assert "events_by_position" in plan
        assert "TEMP B-TREE" not in plan  # read in index order, not sorted
    finally:
        connection.close()


@pytest.mark.postgres
def test_a_version_3_postgres_schema_numbers_its_events_in_stored_order(
    postgres_dsn: str, fresh_schema: str
) -> None:
    quoted = f'"{fresh_schema}"'
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        postgres_at_version(connection, fresh_schema, 3)
        for opportunity in OPPORTUNITIES:
            row = encode_row(opportunity, "main")
            names = [n for n in row if n != "data"]
            connection.execute(
                f"INSERT INTO {quoted}.opportunities ({', '.join(names)}, data) "
                f"VALUES ({', '.join('%s' for _ in names)}, %s::jsonb)",
                [*(row[n] for n in names), row["data"]],
            )
            for related in opportunity.related:
                connection.execute(
                    f"INSERT INTO {quoted}.opportunity_related VALUES ('main', %s, %s)",
                    (related.id, opportunity.id),
                )
        for workspace, event in STORED:
            row = encode_row(event, workspace)
            connection.execute(
                f"INSERT INTO {quoted}.events ({', '.join(EVENT_COLUMNS)}, data) "
                f"VALUES ({', '.join('%s' for _ in EVENT_COLUMNS)}, %s::jsonb)",
                [*(row[n] for n in EVENT_COLUMNS), json.dumps(converter.unstructure(event))],
            )
    repository = PostgresRepository(postgres_dsn, schema=fresh_schema, workspace="main")
    try:
        assert repository.schema_version() == postgres_module.SCHEMA_VERSION == 6
        assert_the_feed_carries_on(repository, list(OPPORTUNITIES))
    finally:
        repository.close()
    other = PostgresRepository(postgres_dsn, schema=fresh_schema, workspace="other")
    try:
        assert [(e.id, e.position) for e in other.changes(0, 10)] == [("x-1", 1), ("x-2", 2)]
        (new,) = other.commit(ChangeSet(events=(make_event("x-3", None),)))
        assert new.position == 3  # the counter row was filled from the stored events
    finally:
        other.close()
