"""A read model in another process, kept up to date from the change feed.

Run ``python examples/feed_consumer.py`` for the demonstration: a sales app writes
to a SQLite pipeline while a consumer, in a process of its own, follows the feed and
keeps each owner's open deals and weighted total in a SQLite file of its own. Half
way through the consumer is killed with SIGKILL; started again, it carries on from
the cursor it stored and ends up exactly where a consumer that never died would be.

The consumer on its own::

    python examples/feed_consumer.py follow PIPELINE.db MODEL.db [--workspace W]
        [--batch N] [--pause SECONDS] [--until-idle]

It reads ``app.changes(after=cursor)`` in pages and applies each page in one
transaction of the model's file, together with the new cursor: after a crash the
model and its cursor agree, so no event is missed and none is counted twice.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from salesflow import Event, Money, SalesFlow, Status
from salesflow.sqlite import SQLiteRepository

#: The fields of an opportunity the read model follows.
FOLLOWED = ("owner", "status", "value", "probability")

SCHEMA = (
    # Where the consumer is in the feed, and how many events it has applied in all.
    "CREATE TABLE IF NOT EXISTS cursor (one INTEGER PRIMARY KEY CHECK (one = 1), "
    "position INTEGER NOT NULL, applied INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO cursor VALUES (1, 0, 0)",
    # Each deal as far as the model cares.
    "CREATE TABLE IF NOT EXISTS deals (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "status TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, "
    "probability INTEGER NOT NULL)",
    # What the model answers, kept by adding and taking away each deal's share.
    "CREATE TABLE IF NOT EXISTS owners (owner TEXT NOT NULL, currency TEXT NOT NULL, "
    "open_deals INTEGER NOT NULL, weighted TEXT NOT NULL, PRIMARY KEY (owner, currency))",
)

#: How the model names the owner of a deal that has none.
NOBODY = "(nobody)"


class ReadModel:
    """Each owner's open deals and weighted total, in a SQLite file with its cursor."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA synchronous = FULL")
        with self.transaction():
            for statement in SCHEMA:
                self.connection.execute(statement)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def cursor(self) -> int:
        """The position of the last event applied (0: none yet)."""
        (position,) = self.connection.execute("SELECT position FROM cursor").fetchone()
        return int(position)

    def applied(self) -> int:
        """How many events have been applied in all."""
        (applied,) = self.connection.execute("SELECT applied FROM cursor").fetchone()
        return int(applied)

    def apply(self, events: Sequence[Event]) -> None:
        """Apply a page of the feed and move the cursor past it, in one transaction."""
        with self.transaction() as db:
            (position,) = db.execute("SELECT position FROM cursor").fetchone()
            for event in events:
                if event.position <= position:
                    raise RuntimeError(f"event {event.position} is not after {position}")
                position = event.position
                followed = {k: v for k, v in event.changes.items() if k in FOLLOWED}
                if followed and event.opportunity_id is not None:
                    self._change(db, event.opportunity_id, followed)
            db.execute(
                "UPDATE cursor SET position = ?, applied = applied + ?", (position, len(events))
            )

    def _change(self, db: sqlite3.Connection, deal_id: str, changes: dict[str, Any]) -> None:
        row = db.execute(
            "SELECT owner, status, amount, currency, probability FROM deals WHERE id = ?",
            (deal_id,),
        ).fetchone()
        if row is not None:
            self._share(db, row, -1)
            owner, status, amount, currency, probability = row
        else:
            owner, status, amount, currency, probability = NOBODY, "", "0", "", 0
        if "owner" in changes:
            owner = changes["owner"][1] or NOBODY
        if "status" in changes:
            status = Status(changes["status"][1]).value
        if "value" in changes:
            money: Money = changes["value"][1]
            amount, currency = str(money.amount), str(money.currency.code)
        if "probability" in changes:
            probability = changes["probability"][1]
        new = (owner, status, amount, currency, probability)
        db.execute("INSERT OR REPLACE INTO deals VALUES (?, ?, ?, ?, ?, ?)", (deal_id, *new))
        self._share(db, new, +1)

    @staticmethod
    def _share(db: sqlite3.Connection, deal: Sequence[Any], sign: int) -> None:
        """Add (sign +1) or take away (-1) one deal's share of its owner's figures."""
        owner, status, amount, currency, probability = deal
        if status != Status.OPEN.value:
            return
        share = Decimal(amount) * probability / 100
        found = db.execute(
            "SELECT open_deals, weighted FROM owners WHERE owner = ? AND currency = ?",
            (owner, currency),
        ).fetchone()
        count, weighted = found if found is not None else (0, "0")
        db.execute(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
            (owner, currency, count + sign, str(Decimal(weighted) + sign * share)),
        )

    def owners(self) -> dict[tuple[str, str], tuple[int, Decimal]]:
        """(owner, currency) -> (open deals, weighted total), for owners with open deals."""
        rows = self.connection.execute(
            "SELECT owner, currency, open_deals, weighted FROM owners WHERE open_deals > 0"
        ).fetchall()
        return {(o, c): (int(n), Decimal(w)) for o, c, n, w in rows}

    def close(self) -> None:
        self.connection.close()


