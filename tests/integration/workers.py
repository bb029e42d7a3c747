"""What the child processes of the multi-process tests run.

Each child is started with the "spawn" method: a fresh interpreter that imports this
module, builds its own repository (and its own ``SalesFlow``) and works on the shared
file or database. A child that fails exits non-zero with its traceback on stderr.
"""

from __future__ import annotations

import datetime as dt
import itertools
from multiprocessing.synchronize import Barrier
from multiprocessing.synchronize import Event as ReadySignal

import attrs

from salesflow import ChangeSet, Event, EventKind, SalesFlow
from salesflow.errors import ConcurrencyError
from salesflow.ports import Repository
from salesflow.testing import make_activity

#: Where the children find the shared storage: ("sqlite", path, workspace) or
#: ("postgres", dsn, schema, workspace).
Target = tuple[str, ...]


def open_repository(target: Target) -> Repository:
    if target[0] == "sqlite":
        from salesflow.sqlite import SQLiteRepository

        return SQLiteRepository(target[1], workspace=target[2])
    from salesflow.postgres import PostgresRepository

    return PostgresRepository(target[1], schema=target[2], workspace=target[3])


def bump(target: Target, opportunity_id: str, worker: int, rounds: int, together: Barrier) -> None:
    """Read, change and commit one opportunity ``rounds`` times, retrying conflicts."""
    repository = open_repository(target)
    together.wait()
    try:
        for n in range(rounds):
            mark = f"w{worker}-{n}"
            while True:
                current = repository.get_opportunity(opportunity_id)
                assert current is not None
                changed = attrs.evolve(current, description=mark, version=current.version + 1)
                event = Event(mark, EventKind.UPDATED, current.id, _now(), None, {"mark": mark})
                try:
                    repository.commit(ChangeSet(opportunities=(changed,), events=(event,)))
                except ConcurrencyError:
                    continue
                break
    finally:
        repository.close()


def update(
    target: Target, opportunity_id: str, worker: int, rounds: int, together: Barrier
) -> None:
    """Send ``rounds`` commands through a SalesFlow of this process' own."""
    repository = open_repository(target)
    app = SalesFlow(repository, retries=100, backoff=dt.timedelta(milliseconds=1))
    together.wait()
    try:
        for n in range(rounds):
            app.update(opportunity_id, description=f"w{worker}-{n}", actor=f"worker-{worker}")
    finally:
        repository.close()


#: How many commands each process of :func:`mixed` runs.
MIXED_ROUNDS = 50


def mixed(target: Target, opportunity_id: str, worker: int, out: str, together: Barrier) -> None:
    """Run ``MIXED_ROUNDS`` mixed commands on one opportunity through a SalesFlow with
    the default retries: stage changes back and forth, actions performed, activities
    scheduled. Writes to ``out`` how many gave up with ConcurrencyError, how many
    commits met a conflict (and were retried), then the id of every event this
    process' commands committed (one a line)."""
    repository = open_repository(target)
    conflicts = 0
    commit = repository.commit

    def counted(changes: ChangeSet) -> tuple[Event, ...]:
        nonlocal conflicts
        try:
            return commit(changes)
        except ConcurrencyError:
            conflicts += 1
            raise

    setattr(repository, "commit", counted)  # noqa: B010 - an instance's own commit
    app = SalesFlow(repository)
    heard: list[str] = []
    app.subscribe(lambda event: heard.append(event.id))
    actions = [a.id for a in app.get(opportunity_id).actions]
    due = _now() + dt.timedelta(days=1)
    gave_up = 0
    together.wait()
    try:
        for n in range(MIXED_ROUNDS):
            try:
                if n % 3 == 0:
                    stage = "qualification" if (worker + n) % 2 else "lead"
                    app.change_stage(
                        opportunity_id, stage, cancel_pending=False, actor=f"worker-{worker}"
                    )
                elif n % 3 == 1:
                    action = actions[(worker * 7 + n) % len(actions)]
                    app.perform_action(opportunity_id, action, actor=f"worker-{worker}")
                else:
                    app.schedule_activity(
                        title=f"w{worker}-{n}", due=due, opportunity_id=opportunity_id
                    )
            except ConcurrencyError:
                gave_up += 1
    finally:
        repository.close()
    with open(out, "w", encoding="utf-8") as file:
        file.write("\n".join([str(gave_up), str(conflicts), *heard]) + "\n")


def stream(target: Target, opportunity_id: str, ready: ReadySignal) -> None:
    """Commit forever (until killed): each change set writes the next version of the
    opportunity, a new activity and an event, all carrying the same marker."""
    repository = open_repository(target)
    current = repository.get_opportunity(opportunity_id)
    assert current is not None
    for marker in itertools.count(1):
        current = attrs.evolve(current, description=f"m{marker}", version=current.version + 1)
        repository.commit(
            ChangeSet(
                opportunities=(current,),
                activities=(make_activity(f"a-{marker}", opportunity_id=opportunity_id),),
                events=(
                    Event(
                        f"e-{marker}",
                        EventKind.NOTE_ADDED,
                        opportunity_id,
                        _now(),
                        None,
                        {"marker": marker},
                    ),
                ),
            )
        )
        if marker == 20:
            ready.set()


def open_and_close(target: Target, together: Barrier) -> None:
    """Build a repository (creating the schema if needed) at the same moment as others."""
    together.wait()
    open_repository(target).close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
