"""A pipeline kept in a SQLite file is all there after the app process restarts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from salesflow import ActivityStatus, EventKind, FixedClock, SalesFlow, Status
from salesflow.sqlite import SQLiteRepository
from tests.conftest import START

WRITER = textwrap.dedent(
    """
    import datetime as dt
    import sys

    from salesflow import FixedClock, Money, Organization, SalesFlow, StageAction
    from salesflow.sqlite import SQLiteRepository
    from tests.unit.support import seed003_process

    clock = FixedClock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC))
    app = SalesFlow(SQLiteRepository(sys.argv[1]), clock=clock)
    app.define_process(seed003_process())
    deal = app.create_opportunity(
        title="Fjord Ferries", process="seed003", customer=Organization("o1", "Fjord"),
        value=Money("48000", "NOK"), actor="kari",
    ).opportunity
    app.add_action(deal.id, "contact", StageAction("referral", "Ask for a referral"))
    clock.advance(dt.timedelta(days=1))
    call = next(a for a in app.actions(deal.id) if a.key == "intro-call")
    app.complete_activity(call.activity_id, outcome="Keen", move_to="meeting")
    app.schedule_activity(title="Lunch", due=clock.now() + dt.timedelta(days=7),
                          opportunity_id=deal.id)
    lost = app.create_opportunity(title="Small boat", process="seed003").opportunity
    app.mark_lost(lost.id, reason="Price", cancel_pending=True)
    print(deal.id)
    """
)


def test_a_sqlite_pipeline_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.db"
    root = Path(__file__).resolve().parents[2]
    written = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    deal_id = written.stdout.strip()

    app = SalesFlow(SQLiteRepository(path), clock=FixedClock(START))
    try:
        process = app.process("seed003")
        assert [s.key for s in process.stages] == ["contact", "meeting", "proposal", "won", "lost"]
        deal = app.get(deal_id)
        assert (deal.title, deal.stage, deal.probability, str(deal.value.amount)) == (
            "Fjord Ferries",
            "meeting",
            40,
            "48000",
        )
        keys = [a.key for a in deal.actions_of("contact")]
        assert keys == ["intro-call", "brochure", "referral"]
        assert next(a for a in deal.actions if a.key == "intro-call").completed
        activities = {a.title: a for a in app.activities(opportunity_id=deal_id)}
        assert activities["Introductory call"].status is ActivityStatus.DONE
        assert activities["Introductory call"].outcome == "Keen"
        assert activities["Product demo"].status is ActivityStatus.PLANNED
        assert activities["Lunch"].status is ActivityStatus.PLANNED
        kinds = [e.kind for e in app.history(deal_id)]
        assert kinds[0] is EventKind.CREATED
        assert kinds.count(EventKind.STAGE_CHANGED) == 1
        assert app.history(deal_id)[0].actor == "kari"
        (lost,) = app.search(statuses=[Status.LOST]).items
        assert lost.loss_reason == "Price"
        # and the engine carries on from where the other process stopped
        demo = next(a for a in deal.actions if a.key == "demo")
        assert app.complete_actions(deal_id, [demo.id]).opportunity.version == deal.version + 1
    finally:
        app.repository.close()
