"""Several OS processes on one SQLite file or one PostgreSQL database.

Marked slow: each test starts a few interpreters ("spawn"), a second or two in all.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from multiprocessing.context import SpawnProcess
from pathlib import Path

import pytest

from salesflow import ChangeSet, EventKind, SalesFlow, StageAction
from salesflow.ports import Repository
from salesflow.postgres import SCHEMA_VERSION, PostgresRepository
from salesflow.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from salesflow.testing import make_opportunity
from tests.integration import workers
from tests.integration.spawning import SPAWN, run_all
from tests.integration.workers import Target

pytestmark = pytest.mark.slow

PROCESSES = 4
ROUNDS = 25


def seeded(target: Target) -> Repository:
    repository = workers.open_repository(target)
    repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
    return repository


def test_processes_committing_to_one_opportunity_lose_no_update(target: Target) -> None:
    repository = seeded(target)
    try:
        run_all(workers.bump, [(target, "o-1", worker, ROUNDS) for worker in range(PROCESSES)])
        final = repository.get_opportunity("o-1")
        assert final is not None
        assert final.version == 1 + PROCESSES * ROUNDS
        marks = [e.details["mark"] for e in repository.history("o-1")]
        assert sorted(marks) == sorted(f"w{w}-{n}" for w in range(PROCESSES) for n in range(ROUNDS))
        for worker in range(PROCESSES):  # each process' own commits stay in its order
            own = [m for m in marks if m.startswith(f"w{worker}-")]
            assert own == [f"w{worker}-{n}" for n in range(ROUNDS)]
    finally:
        repository.close()


def test_salesflows_in_several_processes_all_get_their_commands_in(target: Target) -> None:
    repository = workers.open_repository(target)
    try:
        app = SalesFlow(repository)
        opportunity_id = app.create_opportunity(title="Shared deal").opportunity.id
        run_all(
            workers.update,
            [(target, opportunity_id, worker, ROUNDS) for worker in range(PROCESSES)],
        )
        updates = [
            e.changes["description"][1]
            for e in app.history(opportunity_id)
            if e.kind is EventKind.UPDATED and "description" in e.changes
        ]
        assert sorted(updates) == sorted(
            f"w{w}-{n}" for w in range(PROCESSES) for n in range(ROUNDS)
        )
        assert app.get(opportunity_id).version == 1 + PROCESSES * ROUNDS
    finally:
        repository.close()


def test_many_processes_sending_mixed_commands_to_one_opportunity_all_succeed(
    target: Target, tmp_path: Path
) -> None:
    """Writers of one opportunity take turns (``Repository.command``): no commit meets
    a conflict, so with the default retries no command gives up, and the history holds
    the events of every command."""
    workers_count, rounds = 8, workers.MIXED_ROUNDS
    repository = workers.open_repository(target)
    try:
        app = SalesFlow(repository)
        opportunity_id = app.create_opportunity(title="Hot deal").opportunity.id
        for stage in ("lead", "qualification"):
            for n in range(10):
                app.add_action(
                    opportunity_id,
                    stage,
                    StageAction(key=f"{stage}-{n}", title=f"{stage} step {n}", required=False),
                )
        before = [e.id for e in app.history(opportunity_id)]
        outs = [tmp_path / f"worker-{w}.txt" for w in range(workers_count)]
        started = time.monotonic()
        run_all(
            workers.mixed,
            [(target, opportunity_id, w, str(outs[w])) for w in range(workers_count)],
            timeout=120,
        )
        elapsed = time.monotonic() - started
        gave_up = conflicts = 0
        committed: list[str] = []
        for out in outs:
            failed, retried, *ids = out.read_text(encoding="utf-8").split()
            gave_up += int(failed)
            conflicts += int(retried)
            committed.extend(ids)
        assert gave_up == 0, f"{gave_up} commands gave up with ConcurrencyError"
        # Every command holds the opportunity from its first read to its commit.
        assert conflicts == 0, f"{conflicts} commits met a version conflict"
        history = [e.id for e in app.history(opportunity_id)]
        assert len(history) == len(set(history))
        assert sorted(history) == sorted([*before, *committed])
        scheduled = app.activities(opportunity_id=opportunity_id)
        assert len([a for a in scheduled if a.title.startswith("w")]) == workers_count * len(
            range(2, rounds, 3)
        )
        assert elapsed < 90, f"{workers_count} x {rounds} commands took {elapsed:.0f} s"
    finally:
        repository.close()


def test_a_writer_killed_mid_stream_leaves_whole_commits_only(target: Target) -> None:
    repository = seeded(target)
    try:
        ready = SPAWN.Event()
        writer: SpawnProcess = SPAWN.Process(target=workers.stream, args=(target, "o-1", ready))
        writer.start()
        assert ready.wait(timeout=30), "the writer never got going"
        time.sleep(random.uniform(0.0, 0.05))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=10)
        assert writer.exitcode == -signal.SIGKILL

        if target[0] == "sqlite":
            with sqlite3.connect(target[1]) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        final = repository.get_opportunity("o-1")
        assert final is not None
        committed = final.version - 1
        assert committed >= 20
        assert final.description == f"m{committed}"
        activities = repository.activities(opportunity_id="o-1")
        assert sorted(a.id for a in activities) == sorted(f"a-{m}" for m in range(1, committed + 1))
        markers = [e.details["marker"] for e in repository.history("o-1")]
        assert markers == list(range(1, committed + 1))
        # The file or database takes new commits afterwards.
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-2"),)))
        assert repository.get_opportunity("o-2") is not None
    finally:
        repository.close()


@pytest.mark.postgres
def test_many_processes_may_create_the_schema_at_once(postgres_dsn: str, fresh_schema: str) -> None:
    target = ("postgres", postgres_dsn, fresh_schema, "main")
    run_all(workers.open_and_close, [(target,) for _ in range(PROCESSES)])
    repository = workers.open_repository(target)
    try:
        assert isinstance(repository, PostgresRepository)
        assert repository.schema_version() == SCHEMA_VERSION
    finally:
        repository.close()


def test_many_processes_may_create_a_sqlite_file_at_once(tmp_path: Path) -> None:
    target = ("sqlite", str(tmp_path / "new.db"), "main")
    run_all(workers.open_and_close, [(target,) for _ in range(PROCESSES)])
    with sqlite3.connect(target[1]) as connection:
        assert connection.execute("SELECT count(*) FROM schema_version").fetchone() == (
            SQLITE_SCHEMA_VERSION,
        )
