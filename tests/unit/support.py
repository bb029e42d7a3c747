"""Builders shared by the unit tests: a seed 003 style process and shortcuts."""

from __future__ import annotations

from typing import Any

from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    Money,
    Opportunity,
    OpportunityAction,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)

ACME = Organization("org-acme", "Acme Corp")


def seed003_process(
    *,
    key: str = "seed003",
    auto_advance: bool = False,
    cancel_pending: CancelPolicy = CancelPolicy.ASK,
    allow_backward: bool = True,
    allow_skip: bool = True,
    require_loss_reason: bool = False,
    loss_reasons: tuple[str, ...] = (),
) -> Process:
    """Contact -> Meeting -> Proposal -> Won/Lost, each stage asking for actions."""
    return Process(
        key,
        "Advancing a contact",
        (
            Stage(
                "contact",
                "Contact",
                10,
                actions=(
                    StageAction(
                        "intro-call",
                        "Introductory call",
                        ActionKind.CALENDAR,
                        auto_create=True,
                        track_outcome=True,
                        due_after=relativedelta(days=2),
                    ),
                    StageAction(
                        "brochure", "Send the brochure", ActionKind.LETTER, template="brochure"
                    ),
                ),
            ),
            Stage(
                "meeting",
                "Meeting",
                40,
                actions=(
                    StageAction(
                        "demo",
                        "Product demo",
                        ActionKind.CALENDAR,
                        auto_create=True,
                        activity_kind=ActivityKind.MEETING,
                    ),
                    StageAction(
                        "seminar", "Invite to the seminar", ActionKind.EVENT, event="Spring seminar"
                    ),
                    StageAction("notes", "Write up notes", required=False),
                ),
            ),
            Stage(
                "proposal",
                "Proposal",
                70,
                actions=(StageAction("send-quote", "Send the quote"),),
                requires=("expected_close",),
            ),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        auto_advance=auto_advance,
        cancel_pending=cancel_pending,
        allow_backward=allow_backward,
        allow_skip=allow_skip,
        require_loss_reason=require_loss_reason,
        loss_reasons=loss_reasons,
    )


def one_stage_process(key: str, **options: Any) -> Process:
    """A process with one open stage ``a`` (20 %), then won ``w`` and lost ``l``."""
    stages = (
        Stage("a", "A", 20),
        Stage("w", "W", 100, StageKind.WON),
        Stage("l", "L", 0, StageKind.LOST),
    )
    return Process(key, key.title(), stages, **options)


def new_deal(app: SalesFlow, process: str = "standard", **fields: object) -> Opportunity:
    """Create an opportunity for Acme with a value of 1000 USD unless told otherwise."""
    values: dict[str, object] = {"customer": ACME, "value": Money("1000", "USD")}
    values.update(fields)
    return app.create_opportunity(process=process, **values).opportunity  # type: ignore[arg-type]


def action(app: SalesFlow, opportunity_id: str, key: str) -> OpportunityAction:
    """The opportunity's own action with this key, in any stage."""
    opportunity = app.get(opportunity_id)
    return next(a for a in opportunity.actions if a.key == key)
