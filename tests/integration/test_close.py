"""``close()`` is safe at any time: it refuses new work, lets work in flight finish or
fail with ``StorageError``, and never crashes (nor leaves a change set half written)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from salesflow import ChangeSet, FixedClock, SalesFlow
from salesflow.errors import SalesflowError, StorageError
from salesflow.postgres import PostgresRepository
from salesflow.sqlite import SQLiteRepository
from salesflow.testing import make_opportunity
from tests.conftest import START
from tests.unit.support import seed003_process

Opener = Callable[[], SQLiteRepository | PostgresRepository]

THREADS = 4
DEALS = 4


def _seed(open_repository: Opener) -> dict[str, int]:
    """Opportunities to work on, each with its version minus its count of events (a
    difference every command the workers run keeps)."""
    repository = open_repository()
    try:
        app = SalesFlow(repository, clock=FixedClock(START))
        app.define_process(seed003_process())
        offsets: dict[str, int] = {}
        for n in range(DEALS):
            deal = app.create_opportunity(title=f"Deal {n}", process="seed003").opportunity
            offsets[deal.id] = deal.version - len(app.history(deal.id))
        return offsets
    finally:
        repository.close()


def _work(
    app: SalesFlow, ids: list[str], seed: int, stop: threading.Event, seen: list[BaseException]
) -> None:
    """Read and run commands until stopped or refused, keeping every exception."""
    rng = random.Random(seed)
    while not stop.is_set():
        deal_id = rng.choice(ids)
        try:
            match rng.randrange(5):
                case 0:
                    app.get(deal_id)
                case 1:
                    app.history(deal_id)
                case 2:
                    app.search()
                case 3:
                    app.update(deal_id, title=f"Deal {rng.randrange(1000)}")
                case _:
                    app.set_probability(deal_id, rng.randrange(101))
        except BaseException as error:  # every one is checked by the test
            seen.append(error)
            if not isinstance(error, SalesflowError) or "closed" in str(error):
                return


def _consistent(open_repository: Opener, offsets: dict[str, int]) -> None:
    repository = open_repository()
    try:
        for deal_id, offset in offsets.items():
            stored = repository.get_opportunity(deal_id)
            assert stored is not None
            assert stored.version - len(repository.history(deal_id)) == offset, deal_id
    finally:
        repository.close()


def _close_under_load(open_repository: Opener, rounds: int) -> None:
    offsets = _seed(open_repository)
    ids = sorted(offsets)
    rng = random.Random(20260302)
    refused = 0
    for n in range(rounds):
        repository = open_repository()
        app = SalesFlow(repository, clock=FixedClock(START))
        stop = threading.Event()
        seen: list[BaseException] = []
        workers = [
            threading.Thread(target=_work, args=(app, ids, n * THREADS + i, stop, seen))
            for i in range(THREADS)
        ]
        for worker in workers:
            worker.start()
        time.sleep(rng.uniform(0.0, 0.05))
        repository.close()
        if n % 2:
            repository.close()  # idempotent
        time.sleep(0.01)
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
            assert not worker.is_alive()
        unexpected = [e for e in seen if not isinstance(e, SalesflowError)]
        assert not unexpected, unexpected
        refused += sum("is closed" in str(e) for e in seen)
        with pytest.raises(StorageError, match="closed"):
            app.get(ids[0])
        assert repository._connections._open == []  # every connection closed by now
        _consistent(open_repository, offsets)
    assert refused  # the workers did meet the close


def test_closing_sqlite_while_threads_work_never_crashes(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.db"
    _close_under_load(lambda: SQLiteRepository(path), rounds=20)


def test_closing_postgres_while_threads_work_never_crashes(
    postgres_dsn: str, fresh_schema: str
) -> None:
    _close_under_load(lambda: PostgresRepository(postgres_dsn, schema=fresh_schema), rounds=6)


def _open_sqlite(tmp_path: Path) -> SQLiteRepository:
    return SQLiteRepository(tmp_path / "pipeline.db")


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        return lambda: _open_sqlite(tmp_path)
    dsn: str = request.getfixturevalue("postgres_dsn")
    schema: str = request.getfixturevalue("fresh_schema")
    return lambda: PostgresRepository(dsn, schema=schema)


def test_close_refuses_new_work(opener: Opener) -> None:
    repository = opener()
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
    repository.close()
    repository.close()
    work: Callable[[], object]
    for work in (
        lambda: repository.get_opportunity("o-1"),
        repository.opportunities,
        lambda: repository.history("o-1"),
        lambda: repository.commit(ChangeSet(opportunities=(make_opportunity("o-2"),))),
    ):
        with pytest.raises(StorageError, match="is closed"):
            work()
    with pytest.raises(StorageError, match="is closed"), repository.command("o-1"):
        pass


def test_close_during_a_command_block_lets_it_commit_whole(opener: Opener) -> None:
    repository = opener()
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
    inside = threading.Event()
    closed = threading.Event()
    outcome: list[object] = []

    def command() -> None:
        try:
            with repository.command("o-1"):
                current = repository.get_opportunity("o-1")
                assert current is not None
                inside.set()
                closed.wait(10)
                changed = attrs.evolve(current, title="Changed", version=current.version + 1)
                repository.commit(ChangeSet(opportunities=(changed,)))
            outcome.append("committed")
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=command)
    worker.start()
    assert inside.wait(10)
    closer = threading.Thread(target=repository.close)  # from yet another thread
    closer.start()
    closer.join(10)
    closed.set()
    worker.join(10)
    assert outcome == ["committed"]
    assert repository._connections._open == []
    with pytest.raises(StorageError, match="is closed"):
        repository.get_opportunity("o-1")
    reopened = opener()
    try:
        stored = reopened.get_opportunity("o-1")
        assert stored is not None
        assert (stored.title, stored.version) == ("Changed", 2)
    finally:
        reopened.close()
