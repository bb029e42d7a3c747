"""Test your own sales rules with pytest and a ``FixedClock``.

Run it with ``pytest examples/test_my_rules.py``. A team's rules live in its process
definition -- which stages, which actions each asks for, when the engine moves a deal
on, which loss reasons count -- and in the subscribers it adds. These tests pin them
down the way a team would, on a clock the test moves by hand, so "two days later"
and "overdue tomorrow" are exact, and on the in-memory repository, so each test
starts empty and runs in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta

from salesflow import (
    ActionKind,
    ActivityStatus,
    CancelPolicy,
    Event,
    EventKind,
    FixedClock,
    Indicator,
    Money,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.errors import LossReasonRequired, ValidationError

OSLO = ZoneInfo("Europe/Oslo")

#: Our renewals process: a review call two days after a renewal comes in, a quote
#: that must be sent, and a reason for every lost renewal.
RENEWALS = Process(
    "renewals",
    "Renewals",
    (
        Stage(
            "review",
            "Review",
            40,
            actions=(
                StageAction(
                    "review-call",
                    "Review call",
                    ActionKind.CALENDAR,
                    auto_create=True,
                    due_after=relativedelta(days=2),
                ),
            ),
        ),
        Stage(
            "quote",
            "Quote",
            70,
            actions=(StageAction("send-quote", "Send the renewal quote"),),
        ),
        Stage("renewed", "Renewed", 100, StageKind.WON),
        Stage("churned", "Churned", 0, StageKind.LOST),
    ),
    currency="NOK",
    auto_advance=True,
    cancel_pending=CancelPolicy.CANCEL,
    require_loss_reason=True,
    loss_reasons=("price", "moved to a competitor", "closed down"),
)


@pytest.fixture
def clock() -> FixedClock:
    """Monday 2 March 2026, 09:00 in Oslo; each test moves it as it needs."""
    return FixedClock(dt.datetime(2026, 3, 2, 9, 0, tzinfo=OSLO))


@pytest.fixture
def app(clock: FixedClock) -> SalesFlow:
    flow = SalesFlow(clock=clock, timezone=OSLO)
    flow.define_process(RENEWALS)
    return flow


def renewal(app: SalesFlow, name: str = "Fjordkraft") -> str:
    created = app.create_opportunity(
        process="renewals",
        customer=Organization(name.lower(), name),
        value=Money("120000", "NOK"),
        owner="ingrid",
    )
    return created.opportunity.id


def test_a_new_renewal_books_its_review_call_two_days_out(app: SalesFlow) -> None:
    deal = renewal(app)
    (call,) = app.activities(opportunity_id=deal)
    assert call.title == "Review call"
    assert call.due == dt.datetime(2026, 3, 4, 9, 0, tzinfo=OSLO)
    assert app.indicator(deal).state is Indicator.UPCOMING


def test_the_review_call_is_overdue_the_day_after_it_was_due(
    app: SalesFlow, clock: FixedClock
) -> None:
    deal = renewal(app)
    clock.advance(dt.timedelta(days=2))
    assert app.indicator(deal).state is Indicator.TODAY
    clock.advance(dt.timedelta(days=1))
    assert app.indicator(deal).state is Indicator.OVERDUE


def test_the_call_done_moves_the_renewal_to_the_quote(app: SalesFlow, clock: FixedClock) -> None:
    deal = renewal(app)
    clock.advance(dt.timedelta(days=2))
    (call,) = app.activities(opportunity_id=deal)
    done = app.complete_activity(call.id, actor="ingrid")
    assert done.opportunity.stage == "quote"
    assert done.opportunity.probability == 70
    assert "Moved to Quote." in done.notices


def test_a_churned_renewal_needs_one_of_our_reasons(app: SalesFlow) -> None:
    deal = renewal(app)
    with pytest.raises(LossReasonRequired):
        app.mark_lost(deal)
    with pytest.raises(ValidationError):
        app.mark_lost(deal, reason="no idea")
    lost = app.mark_lost(deal, reason="price")
    assert lost.opportunity.loss_reason == "price"
    # the review call is cancelled without asking: the process says CANCEL
    assert [a.status for a in app.activities(opportunity_id=deal)] == [ActivityStatus.CANCELLED]


def test_a_renewed_deal_sends_the_contract_once(app: SalesFlow, clock: FixedClock) -> None:
    contracts: list[str] = []

    def send_contract(event: Event) -> None:
        moved = event.kind is EventKind.STAGE_CHANGED and event.details["to"] == "renewed"
        if moved and event.opportunity_id is not None:
            contracts.append(app.get(event.opportunity_id).display_title)

    app.subscribe(send_contract)
    deal = renewal(app, "Telenor")
    clock.advance(dt.timedelta(days=5))
    won = app.mark_won(deal, actor="ingrid")
    assert won.opportunity.closed_on == dt.date(2026, 3, 7)
    app.mark_won(deal)  # already renewed: nothing happens, nothing is sent again
    assert contracts == ["Telenor"]
