"""Properties of the change feed that must hold for any run of commits, on the
in-memory and SQLite repositories (the PostgreSQL contract tests check the same
rules on examples)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow import ChangeSet, InMemoryRepository
from salesflow.ports import Repository
from salesflow.sqlite import SQLiteRepository
from salesflow.testing import make_event

#: One commit: how many events it holds, and whether its command block fails after it.
commits = st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=15)


@pytest.fixture(params=["memory", "sqlite"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Repository]]:
    """Opens a repository in a workspace of its own (one file for all of a test's)."""
    opened: list[Repository] = []

    def open_one() -> Repository:
        workspace = f"w{uuid.uuid4().hex[:12]}"
        repository: Repository = (
            InMemoryRepository(workspace=workspace)
            if request.param == "memory"
            else SQLiteRepository(tmp_path / "feed.db", workspace=workspace)
        )
        opened.append(repository)
        return repository

    yield open_one
    for repository in opened:
        repository.close()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=commits, after=st.integers(0, 70), limit=st.integers(1, 12))
def test_the_feed_is_every_committed_event_once_in_commit_order(
    fresh: Callable[[], Repository], run: list[tuple[int, bool]], after: int, limit: int
) -> None:
    repository = fresh()
    committed: list[str] = []
    for n, (size, fails) in enumerate(run):
        events = tuple(make_event(f"e{n}-{i}", None) for i in range(size))
        with contextlib.suppress(RuntimeError), repository.command(None):
            stored = repository.commit(ChangeSet(events=events))
            # The commit's events come back in order, numbered after all before them.
            assert [e.id for e in stored] == [e.id for e in events]
            assert [e.position for e in stored] == list(
                range(len(committed) + 1, len(committed) + size + 1)
            )
            if fails:
                raise RuntimeError("the command fails after its commit")
        if not fails:
            committed.extend(e.id for e in events)
    feed = repository.changes(0, 1000)
    assert [e.id for e in feed] == committed
    assert [e.position for e in feed] == list(range(1, len(committed) + 1))
    page = repository.changes(after, limit)
    assert [e.id for e in page] == committed[after : after + limit]
    assert all(e.position > after for e in page)
