"""Stage changes and their effects (api.md "Stages"; seeds 000, 002, 003)."""

from __future__ import annotations

import datetime as dt

import pytest

from salesflow import (
    ActivityStatus,
    CancelPolicy,
    EventKind,
    FixedClock,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
    Status,
)
from salesflow.errors import (
    ConfirmationRequired,
    LossReasonRequired,
    PermissionDenied,
    TransitionNotAllowed,
    UnknownStage,
    ValidationError,
)
from tests.application.conftest import MakeApp
from tests.unit.support import action, new_deal, seed003_process

DAY = dt.timedelta(days=1)


@pytest.fixture
def seed003(app: SalesFlow) -> SalesFlow:
    app.define_process(seed003_process())
    return app


def test_moving_records_one_stage_changed_with_from_to_when_who(
    app: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(app)
    clock.advance(DAY)
    result = app.change_stage(deal.id, "proposal", actor="kari")
    (event,) = result.events
    assert event.kind is EventKind.STAGE_CHANGED
    assert (event.details["from"], event.details["to"]) == ("lead", "proposal")
    assert (event.at, event.actor) == (clock.now(), "kari")
    assert event.changes["probability"] == (15, 50)
    assert result.notices == ("Moved to Proposal.",)
    assert result.opportunity.stage_entered_at == clock.now()


def test_probability_becomes_the_new_stage_default_and_drops_an_override(app: SalesFlow) -> None:
    deal = new_deal(app, probability=90)
    moved = app.change_stage(deal.id, "qualification").opportunity
    assert (moved.probability, moved.probability_override) == (30, None)


def test_won_sets_100_and_closed_on(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    clock.advance(3 * DAY)
    won = app.mark_won(deal.id).opportunity
    assert (won.stage, won.status, won.probability) == ("won", Status.WON, 100)
    assert won.closed_on == dt.date(2026, 3, 5)


def test_lost_sets_0_closed_on_and_the_reason(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    lost = app.mark_lost(deal.id, reason="Price").opportunity
    assert (lost.stage, lost.status, lost.probability, lost.loss_reason) == (
        "lost",
        Status.LOST,
        0,
        "Price",
    )
    assert lost.closed_on == clock.now().date()


def test_closed_on_uses_the_calendar_day_of_the_app_timezone(
    make_app: MakeApp,
) -> None:
    from zoneinfo import ZoneInfo

    late_evening_utc = dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC)
    app = make_app(clock=FixedClock(late_evening_utc), timezone=ZoneInfo("Europe/Oslo"))
    deal = new_deal(app)
    assert app.mark_won(deal.id).opportunity.closed_on == dt.date(2026, 3, 3)


def test_moving_to_the_current_stage_changes_nothing_and_says_so(app: SalesFlow) -> None:
    deal = new_deal(app)
    result = app.change_stage(deal.id, "lead")
    assert result.events == ()
    assert result.notices == ("Already in Lead.",)
    assert app.get(deal.id).version == deal.version


def test_an_unknown_stage_is_refused(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(UnknownStage, match="'nowhere'"):
        app.change_stage(deal.id, "nowhere")


def test_moves_may_go_backwards_and_skip_by_default(app: SalesFlow) -> None:
    deal = new_deal(app)
    assert app.change_stage(deal.id, "negotiation").opportunity.stage == "negotiation"
    assert app.change_stage(deal.id, "lead").opportunity.stage == "lead"


def test_a_strict_process_refuses_backward_moves_and_skips(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="strict", allow_backward=False, allow_skip=False))
    deal = new_deal(app, "strict", expected_close=dt.date(2026, 4, 1))
    with pytest.raises(TransitionNotAllowed, match="skip"):
        app.change_stage(deal.id, "proposal", cancel_pending=False)
    app.change_stage(deal.id, "meeting", cancel_pending=False)
    with pytest.raises(TransitionNotAllowed, match="backwards"):
        app.change_stage(deal.id, "contact", cancel_pending=False)
    with pytest.raises(TransitionNotAllowed, match="skip"):
        app.mark_won(deal.id, cancel_pending=False)
    assert app.get(deal.id).stage == "meeting"


def test_moving_to_lost_is_never_a_skip(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="strict", allow_backward=False, allow_skip=False))
    deal = new_deal(app, "strict")
    assert app.mark_lost(deal.id, cancel_pending=False).opportunity.status is Status.LOST


def test_reopening_a_closed_opportunity_is_always_allowed_and_recorded(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="strict", allow_backward=False, allow_skip=False))
    deal = new_deal(app, "strict")
    app.mark_lost(deal.id, reason="Budget", cancel_pending=True)
    result = app.change_stage(deal.id, "contact")
    kinds = [e.kind for e in result.events]
    assert kinds.count(EventKind.STAGE_CHANGED) == 1
    assert EventKind.REOPENED in kinds
    reopened = result.opportunity
    assert (reopened.status, reopened.closed_on, reopened.loss_reason) == (Status.OPEN, None, None)


