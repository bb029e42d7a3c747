"""The JSON text a repository stores for a record: the writers of ``dump_record`` give
byte for byte what the converter and ``json.dumps`` give, for every record, and refuse
what they refuse."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow import Activity, Event, EventKind, Money, Opportunity, Organization, Status
from salesflow.domain.events import Details, recorded
from salesflow.domain.revision import revised
from salesflow.errors import StorageError
from salesflow.serialization import dump_generic, dump_record, dump_text, load_event, load_record
from tests import strategies

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def assert_written_alike(record: Opportunity | Activity | Event) -> str:
    text = dump_record(record, "record")
    assert text == dump_generic(record, "record")
    assert text == dump_text(record)
    return text


@given(strategies.opportunities())
def test_opportunities_are_written_as_the_converter_writes_them(opportunity: Opportunity) -> None:
    text = assert_written_alike(opportunity)
    assert load_record(text, Opportunity, "record") == opportunity


@given(strategies.activities)
def test_activities_are_written_as_the_converter_writes_them(activity: Activity) -> None:
    text = assert_written_alike(activity)
    assert load_record(text, Activity, "record") == activity


@given(strategies.events())
def test_events_are_written_as_the_converter_writes_them(event: Event) -> None:
    text = assert_written_alike(event)
    assert "position" not in json.loads(text)  # the row's column holds it
    assert load_event(text, 1, "record") == event


@given(strategies.opportunities(), st.none() | strategies.opportunities(), strategies.ids)
def test_events_of_an_opportunitys_changes_are_written_alike(
    new: Opportunity, old: Opportunity | None, actor: str
) -> None:
    """The changes the domain records (a creation lists every tracked field)."""
    changes = new.changes_from(old)
    for event in (
        recorded(
            id="e-1",
            kind=EventKind.CREATED if old is None else EventKind.UPDATED,
            opportunity_id=new.id,
            at=AT,
            actor=actor.strip(),
            details={"stage": new.stage, "changes": changes},
        ),
        Event("e-2", EventKind.UPDATED, new.id, AT, None, {"changes": changes, "n": [1, (2,)]}),
    ):
        text = assert_written_alike(event)
        assert load_event(text, 1, "record") == event


@given(strategies.opportunities(id="o-1"))
def test_shared_stage_action_definitions_are_written_each_time_as_they_are(
    opportunity: Opportunity,
) -> None:
    """A definition's text is kept by identity: two opportunities holding the same
    definitions, and one holding equal copies, are all written as the converter
    writes them."""
    copy = revised(opportunity, actions=tuple(revised(a) for a in opportunity.actions))
    for record in (opportunity, revised(opportunity, id="o-2"), copy):
        assert_written_alike(record)


def test_values_of_another_type_than_their_field_declares_are_written_as_the_converter_does() -> (
    None
):
    """A record copied with ``revised`` holds what it is given: the writer hands a
    value of an unexpected type to the converter, so the text stays the same."""
    opportunity = Opportunity(
        id="o-1",
        process="standard",
        stage="lead",
        stage_probability=10,
        value=Money("1.50", "EUR"),
        created_at=AT,
        stage_entered_at=AT,
        customer=Organization("c-1", "Acme"),
    )
    odd: dict[str, Any] = {
        "title": 7,
        "stage_probability": True,
        "value_from_billables": 1,
        "team": ["ann", "bob"],
        "expected_close": AT,
        "annual_value": Money("2", "EUR"),
        "related": [],
    }
    for name, value in odd.items():
        assert_written_alike(revised(opportunity, **{name: value}))
    event = recorded(
        id="e-1",
        kind=EventKind.UPDATED,
        opportunity_id="o-1",
        at=AT,
        actor=None,
        details={"status": Status.WON, "when": AT.date(), "money": Money("3", "USD")},
    )
    assert_written_alike(event)
    assert_written_alike(revised(event, details={"plain": {"a": [1, 2.5]}}))


def test_what_the_converter_refuses_is_refused_alike() -> None:
    opportunity = Opportunity(
        id="o-1",
        process="standard",
        stage="lead",
        stage_probability=10,
        value=Money("1.50", "EUR"),
        created_at=AT,
        stage_entered_at=AT,
        title="Deal",
    )
    naive = revised(opportunity, created_at=dt.datetime(2026, 1, 1))  # noqa: DTZ001
    event = revised(
        recorded(
            id="e-1", kind=EventKind.UPDATED, opportunity_id="o-1", at=AT, actor=None, details={}
        ),
        details=Details.checked({"bad": object()}),
    )
    keyed = revised(event, details={1: "one"})
    for record in (naive, event, keyed):
        with pytest.raises(StorageError, match="record cannot be stored") as fast:
            dump_record(record, "record")
        with pytest.raises(StorageError) as generic:
            dump_generic(record, "record")
        assert str(fast.value) == str(generic.value)
