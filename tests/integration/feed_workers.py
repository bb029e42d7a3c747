"""What the child processes of the change feed and outbox tests run.

Each child is started with the "spawn" method and opens its own repository on the
shared file or database (see :mod:`tests.integration.workers`). A child that fails
exits non-zero with its traceback on stderr.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as Signal
from typing import Any

from salesflow import FixedClock, Opportunity, OpportunityAction, SalesFlow
from salesflow._sql import Cursor
from salesflow.ports import PendingCall, Repository, current_call
from salesflow.postgres import PostgresRepository
from salesflow.sqlite import SQLiteRepository
from tests.integration.workers import Target
from tests.unit.support import action, seed003_process


class SlowToCommitSQLite(SQLiteRepository):
    """Waits a moment between numbering a commit's events and committing it."""

    def _next_positions(self, cursor: Cursor, count: int) -> int:
        first = super()._next_positions(cursor, count)
        time.sleep(random.uniform(0, 0.003))
        return first


class SlowToCommitPostgres(PostgresRepository):
    """Waits a moment between numbering a commit's events and committing it: where the
    numbers came from a sequence, a reader would then often see a higher number
    committed before a lower one."""

    def _next_positions(self, cursor: Cursor, count: int) -> int:
        first = super()._next_positions(cursor, count)
        time.sleep(random.uniform(0, 0.003))
        return first


def open_slow(target: Target) -> Repository:
    if target[0] == "sqlite":
        return SlowToCommitSQLite(target[1], workspace=target[2])
    return SlowToCommitPostgres(target[1], schema=target[2], workspace=target[3])


def open_plain(target: Target) -> Repository:
    if target[0] == "sqlite":
        return SQLiteRepository(target[1], workspace=target[2])
    return PostgresRepository(target[1], schema=target[2], workspace=target[3])


# -- writers and a reader of the feed ----------------------------------------------


def write(target: Target, worker: int, rounds: int, together: Barrier) -> None:
    """Create an opportunity of this worker's own and change it ``rounds`` times."""
    repository = open_slow(target)
    app = SalesFlow(repository)
    together.wait()
    try:
        deal = app.create_opportunity(title=f"Deal of worker {worker}").opportunity.id
        for n in range(rounds):
            app.update(deal, description=f"w{worker}-{n}", actor=f"worker-{worker}")
    finally:
        repository.close()


def read(target: Target, out: str, writers_done: Signal, together: Barrier) -> None:
    """Poll the feed from position 0 until the writers are done and it has nothing
    more; write the positions received, in order, one a line."""
    repository = open_plain(target)
    app = SalesFlow(repository)
    seen: list[int] = []
    cursor = 0
    together.wait()
    try:
        while True:
            finished = writers_done.is_set()
            page = app.changes(cursor, limit=7)
            seen.extend(event.position for event in page)
            if page:
                cursor = page[-1].position
            elif finished:
                break
    finally:
        repository.close()
    with open(out, "w", encoding="utf-8") as file:
        file.write("".join(f"{position}\n" for position in seen))


# -- the outbox --------------------------------------------------------------------


class Recorder:
    """Correspondence and invitations that append the id of each call made to a file."""

    def __init__(self, path: str, pause: float = 0.0) -> None:
        self.path = path
        self.pause = pause

    def _note(self) -> None:
        call = current_call()
        assert call is not None
        time.sleep(self.pause)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(f"{call.id} {os.getpid()}\n")

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self._note()

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        self._note()
        return True


class Dies:
    """A port whose process is killed (SIGKILL) when it is called: after the command
    has committed and its call has been claimed, before the call is made."""

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        os.kill(os.getpid(), signal.SIGKILL)
        return False  # never reached


class DiesBeforeClaiming(SQLiteRepository):
    """Killed (SIGKILL) when asked to claim calls: just after a commit."""

    def claim_calls(self, **arguments: Any) -> list[PendingCall]:
        os.kill(os.getpid(), signal.SIGKILL)
        return []  # never reached


class PostgresDiesBeforeClaiming(PostgresRepository):
    """Killed (SIGKILL) when asked to claim calls: just after a commit."""

    def claim_calls(self, **arguments: Any) -> list[PendingCall]:
        os.kill(os.getpid(), signal.SIGKILL)
        return []  # never reached


def send_and_die(target: Target, opportunity_id: str, when: str) -> None:
    """Perform the opportunity's letter, and be killed after the commit: ``when`` is
    "claiming" (before the call is claimed) or "calling" (inside the port)."""
    if when == "claiming":
        repository: Repository = (
            DiesBeforeClaiming(target[1], workspace=target[2])
            if target[0] == "sqlite"
            else PostgresDiesBeforeClaiming(target[1], schema=target[2], workspace=target[3])
        )
    else:
        repository = open_plain(target)
    app = SalesFlow(repository, correspondence=Dies(), invitations=Dies())
    app.define_process(seed003_process())
    app.perform_action(opportunity_id, action(app, opportunity_id, "brochure").id)
    raise AssertionError("the process should have been killed")


def deliver(
    target: Target, files: tuple[str, str], later: float, batch: int, together: Barrier
) -> None:
    """``deliver_pending`` in a fresh process, ``later`` seconds from now by its clock
    (past a lease a dead process left), claiming ``batch`` calls at a time: each call
    it makes is appended to ``files[0]`` (with this process' id), and how many went
    out is written to ``files[1]``."""
    log, out = files
    repository = open_plain(target)
    clock = FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=later))
    ports = Recorder(log, pause=0.002)
    app = SalesFlow(repository, clock=clock, correspondence=ports, invitations=ports)
    app.call_batch = batch
    together.wait()
    try:
        made = app.deliver_pending()
    finally:
        repository.close()
    with open(out, "w", encoding="utf-8") as file:
        file.write(f"{made}\n")
