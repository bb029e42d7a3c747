"""Stage actions: performing, completing, the activity link and auto-advance (seed 003)."""

from __future__ import annotations

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityStatus,
    CancelPolicy,
    EventKind,
    FixedClock,
    Opportunity,
    OpportunityAction,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.errors import NotFound, OutcomeRequired, UnknownStage, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import action, new_deal, seed003_process


@pytest.fixture
def seed003(app: SalesFlow) -> SalesFlow:
    app.define_process(seed003_process())
    app.define_process(seed003_process(key="auto", auto_advance=True))
    return app


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self.sent.append((opportunity.id, action.spec.template or ""))


class Invites:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        key = (event, opportunity.id)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def test_every_opportunity_holds_its_own_copy_of_the_actions(seed003: SalesFlow) -> None:
    first, second = new_deal(seed003, "seed003"), new_deal(seed003, "seed003")
    assert [a.key for a in seed003.actions(first.id)] == ["intro-call", "brochure"]
    assert [a.key for a in seed003.actions(first.id, "meeting")] == ["demo", "seminar", "notes"]
    added = StageAction("referral", "Ask for a referral")
    seed003.add_action(first.id, "contact", added)
    seed003.remove_action(first.id, action(seed003, first.id, "brochure").id)
    assert [a.key for a in seed003.actions(first.id)] == ["intro-call", "referral"]
    assert [a.key for a in seed003.actions(second.id)] == ["intro-call", "brochure"]
    assert seed003.process("seed003") == seed003_process()


