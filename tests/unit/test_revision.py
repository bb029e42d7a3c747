"""Internal copies made without validators are the copies ``attrs.evolve`` makes, and
every record a command hands out still passes its own validators."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from salesflow import (
    ActionKind,
    Activity,
    FixedClock,
    InMemoryRepository,
    Note,
    Opportunity,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.domain.events import Event, EventKind, recorded
from salesflow.domain.revision import revised
from salesflow.errors import ValidationError

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _process() -> Process:
    call = StageAction("call", "Call", ActionKind.CALENDAR, auto_create=True)
    return Process(
        key="p",
        name="P",
        stages=(
            Stage("lead", "Lead", 10, actions=(call, StageAction("qualify", "Qualify"))),
            Stage(
                "meet",
                "Meeting",
                50,
                actions=(StageAction("meet", "Meet", ActionKind.CALENDAR, auto_create=True),),
            ),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
    )


def test_revised_is_the_copy_evolve_makes() -> None:
    note = Note(text="first", author="ann", at=NOW)
    changes: dict[str, Any] = {"text": "second", "at": NOW + dt.timedelta(hours=1)}
    copy = revised(note, **changes)
    assert copy == attrs.evolve(note, **changes)
    assert copy is not note
    assert note.text == "first"
    assert revised(note) == note


def test_revised_refuses_a_field_the_record_does_not_have() -> None:
    note = Note(text="first", author="ann", at=NOW)
    with pytest.raises(TypeError):
        revised(note, txt="second")


def test_revised_copies_stay_frozen() -> None:
    note = revised(Note(text="first", author="ann", at=NOW), text="second")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        note.text = "third"  # type: ignore[misc]


def test_records_made_by_commands_pass_their_validators() -> None:
    repository = InMemoryRepository()
    app = SalesFlow(repository, clock=FixedClock(NOW))
    app.define_process(_process())
    created = app.create_opportunity(title="Deal", process="p", owner="ann")
    deal = created.opportunity.id
    app.change_stage(deal, "meet", cancel_pending=True)
    app.change_stage(deal, "lead", cancel_pending=True)
    app.pause(deal)
    app.resume(deal)
    action = next(a for a in app.get(deal).actions if a.key == "qualify")
    app.perform_action(deal, action.id)
    app.mark_lost(deal, reason="price", cancel_pending=True)
    records: list[Opportunity | Activity] = [
        *repository.opportunities(),
        *repository.activities(opportunity_id=deal),
    ]
    assert len(records) > 2
    for record in records:
        attrs.validate(record)  # raises if a copy holds what its validators refuse
    stored = repository.get_opportunity(deal)
    assert stored is not None
    assert stored.version > 1


def test_a_recorded_event_is_the_event_its_constructor_builds() -> None:
    details = {"from": "lead", "to": "won", "changes": {"stage": ("lead", "won")}}
    fields: dict[str, Any] = {
        "id": "e-1",
        "kind": EventKind.STAGE_CHANGED,
        "opportunity_id": "o-1",
        "at": NOW,
        "actor": "ann",
    }
    event = recorded(**fields, details=details)
    assert event == Event(**fields, details=details)
    assert event.position == 0
    with pytest.raises(TypeError):
        event.details["to"] = "lost"  # type: ignore[index]
    numbered = event.numbered(7)
    assert numbered.position == 7
    assert numbered == event
    assert numbered.details is event.details
    with pytest.raises(ValidationError):
        event.numbered(-1)
