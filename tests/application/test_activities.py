"""Activities and the activity indicator (seeds 000, 003, 004)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from salesflow import (
    ActivityKind,
    ActivityStatus,
    EventKind,
    FixedClock,
    Indicator,
    SalesFlow,
)
from salesflow.errors import NotFound, OutcomeRequired, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import new_deal

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def test_scheduling_on_an_opportunity_links_it_and_records_it(
    app: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(app, owner="kari")
    activity = app.schedule_activity(
        title="Call back", due=clock.now() + DAY, kind=ActivityKind.CALL, opportunity_id=deal.id
    )
    assert (activity.opportunity_id, activity.stage, activity.owner) == (deal.id, "lead", "kari")
    assert (activity.status, activity.created_at, activity.version) == (
        ActivityStatus.PLANNED,
        clock.now(),
        1,
    )
    assert app.history(deal.id)[-1].kind is EventKind.ACTIVITY_SCHEDULED
    assert app.activities(opportunity_id=deal.id) == [activity]


def test_an_activity_may_stand_alone(app: SalesFlow, clock: FixedClock) -> None:
    activity = app.schedule_activity(title="Plan the quarter", due=clock.now(), owner="ann")
    assert activity.opportunity_id is None
    result = app.complete_activity(activity.id)
    with pytest.raises(NotFound, match="no opportunity"):
        _ = result.opportunity
    (done,) = app.activities(owner="ann")
    assert done.status is ActivityStatus.DONE


def test_scheduling_refuses_naive_times_and_blank_titles(app: SalesFlow, clock: FixedClock) -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        app.schedule_activity(title="x", due=dt.datetime(2026, 3, 3, 9))  # noqa: DTZ001
    with pytest.raises(ValidationError, match="must not be blank"):
        app.schedule_activity(title=" ", due=clock.now())
    with pytest.raises(NotFound):
        app.schedule_activity(title="x", due=clock.now(), opportunity_id="missing")


def test_completing_records_the_outcome(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    activity = app.schedule_activity(
        title="Demo", due=clock.now(), opportunity_id=deal.id, track_outcome=True
    )
    with pytest.raises(OutcomeRequired):
        app.complete_activity(activity.id)
    clock.advance(HOUR)
    app.complete_activity(activity.id, outcome="Went well")
    (done,) = app.activities(opportunity_id=deal.id)
    assert (done.status, done.outcome, done.done_at) == (
        ActivityStatus.DONE,
        "Went well",
        clock.now(),
    )


def test_only_planned_activities_complete_or_cancel(app: SalesFlow, clock: FixedClock) -> None:
    activity = app.schedule_activity(title="x", due=clock.now())
    app.cancel_activity(activity.id)
    with pytest.raises(ValidationError, match="is cancelled"):
        app.complete_activity(activity.id)
    with pytest.raises(ValidationError, match="is cancelled"):
        app.cancel_activity(activity.id)


def test_cancelling_and_deleting(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    first = app.schedule_activity(title="First", due=clock.now(), opportunity_id=deal.id)
    second = app.schedule_activity(title="Second", due=clock.now(), opportunity_id=deal.id)
    cancelled = app.cancel_activity(first.id).cancelled[0]
    assert (cancelled.status, cancelled.cancelled_at) == (ActivityStatus.CANCELLED, clock.now())
    app.delete_activity(second.id)
    assert [a.id for a in app.activities(opportunity_id=deal.id)] == [first.id]
    kinds = [e.kind for e in app.history(deal.id)]
    assert kinds[-2:] == [EventKind.ACTIVITY_CANCELLED, EventKind.ACTIVITY_DELETED]
    with pytest.raises(NotFound, match=second.id):
        app.delete_activity(second.id)


def test_activities_filter_and_order_by_due(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    now = clock.now()
    late = app.schedule_activity(title="Late", due=now + 3 * DAY, opportunity_id=deal.id)
    early = app.schedule_activity(title="Early", due=now + DAY, owner="ann")
    middle = app.schedule_activity(title="Middle", due=now + 2 * DAY, owner="ann")
    app.complete_activity(middle.id)
    assert [a.title for a in app.activities()] == ["Early", "Middle", "Late"]
    assert [a.id for a in app.activities(owner="ann")] == [early.id, middle.id]
    assert [a.id for a in app.activities(status=ActivityStatus.PLANNED)] == [early.id, late.id]
    assert [a.id for a in app.activities(due_from=now + 2 * DAY)] == [middle.id, late.id]
    assert [a.id for a in app.activities(due_to=now + 2 * DAY)] == [early.id, middle.id]
    with pytest.raises(ValidationError, match="timezone-aware"):
        app.activities(due_from=dt.datetime(2026, 1, 1))  # noqa: DTZ001


# -- the indicator ----------------------------------------------------------------------


def test_indicator_none_without_planned_activities(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    done = app.schedule_activity(title="x", due=clock.now() - DAY, opportunity_id=deal.id)
    app.complete_activity(done.id)
    indicator = app.indicator(deal.id)
    assert (indicator.state, indicator.open, indicator.overdue) == (Indicator.NONE, 0, 0)


def test_indicator_upcoming_today_overdue_precedence(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    app.schedule_activity(title="Later", due=clock.now() + 2 * DAY, opportunity_id=deal.id)
    assert app.indicator(deal.id).state is Indicator.UPCOMING
    app.schedule_activity(title="Today", due=clock.now() + 3 * HOUR, opportunity_id=deal.id)
    assert app.indicator(deal.id).state is Indicator.TODAY
    app.schedule_activity(title="Missed", due=clock.now() - DAY, opportunity_id=deal.id)
    indicator = app.indicator(deal.id)
    assert (indicator.state, indicator.open, indicator.overdue) == (Indicator.OVERDUE, 3, 1)


def test_an_activity_earlier_today_is_today_not_overdue(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app)
    app.schedule_activity(title="Early", due=clock.now() - 2 * HOUR, opportunity_id=deal.id)
    assert app.indicator(deal.id).state is Indicator.TODAY


def test_indicator_days_are_calendar_days_in_the_app_timezone(
    make_app: MakeApp,
) -> None:
    oslo = ZoneInfo("Europe/Oslo")
    # 23:30 UTC on 2 March is 00:30 on 3 March in Oslo
    clock = FixedClock(dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC))
    in_oslo = make_app(clock=clock, timezone=oslo)
    in_utc = make_app(clock=clock)
    due = dt.datetime(2026, 3, 2, 22, 0, tzinfo=dt.UTC)  # 23:00 on 2 March in Oslo
    for app in (in_oslo, in_utc):
        deal = new_deal(app)
        app.schedule_activity(title="Call", due=due, opportunity_id=deal.id)
    oslo_deal = in_oslo.search().items[0]
    utc_deal = in_utc.search().items[0]
    assert in_oslo.indicator(oslo_deal.id).state is Indicator.OVERDUE
    assert in_utc.indicator(utc_deal.id).state is Indicator.TODAY
