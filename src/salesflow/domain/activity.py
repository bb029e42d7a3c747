"""Activities: calls, meetings, tasks, with a due time and a status (seeds 000, 003, 004)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

from salesflow.domain import checks
from salesflow.domain.revision import reviser
from salesflow.domain.values import ActivityKind, ActivityStatus, Indicator
from salesflow.errors import OutcomeRequired, ValidationError
from salesflow.messages import Message

__all__ = ["Activity", "ActivityIndicator", "indicator", "planned"]

_OPTIONAL_NAME = checks.validator(checks.optional_name)
_OPTIONAL_MOMENT = checks.validator(checks.optional(checks.aware))


def _outcome(value: object, where: str) -> object:
    return None if value is None else checks.text(value, where)


@attrs.frozen
class Activity:
    """A planned, done or cancelled piece of work, usually on an opportunity.

    ``stage`` is the stage the activity belongs to: for an activity created for a stage
    action, that action's stage (so an activity booked early for a later stage's
    action is not cancelled on the way there); for any other, the opportunity's stage
    when the activity was created. A stage change cancels (per the process' policy)
    the planned activities of the stage it leaves. ``action_id`` links it to the stage
    action that created it.
    """

    id: str = attrs.field(validator=checks.validator(checks.name))
    title: str = attrs.field(validator=checks.validator(checks.name))
    due: dt.datetime = attrs.field(validator=checks.validator(checks.aware))
    kind: ActivityKind = attrs.field(
        default=ActivityKind.CALL,
        validator=checks.validator(checks.instance_of(ActivityKind, "an ActivityKind")),
    )
    opportunity_id: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    stage: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    action_id: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    owner: str | None = attrs.field(
        default=None, converter=checks.stripped, validator=_OPTIONAL_NAME
    )
    status: ActivityStatus = attrs.field(
        default=ActivityStatus.PLANNED,
        validator=checks.validator(checks.instance_of(ActivityStatus, "an ActivityStatus")),
    )
    outcome: str | None = attrs.field(default=None, validator=checks.validator(_outcome))
    track_outcome: bool = attrs.field(default=False, validator=checks.validator(checks.flag))
    created_at: dt.datetime | None = attrs.field(default=None, validator=_OPTIONAL_MOMENT)
    done_at: dt.datetime | None = attrs.field(default=None, validator=_OPTIONAL_MOMENT)
    cancelled_at: dt.datetime | None = attrs.field(default=None, validator=_OPTIONAL_MOMENT)
    version: int = attrs.field(
        default=0, validator=checks.validator(lambda v, w: checks.integer(v, w, 0, 2**62))
    )

    @property
    def is_planned(self) -> bool:
        return self.status is ActivityStatus.PLANNED

    def _require_planned(self, doing: str) -> None:
        if not self.is_planned:
            raise ValidationError(
                f"Activity {self.id!r} is {self.status.value}; "
                f"only a planned activity can be {doing}"
            )

    def completed(
        self, outcome: str | None, *, at: dt.datetime, ask_outcome: bool = True
    ) -> Activity:
        """Done, with ``outcome``. One that tracks outcomes needs one, unless
        ``ask_outcome`` is false (completing several actions at once, seed 003)."""
        self._require_planned("completed")
        if self.track_outcome and outcome is None and ask_outcome:
            raise OutcomeRequired(
                Message(
                    "Activity {id!r} ('{title}') tracks outcomes: completing it needs an outcome",
                    id=self.id,
                    title=self.title,
                )
            )
        return attrs.evolve(self, status=ActivityStatus.DONE, outcome=outcome, done_at=at)

    def cancelled(self, *, at: dt.datetime) -> Activity:
        """Cancelled at ``at`` (checked here: the copy runs no validators)."""
        self._require_planned("cancelled")
        checks.aware(at, f"Activity {self.id!r}.cancelled_at")
        return _copy(self, status=ActivityStatus.CANCELLED, cancelled_at=at)


def planned(
    *,
    id: str,
    title: str,
    due: dt.datetime,
    kind: ActivityKind,
    opportunity_id: str | None,
    stage: str | None,
    action_id: str | None,
    owner: str | None,
    track_outcome: bool,
    created_at: dt.datetime,
) -> Activity:
    """A new planned activity of values the domain has checked already (a new id, the
    caller's arguments checked at the boundary or a stage action's, an opportunity's
    id, stage and owner, the clock's checked time), built without running the field
    validators again. Anything else builds an ``Activity``, which checks every field."""
    return _copy(
        _BLANK,
        id=id,
        title=title,
        due=due,
        kind=kind,
        opportunity_id=opportunity_id,
        stage=stage,
        action_id=action_id,
        owner=owner,
        track_outcome=track_outcome,
        created_at=created_at,
    )


@attrs.frozen
class ActivityIndicator:
    """Seed 000's activity box: its state and the number of open and overdue activities."""

    state: Indicator
    open: int
    overdue: int


def indicator(
    planned: Iterable[Activity], *, today: dt.date, timezone: dt.tzinfo
) -> ActivityIndicator:
    """Seed 000's box for the planned activities of one opportunity, by calendar day
    in ``timezone``: OVERDUE > TODAY > UPCOMING > NONE."""
    days = [a.due.astimezone(timezone).date() for a in planned if a.is_planned]
    overdue = sum(1 for d in days if d < today)
    if overdue:
        state = Indicator.OVERDUE
    elif today in days:
        state = Indicator.TODAY
    elif days:
        state = Indicator.UPCOMING
    else:
        state = Indicator.NONE
    return ActivityIndicator(state=state, open=len(days), overdue=overdue)


#: Copies an activity without running its validators (see :func:`revised`).
_copy = reviser(Activity)

#: The activity :func:`planned` copies: every field it does not set is a new planned
#: activity's default.
_BLANK = Activity(id="-", title="-", due=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
