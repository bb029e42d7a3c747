"""Upgrading a file or schema written before process definitions were kept with their
moment: the definitions it holds count as in effect since the beginning of time, and
definitions made afterwards are kept with theirs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import attrs
import psycopg
import pytest

import salesflow.postgres as postgres_module
import salesflow.sqlite as sqlite_module
from salesflow.ports import ChangeSet, Repository
from salesflow.postgres import PostgresRepository
from salesflow.serialization import dump_record
from salesflow.sqlite import SQLiteRepository
from salesflow.testing import T0, make_process
from tests.integration.upgrades import postgres_at_version, sqlite_at_version

STORED = make_process("p-1", "Stored before the upgrade")
LONG_AGO = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)


def assert_history_starts_with_the_stored_definition(repository: Repository) -> None:
    assert repository.process_as_of("p-1", LONG_AGO) == STORED
    assert repository.process_as_of("p-2", T0) is None
    renamed = attrs.evolve(STORED, name="Renamed after the upgrade")
    repository.commit(ChangeSet(processes=(renamed,), defined_at=T0))
    assert repository.process_as_of("p-1", T0 - dt.timedelta(seconds=1)) == STORED
    assert repository.process_as_of("p-1", T0) == renamed
    assert repository.processes() == [renamed]


def test_a_version_6_sqlite_file_keeps_its_definitions_as_the_first(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        sqlite_at_version(connection, 6)
        connection.execute(
            "INSERT INTO processes (workspace, key, data) VALUES ('main', 'p-1', ?)",
            (dump_record(STORED, "process 'p-1'"),),
        )
    finally:
        connection.close()
    repository = SQLiteRepository(path, workspace="main")
    try:
        assert repository.schema_version() == sqlite_module.SCHEMA_VERSION == 8
        assert_history_starts_with_the_stored_definition(repository)
    finally:
        repository.close()


@pytest.mark.postgres
def test_a_version_5_postgres_schema_keeps_its_definitions_as_the_first(
    postgres_dsn: str, fresh_schema: str
) -> None:
    quoted = f'"{fresh_schema}"'
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        postgres_at_version(connection, fresh_schema, 5)
        connection.execute(
            f"INSERT INTO {quoted}.processes (workspace, key, data) "
            "VALUES ('main', 'p-1', %s::jsonb)",
            (dump_record(STORED, "process 'p-1'"),),
        )
    repository = PostgresRepository(postgres_dsn, schema=fresh_schema, workspace="main")
    try:
        assert repository.schema_version() == postgres_module.SCHEMA_VERSION == 6
        assert_history_starts_with_the_stored_definition(repository)
    finally:
        repository.close()
