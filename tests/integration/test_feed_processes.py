"""The change feed and the outbox with several processes on one SQLite file or one
PostgreSQL database (threads in one process for the in-memory repository).

Marked slow: each test starts a few interpreters ("spawn").
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path

import pytest

from salesflow import EventKind, InMemoryRepository, Opportunity, OpportunityAction, SalesFlow
from salesflow.ports import current_call
from tests.integration import feed_workers
from tests.integration.spawning import SPAWN, join_all, run_all
from tests.integration.workers import Target
from tests.unit.support import action, new_deal, seed003_process

pytestmark = pytest.mark.slow

WRITERS = 4
ROUNDS = 25


# -- the feed ----------------------------------------------------------------------


def test_a_reader_polling_while_four_processes_commit_sees_every_event_once(
    target: Target, tmp_path: Path
) -> None:
    """Each writer process runs its own opportunity's commands, so on PostgreSQL they
    commit concurrently; each waits a moment between numbering a commit's events and
    committing, which widens the window in which numbers from a sequence would be
    read out of order."""
    out = tmp_path / "seen.txt"
    writers_done = SPAWN.Event()
    together = SPAWN.Barrier(WRITERS + 1, timeout=60)
    reader = SPAWN.Process(
        target=feed_workers.read, args=(target, str(out), writers_done, together)
    )
    writers = [
        SPAWN.Process(target=feed_workers.write, args=(target, worker, ROUNDS, together))
        for worker in range(WRITERS)
    ]
    for child in [reader, *writers]:
        child.start()
    join_all(writers)
    writers_done.set()
    join_all([reader])

    seen = [int(line) for line in out.read_text(encoding="utf-8").split()]
    repository = feed_workers.open_plain(target)
    try:
        everything = SalesFlow(repository).changes(limit=10_000)
    finally:
        repository.close()
    commands = WRITERS * (ROUNDS + 1)
    assert len(everything) == commands  # one event per command
    assert seen == [e.position for e in everything] == list(range(1, commands + 1))
    # Each writer's own commands are in the feed in the order it ran them.
    for worker in range(WRITERS):
        own = [
            e.changes["description"][1]
            for e in everything
            if e.actor == f"worker-{worker}" and "description" in e.changes
        ]
        assert own == [f"w{worker}-{n}" for n in range(ROUNDS)]


def test_a_reader_polling_while_four_threads_commit_in_memory_sees_every_event_once() -> None:
    app = SalesFlow(InMemoryRepository())
    together = threading.Barrier(WRITERS + 1)
    writers_done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            together.wait()
            deal = app.create_opportunity(title=f"Deal of worker {worker}").opportunity.id
            for n in range(ROUNDS):
                app.update(deal, description=f"w{worker}-{n}")
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    def read() -> None:
        try:
            together.wait()
            cursor = 0
            while True:
                finished = writers_done.is_set()
                page = app.changes(cursor, limit=7)
                seen.extend(e.position for e in page)
                if page:
                    cursor = page[-1].position
                elif finished:
                    return
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in [reader, *writers]:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    reader.join()
    assert errors == []
    commands = WRITERS * (ROUNDS + 1)
    assert seen == [e.position for e in app.changes(limit=10_000)] == list(range(1, commands + 1))


# -- the outbox --------------------------------------------------------------------


def _pending_letters(target: Target, count: int) -> list[str]:
    """``count`` opportunities whose letter was performed while the post was down: the
    ids of the pending calls."""

    class Down:
        def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
            raise RuntimeError("mail server down")

        def invite(self, event: str, opportunity: Opportunity) -> bool:
            raise RuntimeError("calendar down")

    repository = feed_workers.open_plain(target)
    try:
        app = SalesFlow(repository, correspondence=Down(), invitations=Down())
        app.define_process(seed003_process())
        ids = []
        for n in range(count):
            deal = new_deal(app, "seed003", title=f"Deal {n}").id
            result = app.perform_action(deal, action(app, deal, "brochure").id)
            assert "It is pending" in result.notices[-1]
            ids.append(result.events[0].id)  # ACTION_PERFORMED: the call's id
        return ids
    finally:
        repository.close()


@pytest.mark.parametrize("when", ["claiming", "calling"])
def test_a_call_whose_process_was_killed_after_the_commit_is_made_by_a_fresh_process(
    target: Target, tmp_path: Path, when: str
) -> None:
    repository = feed_workers.open_plain(target)
    try:
        app = SalesFlow(repository)
        app.define_process(seed003_process())
        deal = new_deal(app, "seed003").id
    finally:
        repository.close()
    child = SPAWN.Process(target=feed_workers.send_and_die, args=(target, deal, when))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL

    repository = feed_workers.open_plain(target)
    try:
        app = SalesFlow(repository)
        app.define_process(seed003_process())
        assert action(app, deal, "brochure").completed  # the command had committed
        performed = next(e for e in app.history(deal) if e.kind is EventKind.ACTION_PERFORMED)
    finally:
        repository.close()
    log, out = tmp_path / "made.txt", tmp_path / "count.txt"
    # Killed while calling, the call was leased: only once the lease has run out is it
    # free for another process. Killed before claiming, it is free at once.
    later = (SalesFlow.call_lease.total_seconds() + 1) if when == "calling" else 0
    run_all(feed_workers.deliver, [(target, (str(log), str(out)), later, 20)])
    assert out.read_text(encoding="utf-8").split() == ["1"]
    assert [line.split()[0] for line in log.read_text(encoding="utf-8").splitlines()] == [
        performed.id
    ]


def test_two_processes_delivering_at_once_make_each_call_once(
    target: Target, tmp_path: Path
) -> None:
    ids = _pending_letters(target, 24)
    log = tmp_path / "made.txt"
    outs = [tmp_path / f"count-{n}.txt" for n in range(2)]
    run_all(feed_workers.deliver, [(target, (str(log), str(out)), 0, 3) for out in outs])
    made = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    assert sorted(call_id for call_id, _ in made) == sorted(ids)
    assert sum(int(out.read_text(encoding="utf-8")) for out in outs) == len(ids)
    # Nothing is left for a third.
    repository = feed_workers.open_plain(target)
    try:
        assert SalesFlow(repository).deliver_pending() == 0
    finally:
        repository.close()


def test_threads_delivering_at_once_in_memory_make_each_call_once() -> None:
    class Post:
        def __init__(self) -> None:
            self.down = True
            self.made: list[str] = []

        def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
            if self.down:
                raise RuntimeError("mail server down")
            call = current_call()
            assert call is not None
            self.made.append(call.id)

        def invite(self, event: str, opportunity: Opportunity) -> bool:
            raise AssertionError("no invitations here")

    post = Post()
    app = SalesFlow(InMemoryRepository(), correspondence=post, invitations=post)
    app.call_batch = 3
    app.define_process(seed003_process())
    for n in range(24):
        deal = new_deal(app, "seed003", title=f"Deal {n}").id
        app.perform_action(deal, action(app, deal, "brochure").id)
    post.down = False
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(app.deliver_pending())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 24
    assert len(post.made) == 24
    assert Counter(post.made).most_common(1)[0][1] == 1
