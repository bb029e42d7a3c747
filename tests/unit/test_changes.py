"""An event's changes, held compactly, read and are stored like a plain mapping."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal

import pytest
from moneyed import Money

from salesflow import Event, FixedClock, InMemoryRepository, SalesFlow, processes
from salesflow.domain.events import Changes, Details
from salesflow.domain.opportunity import TRACKED_FIELDS
from salesflow.errors import ValidationError
from salesflow.serialization import decode_detail, encode_detail, from_json, to_json

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_changes_read_like_the_mapping_they_stand_for() -> None:
    changes = Changes(("stage", "owner"), ("lead", None), ("won", "ann"))
    plain = {"stage": ("lead", "won"), "owner": (None, "ann")}
    assert changes == plain
    assert plain == changes
    assert dict(changes) == plain
    assert list(changes) == ["stage", "owner"]
    assert changes["owner"] == (None, "ann")
    assert "stage" in changes
    assert "title" not in changes
    assert changes.get("title") is None
    with pytest.raises(KeyError):
        changes["title"]


def test_a_creation_has_none_for_every_old_value() -> None:
    created = Changes(("title", "value"), None, ("Deal", Money(Decimal(5), "EUR")))
    assert created == {"title": (None, "Deal"), "value": (None, Money(Decimal(5), "EUR"))}
    assert created == Changes(("title", "value"), (None, None), created_values(created))


def created_values(changes: Changes) -> tuple[object, ...]:
    return tuple(new for _, new in changes.values())


def test_changes_cannot_be_changed() -> None:
    changes = Changes(("stage",), ("lead",), ("won",))
    with pytest.raises(AttributeError):
        changes._new = ("lost",)
    with pytest.raises(TypeError):
        changes["stage"] = ("lead", "lost")  # type: ignore[index]
    # Read-only all the way down, so hashable: equal changes hash alike.
    assert hash(changes) == hash(Changes(("stage",), ("lead",), ("won",)))
    assert len({changes, Changes(("stage",), ("lead",), ("won",))}) == 1


def test_changes_need_one_old_and_one_new_value_per_name() -> None:
    with pytest.raises(ValidationError, match="one old and one new value"):
        Changes(("stage", "owner"), None, ("won",))


def test_changes_are_stored_as_the_mapping_of_pairs_they_stand_for() -> None:
    changes = Changes(("stage", "team"), ("lead", ()), ("won", ("ann", "bob")))
    plain = {"stage": ("lead", "won"), "team": ((), ("ann", "bob"))}
    assert encode_detail(changes) == encode_detail(plain)
    assert decode_detail(encode_detail(changes)) == plain
    assert pickle.loads(pickle.dumps(changes)) == changes


def test_history_records_every_tracked_field_at_creation_and_only_what_changed_later() -> None:
    app = SalesFlow(InMemoryRepository(), clock=FixedClock(NOW))
    app.define_process(processes.STANDARD)
    deal = app.create_opportunity(title="Deal", process="standard").opportunity
    app.assign(deal.id, "ann")
    created, assigned = app.history(deal.id)[:2]
    assert list(created.changes) == list(TRACKED_FIELDS)
    assert all(old is None for old, _ in created.changes.values())
    assert created.changes["title"] == (None, "Deal")
    assert dict(assigned.changes) == {"owner": (None, "ann")}


def test_event_details_are_a_compact_read_only_mapping() -> None:
    details = Details({"from": "lead", "to": "won", "team": ["ann", "bob"]})
    assert details == {"from": "lead", "to": "won", "team": ("ann", "bob")}
    assert details["team"] == ("ann", "bob")  # a list is frozen into a tuple
    assert list(details) == ["from", "to", "team"]
    assert "to" in details
    assert "stage" not in details
    with pytest.raises(KeyError):
        details["stage"]
    with pytest.raises(AttributeError):
        details._values = ()
    with pytest.raises(TypeError):
        details["to"] = "lost"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(details)) == details
    assert encode_detail(details) == encode_detail(dict(details))


def test_events_recorded_by_commands_equal_the_events_read_back() -> None:
    app = SalesFlow(InMemoryRepository(), clock=FixedClock(NOW))
    app.define_process(processes.STANDARD)
    deal = app.create_opportunity(title="Deal", process="standard").opportunity
    app.assign(deal.id, "ann")
    for event in app.history(deal.id):
        assert type(event.details) is Details
        read_back = from_json(to_json(event), Event)
        assert read_back == event
        assert event == read_back


def test_details_and_changes_compare_in_any_key_order_as_dicts_do() -> None:
    assert Details({"from": "a", "to": "b"}) == Details({"to": "b", "from": "a"})
    assert Details({"from": "a", "to": "b"}) != Details({"to": "a", "from": "b"})
    assert Changes(("stage", "owner"), ("a", None), ("b", "ann")) == Changes(
        ("owner", "stage"), (None, "a"), ("ann", "b")
    )
    assert Changes(("stage",), None, ("b",)) != Changes(("stage",), ("a",), ("b",))
