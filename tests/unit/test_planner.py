"""The stage-change planner and the Deal aggregate, called directly: no SalesFlow, no
repository. The plan is the change: applying it does exactly what it lists."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from salesflow import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    EventKind,
    Money,
    Process,
    Stage,
    StageAction,
    StageChangePlan,
    StageKind,
    Status,
)
from salesflow.domain.deal import Deal
from salesflow.domain.planner import next_open_stage, plan_stage_change
from salesflow.errors import (
    ConfirmationRequired,
    LossReasonRequired,
    TransitionNotAllowed,
    ValidationError,
)
from tests.conftest import START

CALL = StageAction("call", "Call", ActionKind.CALENDAR, auto_create=True)


def _process(policy: CancelPolicy = CancelPolicy.ASK, *, strict: bool = False) -> Process:
    """open a, a LOST stage, open b (books a call on entry), won, lost."""
    return Process(
        "p",
        "P",
        (
            Stage("a", "A", 20, actions=(StageAction("step", "Step"),)),
            Stage("gone", "Gone", 0, StageKind.LOST),
            Stage("b", "B", 50, actions=(CALL,)),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        cancel_pending=policy,
        allow_backward=not strict,
        allow_skip=not strict,
        require_loss_reason=strict,
        loss_reasons=("price",) if strict else (),
    )


def _deal(process: Process, stage: str = "a") -> Deal:
    """A deal created in ``stage``, with one loose planned activity in it."""
    numbers = itertools.count(1)
    deal = Deal(
        process=process,
        opportunity=None,
        activities=(),
        now=START,
        timezone=dt.UTC,
        actor="kim",
        new_id=lambda: f"id{next(numbers)}",
    )
    start = process.stage(stage)
    reason = "price" if start.kind is StageKind.LOST else None
    deal.create("o1", start, {"title": "Deal", "value": Money(10, "USD")}, loss_reason=reason)
    deal.schedule(
        title="Loose end",
        due=START + dt.timedelta(days=1),
        kind=ActivityKind.CALL,
        owner=None,
        track_outcome=False,
    )
    return deal


def _plan(deal: Deal, target: str, *, cancel_pending: bool | None = None) -> StageChangePlan:
    return plan_stage_change(
        deal.opp,
        deal.proc,
        deal.activities.values(),
        target,
        cancel_pending=cancel_pending,
        now=START,
        timezone=dt.UTC,
    )


def _applied(deal: Deal, plan: StageChangePlan) -> tuple[list[str], list[str]]:
    """Apply ``plan``; the ids of the activities it cancelled and of the actions whose
    activities it created."""
    cancelled, created = len(deal.cancelled), len(deal.created)
    deal.apply(plan)
    return (
        deal.cancelled[cancelled:],
        [deal.activities[i].action_id or "" for i in deal.created[created:]],
    )


@pytest.mark.parametrize(
    ("policy", "answer", "cancels"),
    [
        (CancelPolicy.KEEP, None, False),
        (CancelPolicy.KEEP, True, False),
        (CancelPolicy.CANCEL, None, True),
        (CancelPolicy.CANCEL, False, True),
        (CancelPolicy.ASK, True, True),
        (CancelPolicy.ASK, False, False),
    ],
)
def test_applying_a_plan_does_exactly_what_it_lists(
    policy: CancelPolicy, answer: bool | None, cancels: bool
) -> None:
    deal = _deal(_process(policy))
    (loose,) = deal.activities.values()

    plan = _plan(deal, "b", cancel_pending=answer)
    cancelled, created = _applied(deal, plan)

    assert [a.id for a in plan.to_cancel] == ([loose.id] if cancels else [])
    assert [a.id for a in plan.kept] == ([] if cancels else [loose.id])
    assert cancelled == [a.id for a in plan.to_cancel]
    assert created == [a.id for a in plan.to_create]
    assert [a.key for a in plan.to_create] == ["call"]
    assert not plan.needs_answer
    assert deal.opp.stage == "b"


def test_under_ask_without_an_answer_the_plan_asks_and_applying_it_raises() -> None:
    deal = _deal(_process(CancelPolicy.ASK))
    (loose,) = deal.activities.values()

    plan = _plan(deal, "b")

    assert plan.needs_answer
    assert plan.to_cancel == (loose,)
    with pytest.raises(ConfirmationRequired) as refused:
        deal.apply(plan)
    assert refused.value.plan == plan
    assert deal.opp.stage == "a"


def test_the_loss_reason_rules_are_part_of_the_plan() -> None:
    deal = _deal(_process(strict=True))

    with pytest.raises(LossReasonRequired):
        _plan(deal, "lost", cancel_pending=True)
    with pytest.raises(ValidationError, match="not one of"):
        plan_stage_change(
            deal.opp,
            deal.proc,
            (),
            "lost",
            loss_reason="weather",
            now=START,
            timezone=dt.UTC,
        )
    plan = plan_stage_change(
        deal.opp, deal.proc, (), "lost", loss_reason="price", now=START, timezone=dt.UTC
    )
    assert (plan.status, plan.loss_reason, plan.probability) == (Status.LOST, "price", 0)


def test_a_strict_process_forbids_backwards_and_skips_but_not_losing_or_reopening() -> None:
    deal = _deal(_process(strict=True), stage="b")

    with pytest.raises(TransitionNotAllowed, match="backwards"):
        _plan(deal, "a")
    deal.apply(
        plan_stage_change(
            deal.opp, deal.proc, (), "gone", loss_reason="price", now=START, timezone=dt.UTC
        )
    )
    assert deal.opp.status is Status.LOST
    assert _plan(deal, "won").status is Status.WON  # lost -> won: neither backwards nor a skip
    assert _plan(deal, "a").reopens


def test_next_open_stage_passes_over_closed_stages() -> None:
    process = _process()
    assert next_open_stage(process, "a") == process.stage("b")
    assert next_open_stage(process, "b") is None


def test_an_activity_booked_early_belongs_to_its_actions_stage() -> None:
    deal = _deal(_process(CancelPolicy.CANCEL))
    call = next(a for a in deal.opp.actions if a.key == "call")

    deal.perform(call.id, None)
    booked = deal.activities[deal.created[-1]]
    plan = _plan(deal, "b")

    assert booked.stage == "b"
    assert booked not in plan.to_cancel
    assert plan.to_create == ()


def test_a_deal_records_events_in_the_order_it_lived_them() -> None:
    deal = _deal(_process(CancelPolicy.CANCEL), stage="lost")
    deal.events.clear()

    deal.apply(_plan(deal, "b"))

    assert [e.kind for e in deal.events] == [
        EventKind.ACTIVITY_CANCELLED,
        EventKind.STAGE_CHANGED,
        EventKind.REOPENED,
        EventKind.ACTIVITY_SCHEDULED,
    ]
    assert deal.opp.loss_reason is None
    assert deal.opp.closed_on is None


def test_letters_are_asked_for_not_sent() -> None:
    process = Process(
        "l",
        "L",
        (
            Stage("a", "A", 10, actions=(StageAction("pack", "Pack", ActionKind.LETTER),)),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
    )
    deal = _deal(process)
    (pack,) = deal.opp.actions

    deal.perform(pack.id, None)

    assert [(c.kind, c.action_id) for c in deal.outbox] == [(ActionKind.LETTER, pack.id)]
    assert deal.opp.require_action(pack.id).completed


def test_the_aggregates_own_their_rules() -> None:
    deal = _deal(_process())
    opportunity = deal.opp

    assert opportunity.paused().status is Status.PAUSED
    with pytest.raises(TransitionNotAllowed):
        opportunity.resumed()
    with pytest.raises(ValidationError, match="already has an action"):
        opportunity.with_added_action(deal.proc.stage("a"), StageAction("step", "Again"), "x")
    (loose,) = (a for a in deal.activities.values() if a.action_id is None)
    done = loose.completed(None, at=START)
    assert done.status is ActivityStatus.DONE
    with pytest.raises(ValidationError, match="only a planned activity"):
        done.cancelled(at=START)
    closed = opportunity.moved(
        deal.proc.stage("won"), at=START, today=START.date(), loss_reason=None
    )
    with pytest.raises(TransitionNotAllowed, match="fixed by its stage"):
        closed.with_probability(40)
