"""Opportunities read back share one decoded copy of each stage action definition,
and a stored definition is still checked as strictly as before."""

from __future__ import annotations

import datetime as dt
import json

import cattrs
import pytest

from salesflow import (
    ActionKind,
    FixedClock,
    InMemoryRepository,
    Opportunity,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.serialization import converter, from_json, to_json

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _stored() -> list[str]:
    app = SalesFlow(InMemoryRepository(), clock=FixedClock(NOW))
    call = StageAction("call", "Call", ActionKind.CALENDAR)
    app.define_process(
        Process(
            key="p",
            name="P",
            stages=(
                Stage("lead", "Lead", 10, actions=(call, StageAction("qualify", "Qualify"))),
                Stage("won", "Won", 100, StageKind.WON),
                Stage("lost", "Lost", 0, StageKind.LOST),
            ),
        )
    )
    made = [app.create_opportunity(title=f"Deal {i}", process="p") for i in range(2)]
    return [to_json(result.opportunity) for result in made]


def test_opportunities_read_back_share_their_stage_action_definitions() -> None:
    first, second = (from_json(text, Opportunity) for text in _stored())
    assert first.actions
    assert [a.spec for a in first.actions] == [a.spec for a in second.actions]
    for mine, theirs in zip(first.actions, second.actions, strict=True):
        assert mine.spec is theirs.spec
        assert mine.id != theirs.id


def test_a_definition_read_once_is_still_checked_when_stored_differently() -> None:
    text = _stored()[0]
    from_json(text, Opportunity)  # the definitions as stored, now decoded once
    data = json.loads(text)
    assert data["actions"][0]["spec"]["required"] is True
    data["actions"][0]["spec"]["required"] = 1  # equal to True in Python, not a flag
    with pytest.raises((cattrs.errors.BaseValidationError, ValueError, TypeError)):
        converter.structure(data, Opportunity)
