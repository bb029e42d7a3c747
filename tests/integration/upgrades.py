"""What an upgraded store must answer, shared by the SQLite and PostgreSQL migration
tests: the query side over records written before it existed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from salesflow import Opportunity
from salesflow.ports import Repository
from salesflow.queries import SearchQuery, pipeline_totals


def assert_the_query_side_answers(repository: Repository, stored: Sequence[Opportunity]) -> None:
    """Search and the pipeline totals over an upgraded store equal the reference."""
    today = dt.date(2026, 3, 2)
    for query in (
        SearchQuery(today=today, text="hull & deck"),
        SearchQuery(today=today, text="FJORD"),
        SearchQuery(today=today, related_id="p-1"),
        SearchQuery(today=today, related_id="c-9"),
        SearchQuery(today=today, owner="kari", order_by="-value"),
        SearchQuery(today=today, order_by="title"),
    ):
        page = repository.search(query)
        assert page == query.page(stored), query
        assert page.total > 0
    for basis in ("value", "annual_value"):
        totals = repository.pipeline_totals("standard", basis=basis)
        assert totals == pipeline_totals(stored, basis=basis)


def sqlite_at_version(connection: Any, version: int) -> None:
    """Make an empty SQLite file what schema ``version`` left: the migrations of that
    time, each recorded in ``schema_version`` as salesflow records it."""
    import salesflow.sqlite as sqlite_module

    connection.execute(sqlite_module._VERSION_TABLE)
    for step in range(version):
        sqlite_module.MIGRATIONS[step](connection)
        connection.execute(
            "INSERT INTO schema_version VALUES (?, '2026-01-05T10:00:00.000000Z')", (step + 1,)
        )


def postgres_at_version(connection: Any, schema: str, version: int) -> None:
    """Create ``schema`` as schema ``version`` left it (empty: the step that fills new
    columns from existing rows has none to fill), each migration recorded."""
    import salesflow.postgres as postgres_module

    quoted = f'"{schema}"'
    connection.execute(f"CREATE SCHEMA {quoted}")
    connection.execute(
        f"CREATE TABLE {quoted}.schema_version ("
        "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for step in range(version):
        for statement in postgres_module._MIGRATIONS[step]:
            if statement != "FILL_V3":
                connection.execute(statement.replace("{s}", quoted))
        connection.execute(
            f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)", (step + 1,)
        )
