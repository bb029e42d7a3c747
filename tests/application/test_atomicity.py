"""A refused command changes nothing: not the opportunity, its activities, its history,
nor what subscribers hear."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from salesflow import ActionKind, Event, FixedClock, Money, Opportunity, SalesFlow, StageAction
from salesflow.errors import (
    ConfirmationRequired,
    LossReasonRequired,
    NotFound,
    OutcomeRequired,
    PermissionDenied,
    SalesflowError,
    TransitionNotAllowed,
    UnknownStage,
    ValidationError,
)
from tests.application.conftest import MakeApp
from tests.unit.support import action, new_deal, seed003_process

Scenario = Callable[[SalesFlow, Opportunity], object]


def _refusing_letters(app: SalesFlow, deal: Opportunity) -> object:
    return app.perform_action(deal.id, action(app, deal.id, "seminar").id, due=app.clock.now())


SCENARIOS: dict[str, tuple[Scenario, type[SalesflowError]]] = {
    "ask without an answer": (
        lambda app, d: app.change_stage(d.id, "meeting"),
        ConfirmationRequired,
    ),
    "unknown stage": (lambda app, d: app.change_stage(d.id, "nowhere"), UnknownStage),
    "gate": (
        lambda app, d: app.change_stage(d.id, "proposal", cancel_pending=True),
        TransitionNotAllowed,
    ),
    "loss reason required": (
        lambda app, d: app.mark_lost(d.id, cancel_pending=True),
        LossReasonRequired,
    ),
    "loss reason not listed": (
        lambda app, d: app.mark_lost(d.id, reason="Weather", cancel_pending=True),
        ValidationError,
    ),
    "outcome required": (
        lambda app, d: app.complete_actions(d.id, [action(app, d.id, "intro-call").id]),
        OutcomeRequired,
    ),
    "outcome required on the activity": (
        lambda app, d: app.complete_activity(action(app, d.id, "intro-call").activity_id or ""),
        OutcomeRequired,
    ),
    "complete an unknown action among known ones": (
        lambda app, d: app.complete_actions(d.id, [action(app, d.id, "brochure").id, "nope"]),
        NotFound,
    ),
    "duplicate action key": (
        lambda app, d: app.add_action(d.id, "contact", StageAction("brochure", "Again")),
        ValidationError,
    ),
    "due time on a non-calendar action": (_refusing_letters, ValidationError),
    "negative value": (
        lambda app, d: app.update(d.id, title="New", value=Money("-5", "USD")),
        ValidationError,
    ),
    "title removed for an individual": (
        lambda app, d: app.update(d.id, title=None, customer=None),
        ValidationError,
    ),
    "probability out of range": (lambda app, d: app.set_probability(d.id, 150), ValidationError),
    "resume an open opportunity": (lambda app, d: app.resume(d.id), TransitionNotAllowed),
    "loss reason on an open move": (
        lambda app, d: app.change_stage(d.id, "meeting", loss_reason="x", cancel_pending=True),
        ValidationError,
    ),
}


@pytest.fixture
def strict_app(app: SalesFlow) -> SalesFlow:
    app.define_process(
        seed003_process(key="strict", require_loss_reason=True, loss_reasons=("Price",)),
    )
    return app


def _snapshot(app: SalesFlow, deal_id: str) -> tuple[object, ...]:
    return (app.get(deal_id), tuple(app.activities(opportunity_id=deal_id)), app.history(deal_id))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_refused_command_changes_nothing(strict_app: SalesFlow, name: str) -> None:
    scenario, error = SCENARIOS[name]
    deal = new_deal(strict_app, "strict", title="Acme")
    strict_app.change_stage(deal.id, "meeting", cancel_pending=False)
    strict_app.change_stage(deal.id, "contact", cancel_pending=False)
    heard: list[Event] = []
    strict_app.subscribe(heard.append)
    before = _snapshot(strict_app, deal.id)
    with pytest.raises(error):
        scenario(strict_app, strict_app.get(deal.id))
    assert _snapshot(strict_app, deal.id) == before
    assert heard == []


def test_a_refused_auto_created_activity_leaves_no_trace(
    make_app: MakeApp, clock: FixedClock
) -> None:
    """A stage change that fails after planning its activities creates none of them."""
    app = make_app()
    app.define_process(seed003_process(key="why", require_loss_reason=True))
    deal = new_deal(app, "why")
    before = _snapshot(app, deal.id)
    with pytest.raises(LossReasonRequired):
        app.change_stage(deal.id, "lost", cancel_pending=True)
    assert _snapshot(app, deal.id) == before


def test_a_refused_policy_changes_nothing(make_app: MakeApp, clock: FixedClock) -> None:
    class ReadOnly:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            return command == "create_opportunity"

    app = make_app(policy=ReadOnly())
    deal = new_deal(app, title="x")
    before = _snapshot(app, deal.id)
    with pytest.raises(PermissionDenied, match="mallory may not change_stage"):
        app.change_stage(deal.id, "proposal", actor="mallory")
    with pytest.raises(PermissionDenied):
        app.schedule_activity(title="y", due=clock.now(), opportunity_id=deal.id)
    assert _snapshot(app, deal.id) == before


def test_every_bulk_item_is_atomic_on_its_own(app: SalesFlow) -> None:
    app.define_process(seed003_process())
    good = new_deal(app, "seed003", expected_close=dt.date(2026, 6, 1))
    bad = new_deal(app, "seed003")
    before = _snapshot(app, bad.id)
    result = app.bulk_change_stage([good.id, bad.id], "proposal", cancel_pending=True)
    assert result.succeeded == (good.id,)
    assert isinstance(result.failed[bad.id], TransitionNotAllowed)
    assert _snapshot(app, bad.id) == before


def test_a_calendar_action_kind_is_what_creates_activities() -> None:
    assert StageAction("c", "Call", ActionKind.CALENDAR, auto_create=True).auto_create
    with pytest.raises(ValidationError, match="only CALENDAR actions can auto_create"):
        StageAction("m", "Manual", ActionKind.MANUAL, auto_create=True)
