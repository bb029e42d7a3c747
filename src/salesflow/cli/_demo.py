"""``salesflow demo``: a pipeline with two weeks of a sales team's work in it.

The scenario runs through the engine on a fixed clock that starts twelve days before
now and ends now, so the activities it leaves planned are overdue, due today or
upcoming when the board is printed -- and still are for the ``board`` command run
afterwards on the same file.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable

from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    FixedClock,
    Money,
    Organization,
    Process,
    Result,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.cli._text import Texts

__all__ = ["CONSULTING", "DAYS", "run"]

#: How many days before now the scenario starts.
DAYS = 12

#: A seed 003-style process: each stage has its actions, and completing a stage's
#: required actions moves the deal on.
CONSULTING = Process(
    "consulting",
    "Consulting sales",
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
                    "brochure", "Send the company brochure", ActionKind.LETTER, template="brochure"
                ),
            ),
        ),
        Stage(
            "workshop",
            "Needs workshop",
            30,
            actions=(
                StageAction(
                    "workshop",
                    "Needs workshop",
                    ActionKind.CALENDAR,
                    activity_kind=ActivityKind.MEETING,
                    auto_create=True,
                    due_after=relativedelta(days=3),
                    track_outcome=True,
                ),
                StageAction(
                    "seminar",
                    "Invite to the customer seminar",
                    ActionKind.EVENT,
                    event="Customer seminar",
                ),
                StageAction("scope", "Agree on the scope"),
            ),
        ),
        Stage(
            "offer",
            "Offer",
            60,
            actions=(
                StageAction("write-offer", "Write the offer"),
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
        Stage("contract", "Contract", 85, requires=("expected_close",)),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="USD",
    auto_advance=True,
    cancel_pending=CancelPolicy.ASK,
    loss_reasons=("price", "timing", "competitor", "no budget"),
)


def _usd(amount: str) -> Money:
    return Money(amount, "USD")


def run(app: SalesFlow, clock: FixedClock, texts: Texts, say: Callable[[str], None]) -> None:
    """Define the processes and run the scenario; ``say`` hears one line per step."""
    _ = texts._

    def wrapped(text: str, indent: int) -> None:
        for line in textwrap.wrap(
            text, 80, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2)
        ):
            say(line)

    def step(what: str, result: Result) -> str:
        wrapped(what, 2)
        for notice in result.notices:
            wrapped(notice, 6)
        return result.opportunity.id

    elapsed = [0]

    def day(days: int) -> None:
        clock.advance(dt.timedelta(days=days))
        elapsed[0] += days
        local = clock.now().astimezone(app.timezone).date()
        say(_("Day {number}, {day}:").format(number=elapsed[0], day=texts.date(local)))

    app.define_process(CONSULTING, actor="admin")
    say(
        _("Defined the process {name!r} with stage actions and auto-advance.").format(
            name=texts.process(CONSULTING.name)
        )
    )
    say(
        _("Day {number}, {day}:").format(
            number=0, day=texts.date(clock.now().astimezone(app.timezone).date())
        )
    )

    # Consulting deals: one walks the whole process, one is lost, one is left waiting.
    northwind = step(
        _("Dana creates a deal for Northwind Traders"),
        app.create_opportunity(
            process="consulting",
            customer=Organization("northwind", "Northwind Traders"),
            value=_usd("48000"),
            owner="dana",
            actor="dana",
        ),
    )
    brochure = next(a for a in app.actions(northwind) if a.key == "brochure")
    step(_("Dana sends the brochure"), app.perform_action(northwind, brochure.id, actor="dana"))
    contoso = step(
        _("Lee creates 'Contoso rollout' straight in the needs workshop"),
        app.create_opportunity(
            title="Contoso rollout",
            process="consulting",
            stage="workshop",
            customer=Organization("contoso", "Contoso"),
            value=_usd("12500"),
            owner="lee",
            actor="lee",
        ),
    )
    step(
        _("Sam creates 'Fabrikam pilot'"),
        app.create_opportunity(
            title="Fabrikam pilot",
            process="consulting",
            customer=Organization("fabrikam", "Fabrikam"),
            value=_usd("7200"),
            owner="sam",
            actor="sam",
        ),
    )

    # Standard-process deals, for the second board.
    standard = {
        "tailspin": ("Tailspin renewal", "lead", "30000", "dana"),
        "wingtip": ("Wingtip expansion", "qualification", "18000", "lee"),
        "adventure": ("Adventure Works licences", "proposal", "22000", "sam"),
        "litware": ("Litware support contract", "negotiation", "40000", "dana"),
        "proseware": ("Proseware upgrade", "proposal", "9500", "lee"),
        "coho": ("Coho Winery web shop", "negotiation", "15000", "sam"),
    }
    made = app.create_opportunities(
        [
            {
                "title": title,
                "stage": stage,
                "customer": Organization(key, title.split()[0]),
                "value": _usd(amount),
                "owner": owner,
                "expected_close": (clock.now() + dt.timedelta(days=30)).date(),
            }
            for key, (title, stage, amount, owner) in standard.items()
        ],
        actor="admin",
    )
    ids = dict(zip(standard, made.succeeded, strict=True))
    say("  " + _("Imported {count} deals into the standard process").format(count=len(ids)))

    day(1)
    call = app.activities(opportunity_id=northwind)[0]
    step(
        _(
            "Dana completes the introductory call; every required action is done, so the "
            "deal moves on"
        ),
        app.complete_activity(call.id, outcome="Wants a workshop", actor="dana"),
    )
    app.schedule_activity(
        title="Send the reference list",
        due=clock.now() + dt.timedelta(days=1),
        kind=ActivityKind.TASK,
        opportunity_id=contoso,
        owner="lee",
        actor="lee",
    )
    say("  " + _("Lee plans a task for Contoso"))

    day(3)
    workshop = next(
        a for a in app.activities(opportunity_id=northwind) if a.title == "Needs workshop"
    )
    step(
        _("Dana holds the needs workshop"),
        app.complete_activity(workshop.id, outcome="Scope agreed: 3 teams", actor="dana"),
    )
    actions = {a.key: a for a in app.actions(northwind)}
    step(
        _("Dana invites Northwind to the customer seminar"),
        app.perform_action(northwind, actions["seminar"].id, actor="dana"),
    )
    step(
        _("Dana ticks off 'Agree on the scope': the deal advances to the offer"),
        app.perform_action(northwind, actions["scope"].id, actor="dana"),
    )
    step(
        _("Lee: Contoso went with a cheaper offer (its planned activities are cancelled)"),
        app.mark_lost(contoso, reason="price", cancel_pending=True, actor="lee"),
    )

    day(3)
    actions = {a.key: a for a in app.actions(northwind)}
    step(
        _("Dana writes the offer"),
        app.perform_action(northwind, actions["write-offer"].id, actor="dana"),
    )
    step(
        _("Dana completes the follow-up call; the contract stage needs a close date"),
        app.complete_actions(northwind, [actions["follow-up"].id], actor="dana"),
    )
    step(
        _("Dana sets the expected close date"),
        app.update(
            northwind, expected_close=(clock.now() + dt.timedelta(days=7)).date(), actor="dana"
        ),
    )
    step(
        _("Dana moves the deal to the contract stage"),
        app.change_stage(northwind, "contract", actor="dana"),
    )
    step(
        _("Sam: Coho Winery signed"),
        app.mark_won(ids["coho"], actor="sam"),
    )

    step(
        _("Lee creates 'Datum migration' in the offer stage"),
        app.create_opportunity(
            title="Datum migration",
            process="consulting",
            stage="offer",
            customer=Organization("datum", "Datum"),
            value=_usd("26000"),
            owner="lee",
            actor="lee",
        ),
    )

    day(3)
    step(_("Dana: Northwind Traders signed"), app.mark_won(northwind, actor="dana"))
    step(
        _("Sam creates 'Blue Yonder audit' in the contract stage"),
        app.create_opportunity(
            title="Blue Yonder audit",
            process="consulting",
            stage="contract",
            customer=Organization("blue-yonder", "Blue Yonder Airlines"),
            value=_usd("31000"),
            expected_close=(clock.now() + dt.timedelta(days=14)).date(),
            owner="sam",
            actor="sam",
        ),
    )
    step(
        _("Lee: Proseware has no budget this year"),
        app.mark_lost(ids["proseware"], reason="no budget", actor="lee"),
    )

    day(DAYS - 10)
    step(
        _("Dana creates 'Woodgrove training' in the needs workshop"),
        app.create_opportunity(
            title="Woodgrove training",
            process="consulting",
            stage="workshop",
            customer=Organization("woodgrove", "Woodgrove Bank"),
            value=_usd("16500"),
            owner="dana",
            actor="dana",
        ),
    )
    # Activities planned on the last day: one due today, one a few days ahead, and
    # Fabrikam's introductory call, never made, is overdue.
    app.schedule_activity(
        title="Qualification call",
        due=clock.now(),
        opportunity_id=ids["wingtip"],
        owner="lee",
        actor="lee",
    )
    app.schedule_activity(
        title="Proposal walkthrough",
        due=clock.now() + dt.timedelta(days=3),
        kind=ActivityKind.MEETING,
        opportunity_id=ids["adventure"],
        owner="sam",
        actor="sam",
    )
    app.schedule_activity(
        title="Price negotiation",
        due=clock.now() + dt.timedelta(days=1),
        kind=ActivityKind.MEETING,
        opportunity_id=ids["litware"],
        owner="dana",
        actor="dana",
    )
    say("  " + _("The team plans the coming calls and meetings"))
