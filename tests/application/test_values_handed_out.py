"""What salesflow hands out can be kept, shared and sent on: events, errors, bulk
results and reports pickle and come back equal, events can be put in a set, on every
repository; and the records' own methods refuse what their constructors refuse."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal
from typing import Any

import attrs
import pytest

from salesflow import Event, EventKind, FixedClock, Money, SalesFlow, processes
from salesflow.errors import ConfirmationRequired, ValidationError
from salesflow.serialization import from_json, to_json
from tests.conftest import START

NAIVE = dt.datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - naive on purpose


def busy_deal(app: SalesFlow) -> str:
    deal = app.create_opportunity(title="Refit", value=Money("1200", "GBP"), owner="ann")
    deal_id = deal.opportunity.id
    app.schedule_activity(title="Call", due=START, opportunity_id=deal_id)
    app.update(deal_id, expected_close=START.date(), description="Hull & deck")
    return deal_id


def test_events_read_back_pickle_and_hash(app: SalesFlow) -> None:
    deal_id = busy_deal(app)
    history = app.history(deal_id)
    feed = app.changes()
    for event in (*history, *feed):
        again = pickle.loads(pickle.dumps(event))
        assert again == event
        assert again.position == event.position
        assert hash(again) == hash(event)
    assert len(set(feed)) == len(feed)  # a reader may keep what it saw in a set
    assert set(history) <= set(feed)


def test_errors_bulk_results_and_reports_pickle(app: SalesFlow, clock: FixedClock) -> None:
    deal_id = busy_deal(app)
    with pytest.raises(ConfirmationRequired) as asked:
        app.change_stage(deal_id, "proposal")
    again = pickle.loads(pickle.dumps(asked.value))
    assert type(again) is ConfirmationRequired
    assert str(again) == str(asked.value)
    assert again.plan == asked.value.plan
    bulk = app.bulk_change_stage([deal_id, "nope"], "proposal", cancel_pending=True)
    copied = pickle.loads(pickle.dumps(bulk))
    assert copied.succeeded == bulk.succeeded
    assert {k: str(e) for k, e in copied.failed.items()} == {
        k: str(e) for k, e in bulk.failed.items()
    }
    app.mark_won(deal_id)
    clock.advance(dt.timedelta(days=1))
    for report in (app.pipeline(currency="GBP"), app.analytics(currency="GBP")):
        again = pickle.loads(pickle.dumps(report))
        assert again == report
        assert hash(again) == hash(report)
    with pytest.raises(TypeError):
        bulk.failed["x"] = ValidationError("no")  # type: ignore[index]


def test_a_records_own_methods_refuse_what_its_constructor_refuses() -> None:
    app = SalesFlow(clock=FixedClock(START))
    deal = app.create_opportunity(title="Refit").opportunity
    stage = processes.STANDARD.stage("proposal")
    for at, today in (
        (NAIVE, START.date()),
        (dt.datetime(1, 1, 2, tzinfo=dt.UTC), START.date()),
        (START, START),  # a datetime is not a day
    ):
        with pytest.raises(ValidationError):
            deal.moved(stage, at=at, today=today, loss_reason=None)
    activity = app.schedule_activity(title="Call", due=START, opportunity_id=deal.id)
    with pytest.raises(ValidationError, match="cancelled_at"):
        activity.cancelled(at=NAIVE)


@pytest.mark.parametrize(
    "details",
    [
        {"when": NAIVE},
        {"text": "lone \ud800 surrogate"},
        {"text": "a NUL \x00 inside"},
        {1: "an int key"},
        {"thing": object()},
        {"number": float("nan")},
        {"number": Decimal("Infinity")},
        {"tags": {"a", "b"}},
        {"raw": bytearray(b"x")},
        {"money": Money("-1e40", "USD")},
        {"nested": {"deeper": [NAIVE]}},
    ],
)
def test_event_details_hold_only_what_every_repository_stores(details: dict[Any, Any]) -> None:
    with pytest.raises(ValidationError, match=r"Event\.details"):
        Event("e-1", EventKind.NOTE_ADDED, "o-1", START, None, details)


def test_event_details_from_json_are_checked_as_a_callers() -> None:
    later = START + dt.timedelta(hours=1)
    good = Event("e-1", EventKind.NOTE_ADDED, "o-1", START, None, {"when": later})
    assert from_json(to_json(good), Event) == good
    naive = to_json(good).replace(later.isoformat(), later.replace(tzinfo=None).isoformat())
    assert naive != to_json(good)
    with pytest.raises(ValidationError, match="Cannot read Event from JSON"):
        from_json(naive, Event)


def test_names_stored_with_blanks_around_them_are_read_back_trimmed() -> None:
    # Records written before names were trimmed at the boundary come back trimmed,
    # so that a search or a report by that name finds them.
    app = SalesFlow(clock=FixedClock(START))
    deal = app.create_opportunity(title="Refit", owner="kim").opportunity
    stored = to_json(deal).replace('"kim"', '"  kim  "')
    assert '"  kim  "' in stored
    assert from_json(stored, type(deal)).owner == "kim"
    event = Event("e-1", EventKind.NOTE_ADDED, deal.id, START, "  ann ", {})
    assert event.actor == "ann"


def test_a_process_keeps_its_loss_reasons_trimmed() -> None:
    strict = attrs.evolve(
        processes.STANDARD, key="strict", loss_reasons=(" price ", "slow"), require_loss_reason=True
    )
    assert strict.loss_reasons == ("price", "slow")
    with pytest.raises(ValidationError, match="unique"):
        attrs.evolve(strict, loss_reasons=("price", " price"))
    app = SalesFlow(clock=FixedClock(START))
    app.define_process(strict)
    deal = app.create_opportunity(title="Refit", process="strict").opportunity
    assert app.mark_lost(deal.id, reason=" price ").opportunity.loss_reason == "price"


@pytest.mark.parametrize(
    "details",
    [
        {"big": 10**19},
        {"changes": "x"},
        {"changes": {"value": 5}},
        {"changes": None},
    ],
)
def test_event_details_of_the_wrong_size_or_shape_are_refused(details: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"Event\.details"):
        Event("e-1", EventKind.UPDATED, "o-1", START, None, details)
