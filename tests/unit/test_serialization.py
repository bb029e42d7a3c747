"""The converter: every stored and public value goes to JSON and back unchanged."""

from __future__ import annotations

import datetime as dt
import enum
import json
import types
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import FR, relativedelta
from hypothesis import given

from salesflow import (
    Activity,
    Event,
    EventKind,
    Individual,
    Money,
    Opportunity,
    Organization,
    Process,
    Related,
    StageKind,
    Status,
    processes,
)
from salesflow.errors import ValidationError
from salesflow.serialization import converter, decode_detail, encode_detail, from_json, to_json
from tests import strategies

BERLIN_SUMMER = dt.timezone(dt.timedelta(hours=2))
AT = dt.datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=BERLIN_SUMMER)


def assert_same(a: Any, b: Any, path: str = "$") -> None:
    """Equal, and of the same Python types all the way down (1 is not True, not 1.0,
    a tuple is not a list)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, dict | types.MappingProxyType):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dt.datetime):
        assert a == b, path
        assert a.utcoffset() == b.utcoffset(), f"{path}: the UTC offset changed"
    elif isinstance(a, Decimal):
        assert str(a) == str(b), path
    else:
        assert a == b, path


# -- round trips -------------------------------------------------------------------


@given(strategies.opportunities())
def test_opportunities_round_trip(opportunity: Opportunity) -> None:
    back = from_json(to_json(opportunity), Opportunity)
    assert back == opportunity
    assert back.created_at.utcoffset() == opportunity.created_at.utcoffset()
    assert type(back.customer) is type(opportunity.customer)


@given(strategies.activities)
def test_activities_round_trip(activity: Activity) -> None:
    assert from_json(to_json(activity), Activity) == activity


@given(strategies.processes())
def test_processes_round_trip(process: Process) -> None:
    assert from_json(to_json(process), Process) == process


@given(strategies.events())
def test_events_round_trip_to_the_same_types(event: Event) -> None:
    back = from_json(to_json(event), Event)
    assert back == event
    assert_same(event.details, back.details)


@given(strategies.detail_values)
def test_each_detail_value_round_trips_through_json(value: Any) -> None:
    assert_same(value, decode_detail(json.loads(json.dumps(encode_detail(value)))))


def test_the_builtin_processes_round_trip() -> None:
    for process in (processes.STANDARD, processes.SIMPLE):
        assert from_json(to_json(process), Process) == process


# -- shapes that front ends rely on ------------------------------------------------


def test_money_is_a_decimal_string_and_a_currency_code() -> None:
    assert converter.unstructure(Money("1250.50", "EUR")) == {
        "amount": "1250.50",
        "currency": "EUR",
    }
    assert converter.unstructure(Money(Decimal("1E-7"), "USD"))["amount"] == "0.0000001"
    assert converter.structure({"amount": "0.10", "currency": "GBP"}, Money) == Money("0.10", "GBP")


def test_datetimes_are_iso_8601_with_their_offset() -> None:
    assert converter.unstructure(AT) == "2026-03-02T09:30:15.123456+02:00"
    back = converter.structure("2026-03-02T09:30:15.123456+02:00", dt.datetime)
    assert back == AT
    assert back.utcoffset() == dt.timedelta(hours=2)


def test_naive_datetimes_are_refused_both_ways() -> None:
    naive = dt.datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        converter.unstructure(naive)
    with pytest.raises(ValidationError, match="no UTC offset"):
        from_json('"2026-03-02T09:00:00"', dt.datetime)


def test_enums_go_by_value_and_customers_carry_their_type() -> None:
    assert converter.unstructure(Status.PAUSED) == "paused"
    assert converter.unstructure(Organization("c1", "Acme")) == {
        "type": "Organization",
        "id": "c1",
        "name": "Acme",
    }
    customer = from_json('{"type": "Individual", "id": "p1", "name": "Pat"}', Individual)
    assert customer == Individual("p1", "Pat")


def test_a_customer_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected type 'Individual'"):
        from_json('{"type": "Organization", "id": "c1", "name": "Acme"}', Individual)
    with pytest.raises(ValidationError, match="Individual' or 'Organization"):
        from_json('{"type": "Robot", "id": "r", "name": "R2"}', Individual | Organization)


def test_relativedelta_keeps_only_its_set_fields() -> None:
    delta = relativedelta(months=1, days=-2, hour=9, weekday=FR(-1))
    data = converter.unstructure(delta)
    assert data == {"months": 1, "days": -2, "hour": 9, "weekday": {"day": 4, "n": -1}}
    assert converter.structure(data, relativedelta) == delta
    with pytest.raises(ValidationError, match="fortnights"):
        from_json('{"fortnights": 1}', relativedelta)


def test_timedeltas_keep_every_microsecond() -> None:
    delta = dt.timedelta(days=3, seconds=7, microseconds=11)
    assert converter.structure(converter.unstructure(delta), dt.timedelta) == delta


def test_event_details_are_tagged_so_that_tuples_stay_tuples() -> None:
    event = Event(
        "e1",
        EventKind.STAGE_CHANGED,
        "o1",
        AT,
        "ann",
        {
            "from": "lead",
            "changes": {"stage": ("lead", "won"), "value": (None, Money("5", "USD"))},
            "kinds": [StageKind.WON, 3, True, Decimal("2.50")],
            "contact": Related("contact", "p1", "Pat"),
        },
    )
    data = converter.unstructure(event)
    assert data["details"]["from"] == "lead"
    assert data["details"]["changes"]["type"] == "dict"
    assert data["details"]["changes"]["value"]["stage"] == {
        "type": "tuple",
        "value": ["lead", "won"],
    }
    assert data["details"]["kinds"]["value"][0] == {"type": "StageKind", "value": "won"}
    back = from_json(json.dumps(data), Event)
    assert_same(event.details, back.details)


def test_unsupported_detail_values_are_refused_when_written() -> None:
    class Colour(enum.Enum):
        RED = "red"

    with pytest.raises(TypeError, match="salesflow's enums"):
        encode_detail(Colour.RED)
    with pytest.raises(TypeError, match="keys must be strings"):
        encode_detail({1: "one"})
    with pytest.raises(TypeError, match="cannot store a set"):
        encode_detail({"a"})


def test_untagged_or_unknown_detail_data_is_refused_when_read() -> None:
    with pytest.raises(ValueError, match="tagged value"):
        decode_detail([1, 2])
    with pytest.raises(ValueError, match="unknown tag 'Colour'"):
        decode_detail({"type": "Colour", "value": "red"})


def test_bad_json_names_the_type_and_the_place() -> None:
    with pytest.raises(ValidationError) as caught:
        from_json('{"id": 7, "title": "Call", "due": "tomorrow"}', Activity)
    message = str(caught.value)
    assert "Activity" in message
    assert "$.id" in message
    assert "$.due" in message


def test_primitives_are_not_coerced() -> None:
    data = converter.unstructure(processes.STANDARD)
    data["stages"][0]["probability"] = "15"
    with pytest.raises(ValidationError, match=r"expected an integer.*\$\.stages\[0\]\.probability"):
        from_json(json.dumps(data), Process)