def test_adding_an_action_records_it_and_keys_stay_unique(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    result = seed003.add_action(deal.id, "meeting", StageAction("extra", "Extra step"))
    assert result.events[0].kind is EventKind.ACTION_ADDED
    with pytest.raises(ValidationError, match="already has an action with key 'extra'"):
        seed003.add_action(deal.id, "meeting", StageAction("extra", "Again"))
    with pytest.raises(UnknownStage):
        seed003.add_action(deal.id, "nowhere", StageAction("x", "X"))


def test_removing_an_unknown_action_is_not_found(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    with pytest.raises(NotFound, match="no action 'nope'"):
        seed003.remove_action(deal.id, "nope")


def test_performing_a_calendar_action_creates_its_activity_without_completing_it(
    seed003: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(seed003, "seed003", stage="meeting")
    demo = action(seed003, deal.id, "demo")
    (existing,) = seed003.activities(opportunity_id=deal.id)
    seed003.delete_activity(existing.id)
    due = clock.now() + dt.timedelta(days=4)
    result = seed003.perform_action(deal.id, demo.id, due=due)
    (created,) = result.created
    assert (created.due, created.action_id, created.stage) == (due, demo.id, "meeting")
    after = action(seed003, deal.id, "demo")
    assert (after.completed, after.activity_id) == (False, created.id)
    assert [e.kind for e in result.events] == [
        EventKind.ACTION_PERFORMED,
        EventKind.ACTIVITY_SCHEDULED,
    ]


def test_performing_a_calendar_action_with_an_activity_gives_a_notice(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    call = action(seed003, deal.id, "intro-call")
    result = seed003.perform_action(deal.id, call.id)
    assert result.notices == ("An activity already exists for this action.",)
    assert result.created == ()
    assert len(seed003.activities(opportunity_id=deal.id)) == 1


def test_a_done_activity_also_blocks_a_second_one(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    (call,) = seed003.activities(opportunity_id=deal.id)
    seed003.complete_activity(call.id, outcome="Reached")
    # completed now: performing again changes nothing either
    result = seed003.perform_action(deal.id, action(seed003, deal.id, "intro-call").id)
    assert result.created == ()


def test_deleting_the_activity_lets_the_action_be_performed_again(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    call = action(seed003, deal.id, "intro-call")
    seed003.delete_activity(call.activity_id or "")
    assert action(seed003, deal.id, "intro-call").activity_id is None
    result = seed003.perform_action(deal.id, call.id)
    assert [a.title for a in result.created] == ["Introductory call"]


def test_performing_a_letter_sends_it_through_the_port_and_completes(
    make_app: MakeApp, clock: FixedClock
) -> None:
    letters = Letters()
    app = make_app(correspondence=letters)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003")
    brochure = action(app, deal.id, "brochure")
    result = app.perform_action(deal.id, brochure.id)
    assert letters.sent == [(deal.id, "brochure")]
    after = action(app, deal.id, "brochure")
    assert after.completed
    assert after.completed_at == clock.now()
    assert EventKind.ACTION_COMPLETED in [e.kind for e in result.events]


def test_the_default_correspondence_port_records_what_would_be_sent(seed003: SalesFlow) -> None:
    from salesflow.ports import RecordingCorrespondence

    deal = new_deal(seed003, "seed003")
    seed003.perform_action(deal.id, action(seed003, deal.id, "brochure").id)
    assert isinstance(seed003.correspondence, RecordingCorrespondence)
    assert seed003.correspondence.sent == [(deal.id, "brochure", "brochure")]


def test_performing_an_event_invites_and_a_second_invitation_gives_a_notice(
    make_app: MakeApp,
    clock: FixedClock,
) -> None:
    invites = Invites()
    app = make_app(invitations=invites)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003", stage="meeting")
    seminar = action(app, deal.id, "seminar")
    first = app.perform_action(deal.id, seminar.id)
    assert "Invited the customer to Spring seminar." in first.notices
    assert action(app, deal.id, "seminar").completed
    # the same event through an action added to this opportunity only
    app.add_action(
        deal.id,
        "meeting",
        StageAction("again", "Invite again", ActionKind.EVENT, event="Spring seminar"),
    )
    second = app.perform_action(deal.id, action(app, deal.id, "again").id)
    assert "The customer is already invited to Spring seminar." in second.notices


def test_performing_a_manual_action_completes_it(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003", stage="meeting")
    notes = action(seed003, deal.id, "notes")
    seed003.perform_action(deal.id, notes.id)
    assert action(seed003, deal.id, "notes").completed


def test_performing_a_completed_action_changes_nothing(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003", stage="meeting")
    notes = action(seed003, deal.id, "notes")
    seed003.complete_actions(deal.id, [notes.id])
    before = seed003.get(deal.id)
    result = seed003.perform_action(deal.id, notes.id)
    assert result.notices == ("'Write up notes' is already completed.",)
    assert seed003.get(deal.id) == before


def test_only_a_calendar_action_takes_a_due_time(seed003: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(seed003, "seed003")
    with pytest.raises(ValidationError, match="only a CALENDAR action takes a due time"):
        seed003.perform_action(deal.id, action(seed003, deal.id, "brochure").id, due=clock.now())


def test_completing_a_calendar_action_marks_its_activity_done(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003", stage="meeting")
    demo = action(seed003, deal.id, "demo")
    result = seed003.complete_actions(deal.id, [demo.id])
    (activity,) = seed003.activities(opportunity_id=deal.id)
    assert activity.status is ActivityStatus.DONE
    assert [e.kind for e in result.events] == [
        EventKind.ACTIVITY_COMPLETED,
        EventKind.ACTION_COMPLETED,
    ]


def test_marking_the_activity_done_completes_the_action(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003", stage="meeting")
    demo = action(seed003, deal.id, "demo")
    seed003.complete_activity(demo.activity_id or "")
    assert action(seed003, deal.id, "demo").completed


def test_one_tracked_completion_needs_an_outcome(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    call = action(seed003, deal.id, "intro-call")
    with pytest.raises(OutcomeRequired, match="needs an outcome"):
        seed003.complete_actions(deal.id, [call.id])
    with pytest.raises(OutcomeRequired, match="needs an outcome"):
        seed003.complete_activity(call.activity_id or "")
    assert not action(seed003, deal.id, "intro-call").completed
    seed003.complete_actions(deal.id, [call.id], outcome="Interested")
    (activity,) = seed003.activities(opportunity_id=deal.id)
    assert (activity.status, activity.outcome) == (ActivityStatus.DONE, "Interested")


def test_completing_several_actions_at_once_records_no_outcome(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    ids = [a.id for a in seed003.actions(deal.id)]
    seed003.complete_actions(deal.id, ids)
    assert all(a.completed for a in seed003.actions(deal.id))
    (activity,) = seed003.activities(opportunity_id=deal.id)
    assert (activity.status, activity.outcome) == (ActivityStatus.DONE, None)


def test_an_action_can_be_completed_without_being_performed(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    brochure = action(seed003, deal.id, "brochure")
    seed003.complete_actions(deal.id, [brochure.id])
    assert action(seed003, deal.id, "brochure").completed
    assert seed003.correspondence.sent == []  # type: ignore[attr-defined]


# -- auto-advance -------------------------------------------------------------------------


def test_completing_the_last_required_action_advances_one_stage(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto")
    seed003.complete_actions(deal.id, [action(seed003, deal.id, "brochure").id])
    assert seed003.get(deal.id).stage == "contact"
    result = seed003.complete_actions(
        deal.id, [action(seed003, deal.id, "intro-call").id], outcome="Interested"
    )
    assert result.opportunity.stage == "meeting"
    assert "Moved to Meeting." in result.notices
    kinds = [e.kind for e in result.events]
    assert kinds.count(EventKind.STAGE_CHANGED) == 1


def test_optional_actions_do_not_count_for_auto_advance(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto", stage="meeting", expected_close=dt.date(2026, 6, 1))
    ids = [action(seed003, deal.id, k).id for k in ("demo", "seminar")]
    result = seed003.complete_actions(deal.id, ids)
    assert result.opportunity.stage == "proposal"
    assert not action(seed003, deal.id, "notes").completed


def test_auto_advance_stops_at_a_gate_with_a_notice(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto", stage="meeting")
    ids = [action(seed003, deal.id, k).id for k in ("demo", "seminar")]
    result = seed003.complete_actions(deal.id, ids)
    assert result.opportunity.stage == "meeting"
    assert any("requires expected_close" in n for n in result.notices)


def test_auto_advance_never_moves_into_won_or_lost(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto", stage="proposal", expected_close=dt.date(2026, 6, 1))
    result = seed003.complete_actions(deal.id, [action(seed003, deal.id, "send-quote").id])
    assert result.opportunity.stage == "proposal"


def test_a_stage_without_required_actions_never_auto_advances(app: SalesFlow) -> None:
    process = Process(
        "optional",
        "Optional",
        (
            Stage("a", "A", 10, actions=(StageAction("x", "X", required=False),)),
            Stage("b", "B", 50),
            Stage("w", "W", 100, StageKind.WON),
            Stage("l", "L", 0, StageKind.LOST),
        ),
        auto_advance=True,
    )
    app.define_process(process)
    deal = new_deal(app, "optional")
    result = app.complete_actions(deal.id, [action(app, deal.id, "x").id])
    assert result.opportunity.stage == "a"


def test_auto_advance_under_ask_keeps_activities_with_a_notice(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto")
    seed003.schedule_activity(
        title="Follow-up", due=seed003.clock.now() + dt.timedelta(days=3), opportunity_id=deal.id
    )
    ids = [a.id for a in seed003.actions(deal.id)]
    result = seed003.complete_actions(deal.id, ids)
    assert result.opportunity.stage == "meeting"
    assert result.cancelled == ()
    assert "Kept 1 planned activity of Contact; cancel what is no longer needed." in result.notices
    planned = seed003.activities(opportunity_id=deal.id, status=ActivityStatus.PLANNED)
    assert sorted(a.title for a in planned) == ["Follow-up", "Product demo"]


def test_auto_advance_under_cancel_cancels(app: SalesFlow) -> None:
    app.define_process(
        seed003_process(key="c", auto_advance=True, cancel_pending=CancelPolicy.CANCEL)
    )
    deal = new_deal(app, "c")
    app.schedule_activity(
        title="Follow-up", due=app.clock.now() + dt.timedelta(days=3), opportunity_id=deal.id
    )
    result = app.complete_actions(deal.id, [a.id for a in app.actions(deal.id)])
    assert [a.title for a in result.cancelled] == ["Follow-up"]


def test_auto_advance_moves_one_stage_per_completion(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto", expected_close=dt.date(2026, 6, 1))
    # complete the meeting's actions ahead of time, then the contact's
    meeting_ids = [action(seed003, deal.id, k).id for k in ("demo", "seminar")]
    seed003.complete_actions(deal.id, meeting_ids)
    result = seed003.complete_actions(deal.id, [a.id for a in seed003.actions(deal.id)])
    assert result.opportunity.stage == "meeting"


def test_completing_an_activity_with_move_to_replaces_auto_advance(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "auto", expected_close=dt.date(2026, 6, 1))
    seed003.complete_actions(deal.id, [action(seed003, deal.id, "brochure").id])
    call = action(seed003, deal.id, "intro-call")
    result = seed003.complete_activity(
        call.activity_id or "", outcome="Wants a quote", move_to="proposal"
    )
    assert result.opportunity.stage == "proposal"
    assert [e.kind for e in result.events].count(EventKind.STAGE_CHANGED) == 1


def test_auto_advance_is_off_unless_the_process_asks_for_it(seed003: SalesFlow) -> None:
    deal = new_deal(seed003, "seed003")
    result = seed003.complete_actions(deal.id, [a.id for a in seed003.actions(deal.id)])
    assert result.opportunity.stage == "contact"


def test_cancelling_the_activity_unlinks_it_so_the_action_can_be_performed_again(
    seed003: SalesFlow,
) -> None:
    deal = new_deal(seed003, "seed003")
    call = action(seed003, deal.id, "intro-call")
    seed003.cancel_activity(call.activity_id or "")
    assert action(seed003, deal.id, "intro-call").activity_id is None
    result = seed003.perform_action(deal.id, call.id)
    assert [a.title for a in result.created] == ["Introductory call"]


def test_an_activity_outcome_can_lose_the_deal_with_a_reason(app: SalesFlow) -> None:
    app.define_process(seed003_process(key="why", require_loss_reason=True))
    deal = new_deal(app, "why")
    call = action(app, deal.id, "intro-call")
    result = app.complete_activity(
        call.activity_id or "", outcome="Not interested", move_to="lost", loss_reason="No budget"
    )
    assert (result.opportunity.stage, result.opportunity.loss_reason) == ("lost", "No budget")


def test_deleting_the_done_activity_of_an_action_lets_it_be_performed_again(
    seed003: SalesFlow,
) -> None:
    deal = new_deal(seed003, "seed003")
    demo = action(seed003, deal.id, "demo")
    (booked,) = seed003.perform_action(deal.id, demo.id).created
    seed003.complete_activity(booked.id)
    assert action(seed003, deal.id, "demo").completed

    seed003.delete_activity(booked.id)
    assert not action(seed003, deal.id, "demo").completed
    again = seed003.perform_action(deal.id, demo.id)

    assert len(again.created) == 1
    assert action(seed003, deal.id, "demo").activity_id == again.created[0].id


def test_a_due_after_beyond_the_calendar_is_refused_clearly(app: SalesFlow) -> None:
    far = StageAction("far", "Far call", ActionKind.CALENDAR, due_after=relativedelta(years=9000))
    deal = new_deal(app)
    app.add_action(deal.id, "lead", far)
    (added,) = app.actions(deal.id)

    with pytest.raises(ValidationError, match="outside the calendar"):
        app.perform_action(deal.id, added.id)
    assert app.activities(opportunity_id=deal.id) == []
