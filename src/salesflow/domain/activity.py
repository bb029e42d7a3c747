"""Activities: calls, meetings, tasks, with a due time and a status (seeds 000, 003, 004)."""

from __future__ import annotations

import datetime as dt

import attrs

from salesflow.domain.values import ActivityKind, ActivityStatus

__all__ = ["Activity"]


@attrs.frozen
class Activity:
    """A planned, done or cancelled piece of work, usually on an opportunity.

    ``stage`` is the opportunity's stage when the activity was created: a stage change
    cancels (per the process' policy) the planned activities of the stage it leaves.
    ``action_id`` links it to the stage action that created it.
    """

    id: str
    title: str
    due: dt.datetime
    kind: ActivityKind = ActivityKind.CALL
    opportunity_id: str | None = None
    stage: str | None = None
    action_id: str | None = None
    owner: str | None = None
    status: ActivityStatus = ActivityStatus.PLANNED
    outcome: str | None = None
    track_outcome: bool = False
    created_at: dt.datetime | None = None
    done_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    version: int = 0

    @property
    def is_planned(self) -> bool:
        return self.status is ActivityStatus.PLANNED