def follow(
    pipeline: str,
    model_path: str,
    *,
    workspace: str = "default",
    batch: int = 50,
    pause: float = 0.0,
    until_idle: bool = False,
    poll: float = 0.05,
) -> None:
    """Follow the feed of ``pipeline`` into the model at ``model_path``: forever, or
    until the feed has nothing new (``until_idle``), waiting ``pause`` seconds after
    each page (a throttle) and ``poll`` seconds before asking an idle feed again."""
    repository = SQLiteRepository(pipeline, workspace=workspace)
    app = SalesFlow(repository)
    model = ReadModel(model_path)
    try:
        while True:
            page = app.changes(model.cursor(), limit=batch)
            if page:
                model.apply(page)
                time.sleep(pause)
            elif until_idle:
                return
            else:
                time.sleep(poll)
    finally:
        model.close()
        repository.close()


def expected(app: SalesFlow) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """What the model should say, worked out from the pipeline itself."""
    figures: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for deal in app.repository.opportunities():
        if deal.status is not Status.OPEN:
            continue
        key = (deal.owner or NOBODY, str(deal.value.currency.code))
        count, weighted = figures.get(key, (0, Decimal(0)))
        figures[key] = (count + 1, weighted + deal.value.amount * deal.probability / 100)
    return figures


# -- the demonstration -------------------------------------------------------------

OWNERS = ("kari", "ola", "nora")


def write_some(app: SalesFlow, start: int, count: int) -> None:
    """Create ``count`` deals and move them along, each in a few commands."""
    for n in range(start, start + count):
        deal = app.create_opportunity(
            title=f"Deal {n}", owner=OWNERS[n % 3], value=Money(1000 + 250 * n, "EUR")
        ).opportunity.id
        app.change_stage(deal, ("qualification", "proposal", "negotiation")[n % 3])
        if n % 4 == 0:
            app.update(deal, value=Money(500 * n, "EUR"))
        if n % 5 == 0:
            app.set_probability(deal, 90)
        if n % 7 == 0:
            app.mark_won(deal, cancel_pending=False)
        elif n % 7 == 1:
            app.mark_lost(deal, reason="price", cancel_pending=False)


def start_consumer(pipeline: Path, model: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The consumer in a process of its own, taking five events at a time."""
    command = [sys.executable, __file__, "follow", str(pipeline), str(model), "--batch", "5"]
    return subprocess.Popen([*command, *extra])


def wait_for(model: Path, position: int, timeout: float = 30) -> None:
    """Until the model's cursor has reached ``position``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if model.exists():
            with (
                contextlib.closing(sqlite3.connect(model)) as db,
                contextlib.suppress(sqlite3.OperationalError),
            ):
                (at,) = db.execute("SELECT position FROM cursor").fetchone()
                if at >= position:
                    return
        time.sleep(0.02)
    raise TimeoutError(f"the consumer did not reach position {position}")


def demonstrate() -> None:
    folder = Path(tempfile.mkdtemp())
    pipeline, model_path = folder / "pipeline.db", folder / "owners.db"
    repository = SQLiteRepository(pipeline)
    app = SalesFlow(repository)
    write_some(app, 0, 24)
    # Slowed down, so that it is still catching up when it is killed.
    consumer = start_consumer(pipeline, model_path, "--pause", "0.02")
    wait_for(model_path, 10)
    consumer.send_signal(signal.SIGKILL)
    consumer.wait()
    model = ReadModel(model_path)
    print(f"consumer killed with SIGKILL, {consumer.returncode}, behind the feed:", end=" ")
    print(model.cursor() < app.changes(limit=10_000)[-1].position)
    model.close()
    write_some(app, 24, 12)
    restarted = start_consumer(pipeline, model_path, "--until-idle")
    restarted.wait(timeout=60)
    print(f"consumer restarted, exit code {restarted.returncode}")

    model = ReadModel(model_path)
    feed = app.changes(limit=10_000)
    print(f"events in the feed: {len(feed)}; applied by the model: {model.applied()}")
    print(f"cursor at the last position: {model.cursor() == feed[-1].position}")
    figures = model.owners()
    print("matches the pipeline:", figures == expected(app))
    for (owner, currency), (count, weighted) in sorted(figures.items()):
        total = Money(weighted, currency).round(2)
        print(f"{owner:<6} {count:>2} open deals, weighted {total.amount:>12,} {currency}")
    model.close()
    repository.close()


def main(arguments: Iterable[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command")
    follower = commands.add_parser("follow", help="follow a pipeline's feed into a read model")
    follower.add_argument("pipeline")
    follower.add_argument("model")
    follower.add_argument("--workspace", default="default")
    follower.add_argument("--batch", type=int, default=50)
    follower.add_argument("--pause", type=float, default=0.0)
    follower.add_argument("--until-idle", action="store_true")
    options = parser.parse_args(list(arguments))
    if options.command == "follow":
        follow(
            options.pipeline,
            options.model,
            workspace=options.workspace,
            batch=options.batch,
            pause=options.pause,
            until_idle=options.until_idle,
        )
    else:
        demonstrate()


if __name__ == "__main__":
    main(sys.argv[1:])
