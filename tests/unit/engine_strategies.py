"""Hypothesis strategies for valid sales processes, shared by the property tests of
processes and the state machine of the engine."""

from __future__ import annotations

from typing import Any

import attrs
from dateutil.relativedelta import relativedelta
from hypothesis import strategies as st

from salesflow import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    Process,
    Stage,
    StageAction,
    StageKind,
)

__all__ = [
    "CURRENCIES",
    "GATES",
    "ProcessParts",
    "keys",
    "process_parts",
    "processes",
    "stage_actions",
]

#: Currencies the generated processes use: two with cents, one without minor unit.
CURRENCIES = ("USD", "EUR", "JPY")

#: Opportunity fields a generated stage gate may name.
GATES = ("customer", "expected_close", "owner", "description")

keys = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
titles = st.sampled_from(["Call the customer", "Send the offer", "Demo", "Check budget"])


@st.composite
def stage_actions(draw: st.DrawFn, key: str) -> StageAction:
    """One valid stage action with the given key, of any kind."""
    kind = draw(st.sampled_from(ActionKind))
    options: dict[str, Any] = {"required": draw(st.booleans())}
    if kind is ActionKind.CALENDAR:
        options["auto_create"] = draw(st.booleans())
        options["track_outcome"] = draw(st.booleans())
        options["activity_kind"] = draw(st.sampled_from(ActivityKind))
        options["due_after"] = relativedelta(
            days=draw(st.integers(0, 5)), hours=draw(st.integers(0, 23))
        )
    elif kind is ActionKind.LETTER:
        options["template"] = draw(st.sampled_from([None, "offer", "welcome"]))
    elif kind is ActionKind.EVENT:
        options["event"] = draw(st.sampled_from(["webinar", "open-day"]))
    return StageAction(key, draw(titles), kind, **options)


@st.composite
def actions_of_a_stage(draw: st.DrawFn, max_size: int = 3) -> tuple[StageAction, ...]:
    action_keys = draw(st.lists(keys, unique=True, max_size=max_size))
    return tuple(draw(stage_actions(key)) for key in action_keys)


@attrs.frozen
class ProcessParts:
    """Everything needed to build a valid ``Process``; tests break one part at a time."""

    key: str
    name: str
    stages: tuple[Stage, ...]
    options: dict[str, Any]

    def build(self, **changes: Any) -> Process:
        parts = attrs.evolve(self, **changes)
        return Process(parts.key, parts.name, parts.stages, **parts.options)

    def of_kind(self, kind: StageKind) -> list[Stage]:
        return [s for s in self.stages if s.kind is kind]


@st.composite
def process_parts(draw: st.DrawFn, *, gates: bool = False, max_open: int = 4) -> ProcessParts:
    """The parts of a valid process: 1..``max_open`` OPEN stages with any probability,
    one WON (100), one or two LOST (0), in any order; actions with unique keys per
    stage; any flags. With ``gates``, some stages require opportunity fields."""
    n_open = draw(st.integers(1, max_open))
    n_lost = draw(st.integers(1, 2))
    kinds = [StageKind.OPEN] * n_open + [StageKind.WON] + [StageKind.LOST] * n_lost
    if draw(st.booleans()):
        kinds = list(draw(st.permutations(kinds)))
    stage_keys = draw(st.lists(keys, unique=True, min_size=len(kinds), max_size=len(kinds)))
    stages = []
    for key, kind in zip(stage_keys, kinds, strict=True):
        if kind is StageKind.OPEN:
            probability = draw(st.integers(0, 100))
        else:
            probability = 100 if kind is StageKind.WON else 0
        requires: tuple[str, ...] = ()
        if gates and draw(st.integers(0, 3)) == 0:
            requires = tuple(draw(st.lists(st.sampled_from(GATES), min_size=1, unique=True)))
        stages.append(
            Stage(
                key,
                key.upper(),
                probability,
                kind,
                actions=draw(actions_of_a_stage()),
                requires=requires,
            )
        )
    require_loss_reason = draw(st.booleans())
    options: dict[str, Any] = {
        "currency": draw(st.sampled_from(CURRENCIES)),
        "auto_advance": draw(st.booleans()),
        "cancel_pending": draw(st.sampled_from(CancelPolicy)),
        "allow_backward": draw(st.booleans()),
        "allow_skip": draw(st.booleans()),
        "require_loss_reason": require_loss_reason,
        "loss_reasons": draw(st.sampled_from([(), ("price", "timing")])),
    }
    return ProcessParts(
        draw(keys), draw(st.sampled_from(["Sales", "Renewals"])), tuple(stages), options
    )


def processes(*, gates: bool = False, max_open: int = 4) -> st.SearchStrategy[Process]:
    """Valid processes (see :func:`process_parts`)."""
    return process_parts(gates=gates, max_open=max_open).map(lambda parts: parts.build())
