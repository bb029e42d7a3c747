"""The read-only commands never make a pipeline: on a missing or empty SQLite file, or
a PostgreSQL schema without salesflow's tables, they say there is no pipeline there
(exit status 1) and leave everything as it was."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.cli.conftest import Run

#: Each read-only command with the arguments it needs.
READERS = [
    ("board",),
    ("forecast",),
    ("stuck",),
    ("analytics",),
    ("activities",),
    ("history", "acme"),
    ("export", "out.csv"),
    ("calendar", "--out", "out.ics"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_missing_file_is_not_created(run: Run, tmp_path: Path, command: tuple[str, ...]) -> None:
    done = run("--db", "nothere.db", *command)
    assert done.code == 1
    assert done.out == ""
    assert done.err.startswith("salesflow: error: no pipeline at nothere.db")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_an_empty_file_is_left_empty(run: Run, tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "empty.db").touch()
    done = run("--db", "empty.db", *command)
    assert done.code == 1
    assert done.err == (
        "salesflow: error: SQLite file 'empty.db' holds no salesflow pipeline; "
        "nothing was created\n"
    )
    assert (tmp_path / "empty.db").read_bytes() == b""
    assert [p.name for p in tmp_path.iterdir()] == ["empty.db"]


@pytest.mark.postgres
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_postgres_schema_is_not_created(
    run: Run, tmp_path: Path, postgres_dsn: str, command: tuple[str, ...]
) -> None:
    schema = f"salesflow_test_{uuid.uuid4().hex[:12]}"
    dsn = "postgresql://" + postgres_dsn.split("://", 1)[-1]
    done = run("--db", dsn, "--schema", schema, *command)
    try:
        assert done.code == 1
        assert done.out == ""
        assert f"/{schema} holds no salesflow pipeline; nothing was created" in done.err
        assert done.err.count("\n") == 1
        with psycopg.connect(postgres_dsn) as connection:
            found = connection.execute(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                (schema,),
            ).fetchone()
        assert found == (0,)
        assert list(tmp_path.iterdir()) == []
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_import_still_makes_a_pipeline(run: Run, tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_text("title,value\nAcme,5\n")
    done = run("--db", "new.db", "import", "deals.csv")
    assert done.code == 0, done.err
    assert run("--db", "new.db", "board").code == 0