def test_a_required_loss_reason(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="why", require_loss_reason=True))
    deal = new_deal(app, "why")
    with pytest.raises(LossReasonRequired, match="requires a loss reason"):
        app.mark_lost(deal.id, cancel_pending=True)
    with pytest.raises(LossReasonRequired):
        app.change_stage(deal.id, "lost", loss_reason="  ", cancel_pending=True)
    assert app.get(deal.id).status is Status.OPEN
    assert app.mark_lost(deal.id, reason="Price", cancel_pending=True).opportunity.loss_reason == (
        "Price"
    )


def test_a_loss_reason_from_a_fixed_list(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="listed", loss_reasons=("Price", "Timing")))
    deal = new_deal(app, "listed")
    with pytest.raises(ValidationError, match="'Weather' is not one of"):
        app.mark_lost(deal.id, reason="Weather", cancel_pending=True)
    assert app.mark_lost(deal.id, reason="Timing", cancel_pending=True).opportunity.loss_reason


def test_a_loss_reason_only_goes_with_a_lost_stage(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match="only to a move to a LOST stage"):
        app.change_stage(deal.id, "proposal", loss_reason="Price")


def test_a_paused_opportunity_refuses_stage_changes_until_resumed(app: SalesFlow) -> None:
    deal = new_deal(app)
    paused = app.pause(deal.id).opportunity
    assert paused.status is Status.PAUSED
    with pytest.raises(TransitionNotAllowed, match="paused"):
        app.change_stage(deal.id, "proposal")
    with pytest.raises(TransitionNotAllowed, match="paused"):
        app.mark_won(deal.id)
    assert app.resume(deal.id).opportunity.status is Status.OPEN
    assert app.change_stage(deal.id, "proposal").opportunity.stage == "proposal"


def test_only_open_opportunities_pause_and_only_paused_ones_resume(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(TransitionNotAllowed, match="only a paused"):
        app.resume(deal.id)
    app.mark_won(deal.id)
    with pytest.raises(TransitionNotAllowed, match="only an open"):
        app.pause(deal.id)


# -- cancel policies ------------------------------------------------------------------


def _deal_with_a_planned_call(app: SalesFlow, process: str) -> str:
    deal = new_deal(app, process)
    assert len(app.activities(opportunity_id=deal.id, status=ActivityStatus.PLANNED)) == 1
    return deal.id


def test_ask_policy_raises_confirmation_required_and_changes_nothing(seed003: SalesFlow) -> None:
    deal_id = _deal_with_a_planned_call(seed003, "seed003")
    before = (seed003.get(deal_id), seed003.activities(), seed003.history(deal_id))
    with pytest.raises(ConfirmationRequired) as raised:
        seed003.change_stage(deal_id, "meeting")
    plan = raised.value.plan
    assert [a.title for a in plan.to_cancel] == ["Introductory call"]
    assert plan.needs_answer
    assert (seed003.get(deal_id), seed003.activities(), seed003.history(deal_id)) == before


def test_ask_policy_answered_true_cancels(seed003: SalesFlow) -> None:
    deal_id = _deal_with_a_planned_call(seed003, "seed003")
    result = seed003.change_stage(deal_id, "meeting", cancel_pending=True)
    assert [a.title for a in result.cancelled] == ["Introductory call"]
    assert result.cancelled[0].status is ActivityStatus.CANCELLED
    call = seed003.activities(opportunity_id=deal_id, status=ActivityStatus.CANCELLED)
    assert [a.title for a in call] == ["Introductory call"]
    assert "Cancelled 1 planned activity of Contact." in result.notices


def test_ask_policy_answered_false_keeps(seed003: SalesFlow) -> None:
    deal_id = _deal_with_a_planned_call(seed003, "seed003")
    result = seed003.change_stage(deal_id, "meeting", cancel_pending=False)
    assert result.cancelled == ()
    planned = seed003.activities(opportunity_id=deal_id, status=ActivityStatus.PLANNED)
    assert sorted(a.title for a in planned) == ["Introductory call", "Product demo"]


def test_ask_with_nothing_to_cancel_does_not_ask(app: SalesFlow) -> None:
    deal = new_deal(app)
    assert not app.preview_stage_change(deal.id, "proposal").needs_answer
    assert app.change_stage(deal.id, "proposal").opportunity.stage == "proposal"


def test_cancel_policy_always_cancels(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="tidy", cancel_pending=CancelPolicy.CANCEL))
    deal_id = _deal_with_a_planned_call(app, "tidy")
    result = app.change_stage(deal_id, "meeting", cancel_pending=False)
    assert [a.title for a in result.cancelled] == ["Introductory call"]


