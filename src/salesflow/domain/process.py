"""Sales processes: their stages and the actions each stage asks for (seeds 002, 003)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

import attrs
from dateutil.relativedelta import relativedelta

from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    CancelPolicy,
    StageKind,
    Status,
    check_currency,
)
from salesflow.errors import UnknownStage, ValidationError

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


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _actions(value: Iterable[StageAction]) -> tuple[StageAction, ...]:
    return tuple(value)


def _stages(value: Iterable[Stage]) -> tuple[Stage, ...]:
    return tuple(value)


def _blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()


@attrs.frozen
class StageAction:
    """A step a stage asks for: a calendar activity, a letter, an event invitation or a
    manual checklist item (seed 003)."""

    key: str
    title: str
    kind: ActionKind = ActionKind.MANUAL
    required: bool = attrs.field(default=True, kw_only=True)
    auto_create: bool = attrs.field(default=False, kw_only=True)
    activity_kind: ActivityKind = attrs.field(default=ActivityKind.CALL, kw_only=True)
    due_after: relativedelta = attrs.field(factory=lambda: relativedelta(days=1), kw_only=True)
    track_outcome: bool = attrs.field(default=False, kw_only=True)
    template: str | None = attrs.field(default=None, kw_only=True)
    event: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        record = f"StageAction {self.key!r}"
        if _blank(self.key):
            raise ValidationError("StageAction.key: must not be blank")
        if _blank(self.title):
            raise ValidationError(f"{record}: title must not be blank")
        for name, enum_type in (("kind", ActionKind), ("activity_kind", ActivityKind)):
            if not isinstance(getattr(self, name), enum_type):
                raise ValidationError(f"{record}: {name} must be an {enum_type.__name__}")
        if not isinstance(self.due_after, relativedelta):
            raise ValidationError(f"{record}: due_after must be a dateutil relativedelta")
        if self.auto_create and self.kind is not ActionKind.CALENDAR:
            raise ValidationError(f"{record}: only CALENDAR actions can auto_create an activity")
        if self.kind is ActionKind.EVENT and _blank(self.event):
            raise ValidationError(f"{record}: an EVENT action must name its event")


@attrs.frozen
class Stage:
    """One column of the board: a name, a default win probability and its actions."""

    key: str
    name: str
    probability: int
    kind: StageKind = StageKind.OPEN
    actions: tuple[StageAction, ...] = attrs.field(default=(), kw_only=True, converter=_actions)
    rot_after: dt.timedelta | None = attrs.field(default=None, kw_only=True)
    requires: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_strings)

    def __attrs_post_init__(self) -> None:
        record = f"Stage {self.key!r}"
        if _blank(self.key):
            raise ValidationError("Stage.key: must not be blank")
        if _blank(self.name):
            raise ValidationError(f"{record}: name must not be blank")
        if not isinstance(self.kind, StageKind):
            raise ValidationError(f"{record}: kind must be a StageKind")
        if (
            isinstance(self.probability, bool)
            or not isinstance(self.probability, int)
            or not 0 <= self.probability <= 100
        ):
            raise ValidationError(
                f"{record}: probability must be an integer 0..100, got {self.probability!r}"
            )
        if self.rot_after is not None and self.rot_after <= dt.timedelta(0):
            raise ValidationError(f"{record}: rot_after must be positive")
        for action in self.actions:
            if not isinstance(action, StageAction):
                raise ValidationError(f"{record}: actions must be StageAction values")
        duplicates = sorted(k for k, n in Counter(a.key for a in self.actions).items() if n > 1)
        if duplicates:
            raise ValidationError(f"{record}: action keys must be unique, repeated: {duplicates}")
        unknown = sorted(set(self.requires) - GATEABLE_FIELDS)
        if unknown:
            raise ValidationError(
                f"{record}: requires names fields that opportunities do not have: {unknown}"
            )

    @property
    def is_open(self) -> bool:
        return self.kind is StageKind.OPEN

    @property
    def status(self) -> Status:
        """The status of an opportunity in this stage (when not paused)."""
        return Status(self.kind.value)


@attrs.frozen
class Process:
    """A sales process: its stages in order and the rules of moving between them."""

    key: str
    name: str
    stages: tuple[Stage, ...] = attrs.field(converter=_stages)
    currency: str = attrs.field(default="USD", kw_only=True)
    auto_advance: bool = attrs.field(default=False, kw_only=True)
    cancel_pending: CancelPolicy = attrs.field(default=CancelPolicy.ASK, kw_only=True)
    allow_backward: bool = attrs.field(default=True, kw_only=True)
    allow_skip: bool = attrs.field(default=True, kw_only=True)
    require_customer: bool = attrs.field(default=False, kw_only=True)
    require_loss_reason: bool = attrs.field(default=False, kw_only=True)
    loss_reasons: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_strings)

    def __attrs_post_init__(self) -> None:
        record = f"Process {self.key!r}"
        if _blank(self.key):
            raise ValidationError("Process.key: must not be blank")
        if _blank(self.name):
            raise ValidationError(f"{record}: name must not be blank")
        if not isinstance(self.cancel_pending, CancelPolicy):
            raise ValidationError(f"{record}: cancel_pending must be a CancelPolicy")
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise ValidationError(f"{record}: stages must be Stage values")
        duplicates = sorted(k for k, n in Counter(s.key for s in self.stages).items() if n > 1)
        if duplicates:
            raise ValidationError(f"{record}: stage keys must be unique, repeated: {duplicates}")
        kinds = Counter(s.kind for s in self.stages)
        if kinds[StageKind.OPEN] < 1:
            raise ValidationError(f"{record}: needs at least one OPEN stage")
        if kinds[StageKind.WON] != 1:
            raise ValidationError(
                f"{record}: needs exactly one WON stage, has {kinds[StageKind.WON]}"
            )
        if kinds[StageKind.LOST] < 1:
            raise ValidationError(f"{record}: needs at least one LOST stage")
        for stage in self.stages:
            if stage.kind is StageKind.WON and stage.probability != 100:
                raise ValidationError(
                    f"{record}: WON stage {stage.key!r} must have probability 100"
                )
            if stage.kind is StageKind.LOST and stage.probability != 0:
                raise ValidationError(f"{record}: LOST stage {stage.key!r} must have probability 0")
        check_currency(self.currency, f"{record}.currency")
        if len(set(self.loss_reasons)) != len(self.loss_reasons) or any(
            _blank(r) for r in self.loss_reasons
        ):
            raise ValidationError(f"{record}: loss_reasons must be unique and not blank")

    def stage(self, key: str) -> Stage:
        """The stage with this key; ``UnknownStage`` if the process has none."""
        for stage in self.stages:
            if stage.key == key:
                return stage
        raise UnknownStage(
            f"Process {self.key!r} has no stage {key!r}; "
            f"its stages are {[s.key for s in self.stages]}"
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
