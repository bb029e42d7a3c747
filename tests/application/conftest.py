"""The application suite runs on every repository: in memory, SQLite and PostgreSQL.

``make_app(**options)`` builds a ``SalesFlow`` on the repository of the current
parameter (a fresh workspace each time), with the test's clock; ``app`` is one built
without options. A rule that one backend enforces and another does not shows up here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from salesflow import FixedClock, InMemoryRepository, Repository, SalesFlow
from salesflow.sqlite import SQLiteRepository

MakeApp = Callable[..., SalesFlow]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_repository(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Repository]]:
    """A function that opens a repository of this test's backend, in a new workspace."""
    opened: list[Repository] = []

    def open_one() -> Repository:
        workspace = f"w{uuid.uuid4().hex[:12]}"
        repository: Repository
        if request.param == "memory":
            repository = InMemoryRepository(workspace=workspace)
        elif request.param == "sqlite":
            repository = SQLiteRepository(tmp_path / "pipeline.db", workspace=workspace)
        else:
            from salesflow.postgres import PostgresRepository

            dsn = request.getfixturevalue("postgres_dsn")
            schema = request.getfixturevalue("postgres_schema")
            repository = PostgresRepository(dsn, workspace=workspace, schema=schema)
        opened.append(repository)
        return repository

    yield open_one
    for repository in opened:
        repository.close()


@pytest.fixture
def make_app(new_repository: Callable[[], Repository], clock: FixedClock) -> MakeApp:
    def make(**options: Any) -> SalesFlow:
        options.setdefault("clock", clock)
        return SalesFlow(new_repository(), **options)

    return make


@pytest.fixture
def app(make_app: MakeApp) -> SalesFlow:
    return make_app()
