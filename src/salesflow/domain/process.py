"""Sales processes: their stages and the actions each stage asks for (seeds 002, 003).

Each class validates every field when built, with the functions of
:mod:`salesflow.domain.checks` (see the note in :mod:`salesflow.domain.values`): a
wrong type or range for any argument raises ``ValidationError`` naming the record and
the field, e.g. ``Stage 'lead'.rot_after: expected a timedelta, got 5``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import attrs
from dateutil.relativedelta import relativedelta

from salesflow.domain import checks
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    StageKind,
    Status,
    collect,
    convert_with,
    optional_text,
)
from salesflow.errors import UnknownStage, ValidationError
from salesflow.messages import Message

__all__ = ["GATEABLE_FIELDS", "Process", "Stage", "StageAction"]

#: Opportunity fields a stage gate (``Stage.requires``) may name.
GATEABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "customer",
        "value",
        "annual_value",
        "expected_close",
        "pay_date",
        "owner",
        "team",
        "external_ref",
        "related",
        "avatar",
        "line_items",
    }
)


# -- checks and converters of the fields --------------------------------------------


def _action_kind(value: object, where: str) -> ActionKind:
    return checks.member(value, ActionKind, where)


def _activity_kind(value: object, where: str) -> ActivityKind:
    return checks.member(value, ActivityKind, where)


def _stage_kind(value: object, where: str) -> StageKind:
    return checks.member(value, StageKind, where)


def _cancel_policy(value: object, where: str) -> CancelPolicy:
    return checks.member(value, CancelPolicy, where)


def _rot_after(value: object, where: str) -> dt.timedelta | None:
    """None, or a positive ``datetime.timedelta`` (checks.py has no timedelta check)."""
    if value is None:
        return None
    if not isinstance(value, dt.timedelta):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValidationError(f"{where}: expected a timedelta, got {shown}")
    if value <= dt.timedelta(0):
        raise ValidationError(f"{where}: must be a positive timedelta, got {value!r}")
    return value


def _actions(value: object, where: str) -> tuple[StageAction, ...]:
    return checks.items(value, StageAction, where)


def _gates(value: object, where: str) -> tuple[str, ...]:
    return checks.items(value, str, where)


def _stages(value: object, where: str) -> tuple[Stage, ...]:
    return checks.items(value, Stage, where)


def _to_action_kind(value: ActionKind | str) -> ActionKind:
    return convert_with(_action_kind, value)


def _to_activity_kind(value: ActivityKind | str) -> ActivityKind:
    return convert_with(_activity_kind, value)


def _to_stage_kind(value: StageKind | str) -> StageKind:
    return convert_with(_stage_kind, value)


def _to_cancel_policy(value: CancelPolicy | str) -> CancelPolicy:
    return convert_with(_cancel_policy, value)


def _to_delta(value: relativedelta) -> relativedelta:
    return convert_with(checks.frozen_delta, value)


def _to_actions(value: Iterable[StageAction] | StageAction) -> tuple[StageAction, ...]:
    return cast("tuple[StageAction, ...]", collect(value, StageAction))


def _to_stages(value: Iterable[Stage] | Stage) -> tuple[Stage, ...]:
    return cast("tuple[Stage, ...]", collect(value, Stage))


def _to_strings(value: Iterable[str] | str) -> tuple[str, ...]:
    return cast("tuple[str, ...]", collect(value, str))


def _to_reasons(value: Iterable[str] | str) -> tuple[str, ...]:
    """Loss reasons, each without the blanks around it (as a reason given is kept);
    anything that is not a collection is left to the validator."""
    return cast("tuple[str, ...]", checks.stripped_all(_to_strings(value)))


def _repeated(keys: Iterable[str]) -> list[str]:
    return sorted(key for key, count in Counter(keys).items() if count > 1)


_name = checks.validator(checks.name)
_flag = checks.validator(checks.flag)


@attrs.frozen
class StageAction:
    """A step a stage asks for: a calendar activity, a letter, an event invitation or a
    manual checklist item (seed 003).

    ``kind`` and ``activity_kind`` may be given as their values (``"calendar"``);
    ``due_after`` is kept as an immutable ``relativedelta``.
    """

    _KEY: ClassVar[str] = "key"

    key: str = attrs.field(validator=_name)
    title: str = attrs.field(validator=_name)
    kind: ActionKind = attrs.field(
        default=ActionKind.MANUAL,
        converter=_to_action_kind,
        validator=checks.validator(_action_kind),
    )
    required: bool = attrs.field(default=True, validator=_flag, kw_only=True)
    auto_create: bool = attrs.field(default=False, validator=_flag, kw_only=True)
    activity_kind: ActivityKind = attrs.field(
        default=ActivityKind.CALL,
        converter=_to_activity_kind,
        validator=checks.validator(_activity_kind),
        kw_only=True,
    )
    due_after: relativedelta = attrs.field(
        factory=lambda: relativedelta(days=1),
        converter=_to_delta,
        validator=checks.validator(checks.frozen_delta),
        kw_only=True,
    )
    track_outcome: bool = attrs.field(default=False, validator=_flag, kw_only=True)
    template: str | None = attrs.field(
        default=None, validator=checks.validator(optional_text), kw_only=True
    )
    event: str | None = attrs.field(
        default=None, validator=checks.validator(optional_text), kw_only=True
    )

    @auto_create.validator
    def _only_calendar_actions_auto_create(self, _: attrs.Attribute[bool], value: bool) -> None:
        if value and self.kind is not ActionKind.CALENDAR:
            raise ValidationError(
                f"{checks.record_of(self)}.auto_create: only CALENDAR actions can auto_create "
                "an activity"
            )

    @event.validator
    def _an_event_action_names_its_event(self, _: attrs.Attribute[Any], value: object) -> None:
        if self.kind is ActionKind.EVENT and (value is None or not str(value).strip()):
            raise ValidationError(
                f"{checks.record_of(self)}.event: an EVENT action must name its event"
            )


@attrs.frozen
class Stage:
    """One column of the board: a name, a default win probability and its actions.

    ``actions`` and ``requires`` take any iterable (kept as a tuple) or a lone item;
    ``kind`` may be given as its value (``"won"``).
    """

    _KEY: ClassVar[str] = "key"

    key: str = attrs.field(validator=_name)
    name: str = attrs.field(validator=_name)
    probability: int = attrs.field(validator=checks.validator(checks.probability))
    kind: StageKind = attrs.field(
        default=StageKind.OPEN, converter=_to_stage_kind, validator=checks.validator(_stage_kind)
    )
    actions: tuple[StageAction, ...] = attrs.field(
        default=(), converter=_to_actions, validator=checks.validator(_actions), kw_only=True
    )
    rot_after: dt.timedelta | None = attrs.field(
        default=None, validator=checks.validator(_rot_after), kw_only=True
    )
    requires: tuple[str, ...] = attrs.field(
        default=(), converter=_to_strings, validator=checks.validator(_gates), kw_only=True
    )

    @actions.validator
    def _action_keys_are_unique(
        self, _: attrs.Attribute[Any], value: tuple[StageAction, ...]
    ) -> None:
        duplicates = _repeated(action.key for action in value)
        if duplicates:
            raise ValidationError(
                f"{checks.record_of(self)}.actions: action keys must be unique, "
                f"repeated: {duplicates}"
            )

    @requires.validator
    def _gates_name_opportunity_fields(
        self, _: attrs.Attribute[Any], value: tuple[str, ...]
    ) -> None:
        # Every gateable field is a valid name, so this also refuses blank text.
        unknown = sorted(set(value) - GATEABLE_FIELDS)
        if unknown:
            raise ValidationError(
                f"{checks.record_of(self)}.requires: names fields that opportunities do not have: "
                f"{unknown}"
            )

    @property
    def is_open(self) -> bool:
        return self.kind is StageKind.OPEN

    @property
    def status(self) -> Status:
        """The status of an opportunity in this stage (when not paused)."""
        return _STATUS_OF[self.kind]


#: The status of an opportunity in a stage of each kind.
_STATUS_OF: dict[StageKind, Status] = {kind: Status(kind.value) for kind in StageKind}


@attrs.frozen
class Process:
    """A sales process: its stages in order and the rules of moving between them.

    ``stages`` takes any iterable of stages (kept as a tuple); ``loss_reasons`` any
    iterable of names or a lone one; ``cancel_pending`` a ``CancelPolicy`` or its value.
    """

    _KEY: ClassVar[str] = "key"

    key: str = attrs.field(validator=_name)
    name: str = attrs.field(validator=_name)
    stages: tuple[Stage, ...] = attrs.field(
        converter=_to_stages, validator=checks.validator(_stages)
    )
    currency: str = attrs.field(
        default="USD", validator=checks.validator(checks.currency), kw_only=True
    )
    auto_advance: bool = attrs.field(default=False, validator=_flag, kw_only=True)
    cancel_pending: CancelPolicy = attrs.field(
        default=CancelPolicy.ASK,
        converter=_to_cancel_policy,
        validator=checks.validator(_cancel_policy),
        kw_only=True,
    )
    allow_backward: bool = attrs.field(default=True, validator=_flag, kw_only=True)
    allow_skip: bool = attrs.field(default=True, validator=_flag, kw_only=True)
    require_customer: bool = attrs.field(default=False, validator=_flag, kw_only=True)
    require_loss_reason: bool = attrs.field(default=False, validator=_flag, kw_only=True)
    loss_reasons: tuple[str, ...] = attrs.field(
        default=(), converter=_to_reasons, validator=checks.validator(checks.strings), kw_only=True
    )

    @stages.validator
    def _stages_make_a_process(self, _: attrs.Attribute[Any], value: tuple[Stage, ...]) -> None:
        where = f"{checks.record_of(self)}.stages"
        duplicates = _repeated(stage.key for stage in value)
        if duplicates:
            raise ValidationError(f"{where}: stage keys must be unique, repeated: {duplicates}")
        kinds = Counter(stage.kind for stage in value)
        if kinds[StageKind.OPEN] < 1:
            raise ValidationError(f"{where}: needs at least one OPEN stage")
        if kinds[StageKind.WON] != 1:
            raise ValidationError(
                f"{where}: needs exactly one WON stage, has {kinds[StageKind.WON]}"
            )
        if kinds[StageKind.LOST] < 1:
            raise ValidationError(f"{where}: needs at least one LOST stage")
        for stage in value:
            if stage.kind is StageKind.WON and stage.probability != 100:
                raise ValidationError(f"{where}: WON stage {stage.key!r} must have probability 100")
            if stage.kind is StageKind.LOST and stage.probability != 0:
                raise ValidationError(f"{where}: LOST stage {stage.key!r} must have probability 0")

    @loss_reasons.validator
    def _loss_reasons_are_unique(self, _: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        duplicates = _repeated(value)
        if duplicates:
            raise ValidationError(
                f"{checks.record_of(self)}.loss_reasons: must be unique, repeated: {duplicates}"
            )

    def stage(self, key: str) -> Stage:
        """The stage with this key; ``UnknownStage`` if the process has none."""
        for stage in self.stages:
            if stage.key == key:
                return stage
        raise UnknownStage(
            Message(
                "Process {process!r} has no stage {stage!r}; its stages are {stages}",
                process=self.key,
                stage=key,
                stages=[s.key for s in self.stages],
            )
        )

    def index(self, key: str) -> int:
        return self.stages.index(self.stage(key))

    @property
    def first_stage(self) -> Stage:
        """Where new opportunities start by default: the first OPEN stage."""
        return next(s for s in self.stages if s.is_open)

    @property
    def won_stage(self) -> Stage:
        return next(s for s in self.stages if s.kind is StageKind.WON)

    @property
    def lost_stage(self) -> Stage:
        """The first LOST stage, used by ``mark_lost``."""
        return next(s for s in self.stages if s.kind is StageKind.LOST)

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.is_open)

    def next_stage(self, key: str) -> Stage | None:
        """The stage after ``key`` in process order, or None after the last one."""
        i = self.index(key)
        return self.stages[i + 1] if i + 1 < len(self.stages) else None
