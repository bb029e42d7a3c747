"""Nothing salesflow hands out can change what is stored; subscribers hear events in
commit order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

from salesflow import Event, EventKind, Money, SalesFlow, StageAction
from tests.unit.support import new_deal


def test_event_details_are_read_only_for_readers_and_subscribers(app: SalesFlow) -> None:
    heard: list[Event] = []
    app.subscribe(heard.append)
    deal = new_deal(app)
    moved = app.change_stage(deal.id, "proposal")
    event = moved.events[0]

    with pytest.raises(TypeError):
        event.details["to"] = "won"  # type: ignore[index]
    with pytest.raises(TypeError):
        event.details["changes"]["stage"] = ("x", "y")
    with pytest.raises(TypeError):
        heard[-1].details["to"] = "won"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.kind = EventKind.CREATED  # type: ignore[misc]

    stored = app.history(deal.id)[-1]
    assert stored.details["to"] == "proposal"
    assert stored.details["changes"]["stage"] == ("lead", "proposal")


def test_money_handed_out_cannot_be_changed(app: SalesFlow) -> None:
    deal = new_deal(app, value=Money("1000", "USD"))

    with pytest.raises(TypeError):
        deal.value.amount = Decimal(5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        app.get(deal.id).value.amount = Decimal(5)  # type: ignore[misc]

    assert app.get(deal.id).value == Money("1000", "USD")
    assert app.pipeline().total == Money("1000", "USD")


def test_a_process_handed_out_cannot_be_changed(app: SalesFlow) -> None:
    action = StageAction("call", "Call")
    deal = new_deal(app)
    app.add_action(deal.id, "lead", action)
    (held,) = app.actions(deal.id)

    with pytest.raises(TypeError):
        held.spec.due_after.days = 30
    with pytest.raises(TypeError):
        action.due_after.days = 30

    assert app.actions(deal.id)[0].spec.due_after.days == 1


def test_results_cannot_be_changed(app: SalesFlow) -> None:
    deal = new_deal(app)
    bulk = app.bulk_change_stage([deal.id, "missing"], "proposal")

    with pytest.raises(TypeError):
        bulk.failed["other"] = bulk.failed["missing"]  # type: ignore[index]
    with pytest.raises(TypeError):
        bulk.results[deal.id] = bulk.results[deal.id]  # type: ignore[index]
    assert list(bulk.failed) == ["missing"]


def test_subscribers_hear_events_in_commit_order(app: SalesFlow) -> None:
    """A subscriber that runs a command: its events come after every subscriber has heard
    the events of the command that caused it."""
    first: list[EventKind] = []
    second: list[EventKind] = []
    deal = new_deal(app)

    def reacting(event: Event) -> None:
        first.append(event.kind)
        if event.kind is EventKind.STAGE_CHANGED and event.details["to"] == "proposal":
            app.set_probability(deal.id, 60)

    app.subscribe(reacting)
    app.subscribe(lambda event: second.append(event.kind))
    app.schedule_activity(
        title="Call",
        due=dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
        opportunity_id=deal.id,
    )
    app.change_stage(deal.id, "proposal", cancel_pending=True)

    expected = [
        EventKind.ACTIVITY_SCHEDULED,
        EventKind.ACTIVITY_CANCELLED,
        EventKind.STAGE_CHANGED,
        EventKind.PROBABILITY_SET,
    ]
    assert first == expected
    assert second == expected
    assert app.get(deal.id).probability == 60


def test_report_money_cannot_be_changed(app: SalesFlow) -> None:
    new_deal(app, value=Money("1000", "USD"))
    board = app.pipeline()
    with pytest.raises(TypeError):
        board.total.amount = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        board.stages[0].weighted.amount = Decimal(1)  # type: ignore[misc]
