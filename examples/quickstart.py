"""Walk one opportunity through a sales process with stage actions, day by day.

Run it with ``python examples/quickstart.py``. It defines a process whose stages ask
for calls, a letter, an event invitation and checklist steps, then sells a training
course to Northwind Traders over two weeks of a fixed clock, printing what the
engine said after every command, the board at the end and the deal's history.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    Event,
    FixedClock,
    Money,
    Opportunity,
    Organization,
    Process,
    Result,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.errors import ConfirmationRequired, TransitionNotAllowed

#: A Monday morning in March; the script moves the clock on from here.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

TRAINING = Process(
    "training",
    "Training course sales",
    (
        Stage(
            "contact",
            "First contact",
            10,
            actions=(
                StageAction(
                    "intro-call",
                    "Introductory call",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    track_outcome=True,
                ),
                StageAction(
                    "brochure", "Send the course brochure", ActionKind.LETTER, template="brochure"
                ),
            ),
        ),
        Stage(
            "demo",
            "Demo",
            30,
            actions=(
                StageAction(
                    "webinar",
                    "Invite to the spring webinar",
                    ActionKind.EVENT,
                    event="Spring webinar",
                ),
                StageAction(
                    "demo-meeting",
                    "Demo meeting",
                    ActionKind.CALENDAR,
                    activity_kind=ActivityKind.MEETING,
                    auto_create=True,
                    due_after=relativedelta(days=3),
                    track_outcome=True,
                ),
            ),
        ),
        Stage(
            "proposal",
            "Proposal",
            60,
            actions=(
                StageAction("quote", "Write the quote"),
                StageAction(
                    "follow-up",
                    "Follow-up call",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    due_after=relativedelta(days=2),
                ),
                StageAction("references", "Share customer references", required=False),
            ),
        ),
        Stage("negotiation", "Negotiation", 80, requires=("expected_close",)),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="USD",
    auto_advance=True,
    cancel_pending=CancelPolicy.ASK,
    loss_reasons=("price", "timing", "competitor"),
)


def day(clock: FixedClock, days: int = 1) -> None:
    """Move the clock on and print a heading for the new day."""
    clock.advance(dt.timedelta(days=days))
    print(f"\n== {clock.now():%A %d %B} ==")


def show(what: str, result: Result) -> Opportunity:
    """Print a command and the notices it returned; return the opportunity after it."""
    print(f"> {what}")
    for notice in result.notices:
        print(f"    {notice}")
    assert result.opportunity is not None
    return result.opportunity


def money(value: Money) -> str:
    return f"{value.amount:,.2f} {value.currency.code}"


def summary(details: Mapping[str, Any]) -> str:
    """A short text for an event's details: the stage move, the title, what changed."""
    parts: list[str] = []
    if "from" in details:
        parts.append(f"{details['from']} -> {details['to']}")
    elif "stage" in details and "key" not in details:
        parts.append(f"in {details['stage']}")
    if "title" in details:
        parts.append(repr(details["title"]))
    if "key" in details:
        parts.append(f"action {details['key']} of {details['stage']}")
    if "outcome" in details:
        parts.append(f"outcome {details['outcome']!r}")
    changes: Mapping[str, Any] = details.get("changes", {})
    if changes and "from" not in details and len(changes) < 5:
        parts.append("changed " + ", ".join(sorted(changes)))
    return "; ".join(parts)


def history_line(event: Event) -> str:
    return f"{event.at:%a %d %b %H:%M}  {event.kind.name:<18} {summary(event.details)}"


