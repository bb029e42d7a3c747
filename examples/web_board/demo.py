"""The demo pipeline the board opens on: a consulting firm's sales process with stage
actions (in the manner of seed 003) and a dozen deals spread over its stages, each
with the activities that give its card one of seed 000's four coloured boxes.

Everything is dated from the app's clock, so the board looks the same whatever day
it is started on: some activities are overdue, some due today, some later.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Money,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)

__all__ = ["SERVICES", "seed_demo"]

SERVICES = Process(
    "services",
    "Consulting services",
    (
        Stage(
            "lead",
            "Lead",
            10,
            actions=(
                StageAction(
                    "intro-call",
                    "Introductory call",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    due_after=relativedelta(days=2),
                ),
            ),
        ),
        Stage(
            "qualified",
            "Qualified",
            30,
            actions=(
                StageAction(
                    "discovery",
                    "Discovery meeting",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    activity_kind=ActivityKind.MEETING,
                    due_after=relativedelta(days=3),
                ),
                StageAction("budget", "Confirm the budget"),
            ),
        ),
        Stage(
            "proposal",
            "Proposal",
            60,
            actions=(
                StageAction(
                    "proposal", "Send the proposal", ActionKind.LETTER, template="proposal"
                ),
                StageAction(
                    "follow-up",
                    "Proposal follow-up call",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    due_after=relativedelta(days=5),
                ),
            ),
        ),
        Stage("negotiation", "Negotiation", 80, actions=(StageAction("terms", "Agree the terms"),)),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="USD",
    cancel_pending=CancelPolicy.ASK,
    require_loss_reason=True,
    loss_reasons=("price", "timing", "competitor", "no budget"),
)

#: (customer, what is sold, stage, value, owner, days to the expected close, extra
#: activity):
#: "overdue" adds a call due three days ago, "today" one due today, "none" cancels
#: the activities the stage created, None leaves them.
DEALS: tuple[tuple[str, str, str, int, str, int, str | None], ...] = (
    ("Northwind Traders", "process review", "lead", 12_000, "alex", 40, None),
    ("Contoso", "cloud migration", "lead", 8_500, "sam", 75, "overdue"),
    ("Fabrikam", "process review", "lead", 4_000, "kim", 20, "none"),
    ("Globex", "data platform", "qualified", 30_000, "alex", 30, "today"),
    ("Initech", "help desk", "qualified", 15_000, "sam", 100, None),
    ("Umbrella Corporation", "security audit", "proposal", 45_000, "kim", 55, None),
    ("Stark Industries", "training", "proposal", 22_000, "alex", 15, "overdue"),
    ("Wayne Enterprises", "managed services", "negotiation", 60_000, "sam", 10, "today"),
    ("Acme", "support contract", "negotiation", 18_000, "kim", 130, "none"),
    ("Soylent", "data platform", "negotiation", 25_000, "alex", 5, None),
    ("Tyrell", "security audit", "proposal", 9_000, "kim", 25, None),
)


def seed_demo(app: SalesFlow) -> int:
    """Define the demo process and fill it with deals, unless the store already holds
    opportunities (a SQLite file from an earlier run). Returns how many were created."""
    if app.search(limit=0).total:
        return 0
    app.define_process(SERVICES, actor="demo")
    now = app.clock.now()
    today = now.astimezone(app.timezone).date()
    created = 0
    ids: dict[str, str] = {}
    for number, (name, service, stage, value, owner, days, extra) in enumerate(DEALS, start=1):
        deal = app.create_opportunity(
            title=f"{name}: {service}",
            process="services",
            stage=stage,
            customer=Organization(f"org-{number}", name),
            value=Money(value, "USD"),
            owner=owner,
            expected_close=today + dt.timedelta(days=days),
            actor=owner,
        ).opportunity
        ids[name] = deal.id
        created += 1
        if extra == "overdue":
            app.schedule_activity(
                title="Chase the signed NDA",
                due=now - dt.timedelta(days=3),
                opportunity_id=deal.id,
                actor=owner,
            )
        elif extra == "today":
            app.schedule_activity(
                title="Call about the timeline",
                due=now,
                kind=ActivityKind.CALL,
                opportunity_id=deal.id,
                actor=owner,
            )
        elif extra == "none":
            for activity in app.activities(opportunity_id=deal.id, status=ActivityStatus.PLANNED):
                app.cancel_activity(activity.id, actor=owner)
    # One deal won and one lost today, so the closed columns and the forecast's
    # "won" have something in them.
    app.change_stage(ids["Soylent"], "won", cancel_pending=True, actor="alex")
    app.change_stage(ids["Tyrell"], "lost", cancel_pending=True, loss_reason="price", actor="kim")
    # A couple of deals on the built-in standard process, to switch to.
    for name, stage, value in (("Hooli", "lead", 7_500), ("Pied Piper", "proposal", 19_000)):
        app.create_opportunity(
            title=f"{name} licences",
            stage=stage,
            value=Money(value, "USD"),
            owner="sam",
            expected_close=today + dt.timedelta(days=45),
            actor="sam",
        )
        created += 1
    return created
