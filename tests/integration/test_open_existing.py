"""``create=False``: a repository that opens an existing pipeline only. Where there is
none -- a missing SQLite file, an empty or foreign one, a PostgreSQL schema without
salesflow's tables -- it is a ``StorageError`` and nothing is created or written."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from moneyed import Money

from salesflow import SalesFlow
from salesflow.errors import StorageError, ValidationError
from salesflow.sqlite import SCHEMA_VERSION as SQLITE_VERSION
from salesflow.sqlite import SQLiteRepository


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothere.db"
    with pytest.raises(StorageError, match=r"'.*nothere\.db' holds no salesflow pipeline"):
        SQLiteRepository(path, create=False)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_sqlite_file_is_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StorageError, match="holds no salesflow pipeline"):
        SQLiteRepository(path, create=False)
    assert path.read_bytes() == b""
    assert list(tmp_path.iterdir()) == [path]


def test_another_programs_sqlite_file_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="holds no salesflow pipeline"):
        SQLiteRepository(path, create=False)
    assert path.read_bytes() == before  # not even put in WAL mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_text("hello, not a database\n" * 100)
    with pytest.raises(StorageError, match="not a database"):
        SQLiteRepository(path, create=False)
    assert path.read_text() == "hello, not a database\n" * 100


def test_an_existing_sqlite_pipeline_opens(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.db"
    maker = SQLiteRepository(path, workspace="sales")
    SalesFlow(maker).create_opportunity(title="Kept", value=Money("5", "EUR"))
    maker.close()
    for workspace in ("sales", "another"):  # a workspace is a slice of a pipeline
        repository = SQLiteRepository(path, workspace=workspace, create=False)
        try:
            assert repository.schema_version() == SQLITE_VERSION
            titles = [o.title for o in SalesFlow(repository).search().items]
            assert titles == (["Kept"] if workspace == "sales" else [])
        finally:
            repository.close()


def test_create_must_be_a_flag(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"SQLiteRepository\.create"):
        SQLiteRepository(tmp_path / "x.db", create="no")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def _schema_exists(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
            (schema,),
        ).fetchone()
    assert row is not None
    return bool(row[0])


@pytest.mark.postgres
def test_a_missing_postgres_schema_is_not_created(postgres_dsn: str, fresh_schema: str) -> None:
    from salesflow.postgres import SCHEMA_VERSION, PostgresRepository

    with pytest.raises(StorageError, match=rf"/{fresh_schema} holds no salesflow pipeline"):
        PostgresRepository(postgres_dsn, schema=fresh_schema, create=False)
    assert not _schema_exists(postgres_dsn, fresh_schema)
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:  # empty, but there
        connection.execute(f'CREATE SCHEMA "{fresh_schema}"')
    with pytest.raises(StorageError, match="holds no salesflow pipeline"):
        PostgresRepository(postgres_dsn, schema=fresh_schema, create=False)
    with psycopg.connect(postgres_dsn) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (fresh_schema,),
        ).fetchone()
    assert tables == (0,)
    PostgresRepository(postgres_dsn, schema=fresh_schema).close()  # made by create=True
    repository = PostgresRepository(
        postgres_dsn, schema=fresh_schema, workspace=f"w-{uuid.uuid4().hex}", create=False
    )
    try:
        assert repository.schema_version() == SCHEMA_VERSION
    finally:
        repository.close()