def test_keep_policy_never_cancels(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="keep", cancel_pending=CancelPolicy.KEEP))
    deal_id = _deal_with_a_planned_call(app, "keep")
    assert app.preview_stage_change(deal_id, "meeting").to_cancel == ()
    result = app.change_stage(deal_id, "meeting", cancel_pending=True)
    assert result.cancelled == ()


def test_only_activities_of_the_stage_being_left_are_cancelled(
    seed003: SalesFlow, clock: FixedClock
) -> None:
    deal_id = _deal_with_a_planned_call(seed003, "seed003")
    seed003.change_stage(deal_id, "meeting", cancel_pending=False)
    result = seed003.change_stage(deal_id, "lost", cancel_pending=True)
    assert [a.title for a in result.cancelled] == ["Product demo"]
    planned = seed003.activities(opportunity_id=deal_id, status=ActivityStatus.PLANNED)
    assert [a.title for a in planned] == ["Introductory call"]


# -- automatic activities ---------------------------------------------------------------


def test_entering_a_stage_creates_its_auto_activities_due_after_entry(
    seed003: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(seed003, "seed003")
    (call,) = seed003.activities(opportunity_id=deal.id)
    assert call.due == clock.now() + dt.timedelta(days=2)
    assert (call.stage, call.track_outcome) == ("contact", True)
    assert call.action_id == action(seed003, deal.id, "intro-call").id
    clock.advance(DAY)
    result = seed003.change_stage(deal.id, "meeting", cancel_pending=False)
    (demo,) = result.created
    assert (demo.title, demo.stage, demo.due) == ("Product demo", "meeting", clock.now() + DAY)
    assert action(seed003, deal.id, "demo").activity_id == demo.id


def test_re_entering_a_stage_never_duplicates_an_activity(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    seed003.change_stage(deal.id, "meeting", cancel_pending=False)
    result = seed003.change_stage(deal.id, "contact", cancel_pending=False)
    assert result.created == ()
    calls = [
        a for a in seed003.activities(opportunity_id=deal.id) if a.title == "Introductory call"
    ]
    assert len(calls) == 1


def test_re_entering_after_a_cancellation_creates_a_new_activity(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    seed003.change_stage(deal.id, "meeting", cancel_pending=True)
    result = seed003.change_stage(deal.id, "contact", cancel_pending=True)
    assert [a.title for a in result.created] == ["Introductory call"]


def test_the_plan_is_a_preview_that_changes_nothing(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    plan = seed003.preview_stage_change(deal.id, "meeting")
    assert [a.key for a in plan.to_create] == ["demo"]
    assert (plan.from_stage.key, plan.to_stage.key, plan.probability) == ("contact", "meeting", 40)
    assert plan.status is Status.OPEN
    assert seed003.get(deal.id) == deal
    assert len(seed003.activities(opportunity_id=deal.id)) == 1


def test_warnings_list_open_required_actions_overdue_activities_and_no_close_date(
    seed003: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(seed003, "seed003")
    clock.advance(5 * DAY)
    warnings = seed003.preview_stage_change(deal.id, "meeting").warnings
    assert "Required action 'Introductory call' of Contact is not completed." in warnings
    assert "Required action 'Send the brochure' of Contact is not completed." in warnings
    assert any("'Introductory call' is overdue" in w for w in warnings)
    assert "No expected close date is set." in warnings
    seed003.update(deal.id, expected_close=dt.date(2026, 5, 1))
    assert (
        "No expected close date is set."
        not in seed003.preview_stage_change(deal.id, "meeting").warnings
    )


def test_warnings_never_block(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    assert seed003.preview_stage_change(deal.id, "meeting").warnings
    assert seed003.change_stage(deal.id, "meeting", cancel_pending=False).opportunity.stage == (
        "meeting"
    )


# -- gates ---------------------------------------------------------------------------


def test_a_stage_gate_refuses_entry_naming_each_missing_field(app: SalesFlow) -> None:
    gated = Process(
        "gated",
        "Gated",
        (
            Stage("lead", "Lead", 10),
            Stage("quote", "Quote", 50, requires=("customer", "expected_close", "owner")),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
    )
    app.define_process(gated)
    deal = app.create_opportunity(title="x", process="gated", owner="kari").opportunity
    with pytest.raises(TransitionNotAllowed, match="requires customer, expected_close to be set"):
        app.change_stage(deal.id, "quote")
    app.update(deal.id, expected_close=dt.date(2026, 5, 1), customer=None)
    with pytest.raises(TransitionNotAllowed, match="requires customer to be set"):
        app.change_stage(deal.id, "quote")


def test_a_gate_naming_an_unknown_field_is_refused_when_the_process_is_built() -> None:
    with pytest.raises(ValidationError, match="fields that opportunities do not have"):
        Stage("quote", "Quote", 50, requires=("budget",))


# -- bulk ---------------------------------------------------------------------------------


def test_bulk_change_applies_each_item_on_its_own(app: SalesFlow) -> None:
    first, second = new_deal(app), new_deal(app)
    app.pause(second.id)
    result = app.bulk_change_stage([first.id, second.id, "missing"], "proposal")
    assert result.succeeded == (first.id,)
    assert set(result.failed) == {second.id, "missing"}
    assert isinstance(result.failed[second.id], TransitionNotAllowed)
    assert app.get(first.id).stage == "proposal"
    assert app.get(second.id).stage == "lead"


# -- moves between closed stages, auto-advance past them, creation into them -----------


def _with_lost_in_between(**options: object) -> Process:
    """open ``a`` (two required steps), a LOST stage, then open ``b``, won, lost."""
    return Process(
        "between",
        "Lost in between",
        (
            Stage("a", "A", 20, actions=(StageAction("one", "One"), StageAction("two", "Two"))),
            Stage("gone", "Gone", 0, StageKind.LOST),
            Stage("b", "B", 60),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        **options,  # type: ignore[arg-type]
    )


def test_auto_advance_passes_over_a_lost_stage_between_open_stages(app: SalesFlow) -> None:
    app.define_process(_with_lost_in_between(auto_advance=True, allow_skip=False))
    deal = new_deal(app, "between", expected_close=dt.date(2026, 6, 1))
    ids = [a.id for a in app.actions(deal.id)]

    result = app.complete_actions(deal.id, ids)

    assert result.opportunity.stage == "b"
    assert "Moved to B." in result.notices


def test_lost_to_won_is_neither_backwards_nor_a_skip(app: SalesFlow) -> None:
    app.define_process(_with_lost_in_between(allow_backward=False, allow_skip=False))
    deal = new_deal(app, "between")
    app.mark_lost(deal.id)

    assert app.mark_won(deal.id).opportunity.status is Status.WON
    assert app.change_stage(deal.id, "lost").opportunity.status is Status.LOST


def test_creating_into_a_lost_stage_follows_the_loss_reason_rules(app: SalesFlow) -> None:
    app.define_process(
        seed003_process(key="strict", require_loss_reason=True, loss_reasons=("Price",))
    )
    with pytest.raises(LossReasonRequired):
        new_deal(app, "strict", stage="lost")
    with pytest.raises(ValidationError, match="not one of"):
        new_deal(app, "strict", stage="lost", loss_reason="Weather")
    with pytest.raises(ValidationError, match="only to a move to a LOST stage"):
        new_deal(app, "strict", stage="meeting", loss_reason="Price")

    lost = new_deal(app, "strict", stage="lost", loss_reason="Price")

    assert (lost.status, lost.loss_reason, lost.probability) == (Status.LOST, "Price", 0)
    assert app.search(statuses="lost").total == 1


def test_a_reason_is_checked_even_when_the_deal_is_already_lost(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="listed", loss_reasons=("Price",)))
    deal = new_deal(app, "listed")
    app.mark_lost(deal.id, reason="Price", cancel_pending=True)

    with pytest.raises(ValidationError, match="not one of"):
        app.mark_lost(deal.id, reason="Weather")
    assert app.mark_lost(deal.id).notices == ("Already in Lost.",)


def test_the_policy_is_asked_about_each_bulk_item_as_the_bulk_command(make_app: MakeApp) -> None:
    asked: list[tuple[str, str | None]] = []

    class Recording:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            opportunity_id = getattr(opportunity, "id", None)
            asked.append((command, opportunity_id))
            return command != "bulk_change_stage" or opportunity_id != second.id

    app = make_app(policy=Recording())
    first, second = new_deal(app), new_deal(app)
    asked.clear()

    result = app.bulk_change_stage([first.id, second.id], "proposal", actor="kim")

    assert asked == [("bulk_change_stage", first.id), ("bulk_change_stage", second.id)]
    assert result.succeeded == (first.id,)
    assert isinstance(result.failed[second.id], PermissionDenied)


def test_notices_name_the_deal_by_title_and_quote_text_as_given(app: SalesFlow) -> None:
    created = app.create_opportunity(title="O'Brien's \"big\" deal")
    deal = created.opportunity
    app.add_action(deal.id, "lead", StageAction("call", "Call O'Brien"))
    (call,) = app.actions(deal.id)

    done = app.perform_action(deal.id, call.id)

    assert created.notices == ("Created 'O'Brien's \"big\" deal' in Lead.",)
    assert done.notices == ("Completed 'Call O'Brien'.",)
    assert all(deal.id not in notice for notice in (*created.notices, *done.notices))