def main() -> None:
    clock = FixedClock(START)
    numbers = itertools.count(1)
    app = SalesFlow(clock=clock, ids=lambda: f"sf-{next(numbers):04d}")
    app.define_process(TRAINING)
    print(f"== {clock.now():%A %d %B} ==")

    # Monday: the deal comes in. Entering "First contact" schedules the introductory call.
    deal = show(
        "create an opportunity for Northwind Traders",
        app.create_opportunity(
            process="training",
            customer=Organization("org-northwind", "Northwind Traders"),
            value=Money("48000", "USD"),
            owner="dana",
            actor="dana",
        ),
    )
    actions = {a.key: a for a in deal.actions}
    show(
        "perform 'Send the course brochure' (a letter)",
        app.perform_action(deal.id, actions["brochure"].id, actor="dana"),
    )
    show(
        "perform 'Introductory call' (its activity already exists)",
        app.perform_action(deal.id, actions["intro-call"].id, actor="dana"),
    )
    # Two other deals, so that the board at the end has more than one card.
    other = show(
        "create 'Contoso team training' in Demo",
        app.create_opportunity(
            title="Contoso team training",
            process="training",
            stage="demo",
            value=Money("12500", "USD"),
            owner="lee",
        ),
    )
    show(
        "create 'Fabrikam onboarding'",
        app.create_opportunity(
            title="Fabrikam onboarding", process="training", value=Money("7200", "USD")
        ),
    )

    # Tuesday: the call went well. Completing it completes its action, which was the last
    # required one of the stage, so the deal advances and the demo meeting is scheduled.
    day(clock)
    call = app.activities(opportunity_id=deal.id)[0]
    show(
        "complete the introductory call with an outcome",
        app.complete_activity(call.id, outcome="Wants a demo for 12 people", actor="dana"),
    )
    webinar = next(a for a in app.actions(deal.id) if a.key == "webinar")
    show(
        "perform 'Invite to the spring webinar' (an event)",
        app.perform_action(deal.id, webinar.id, actor="dana"),
    )
    agenda = app.schedule_activity(
        title="Confirm the attendee list",
        due=clock.now() + dt.timedelta(days=1),
        kind=ActivityKind.TASK,
        opportunity_id=deal.id,
    )
    print(f"> schedule {agenda.title!r}, due {agenda.due:%a %d %b}, owner {agenda.owner}")

    # Friday: the demo happened, the attendee list was never confirmed.
    day(clock, 3)
    plan = app.preview_stage_change(deal.id, "proposal")
    print("> preview the move to Proposal")
    for warning in plan.warnings:
        print(f"    warning: {warning}")
    print(f"    would cancel: {[a.title for a in plan.to_cancel]}")
    print(f"    would create: {[a.title for a in plan.to_create]}")
    print(f"> activity indicator: {app.indicator(deal.id).state.name}")
    meeting = next(a for a in app.activities(opportunity_id=deal.id) if a.title == "Demo meeting")
    print("> complete the demo meeting and move to Proposal")
    try:
        app.complete_activity(meeting.id, outcome="Liked it; asked for a quote", move_to="proposal")
    except ConfirmationRequired as question:
        print(f"    asked: {question}")
        still = app.get(deal.id)
        print(f"    nothing changed: still in {still.stage}, version {still.version}")
    deal = show(
        "answer cancel_pending=True",
        app.complete_activity(
            meeting.id,
            outcome="Liked it; asked for a quote",
            move_to="proposal",
            cancel_pending=True,
            actor="dana",
        ),
    )

    # Monday: the customer's budget review puts everything on hold.
    day(clock, 3)
    show("pause", app.pause(deal.id, actor="dana"))
    print("> change the stage of a paused deal")
    try:
        app.change_stage(deal.id, "negotiation")
    except TransitionNotAllowed as refused:
        print(f"    refused: {refused}")

    # Wednesday: back on. The quote is written and the follow-up call done, but Negotiation
    # needs an expected close date, so auto-advance stops at its gate.
    day(clock, 2)
    show("resume", app.resume(deal.id, actor="dana"))
    steps = {a.key: a for a in app.actions(deal.id)}
    show(
        "perform 'Write the quote' (a checklist step)",
        app.perform_action(deal.id, steps["quote"].id, actor="dana"),
    )
    show(
        "mark 'Follow-up call' complete",
        app.complete_actions(deal.id, [steps["follow-up"].id], actor="dana"),
    )
    show(
        "set the expected close date",
        app.update(deal.id, expected_close=dt.date(2026, 3, 31), actor="dana"),
    )
    show(
        "move to Negotiation",
        app.change_stage(deal.id, "negotiation", actor="dana"),
    )
    show(
        "Contoso: mark lost on price",
        app.mark_lost(other.id, reason="price", cancel_pending=True, actor="lee"),
    )

    # Friday: signed.
    day(clock, 2)
    deal = show("mark won", app.mark_won(deal.id, actor="dana"))
    print(
        f"    status {deal.status.name}, probability {deal.probability}%, closed {deal.closed_on}"
    )

    print("\nBoard")
    board = app.pipeline("training")
    for row in board.stages:
        print(
            f"  {row.stage.name:<14} {row.count:>2}  "
            f"total {money(row.total):>14}  weighted {money(row.weighted):>14}"
        )
    print(
        f"  {'Open stages':<14}     total {money(board.total):>14}  "
        f"weighted {money(board.weighted):>14}"
    )

    print(f"\nHistory of {deal.display_title}")
    for event in app.history(deal.id):
        print("  " + history_line(event))


if __name__ == "__main__":
    main()
