"""What happened to an opportunity: the history every command records."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Event", "EventKind"]


class EventKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    PROBABILITY_SET = "probability_set"
    STAGE_CHANGED = "stage_changed"
    REOPENED = "reopened"
    PAUSED = "paused"
    RESUMED = "resumed"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    CLAIMED = "claimed"
    ACTION_ADDED = "action_added"
    ACTION_REMOVED = "action_removed"
    ACTION_PERFORMED = "action_performed"
    ACTION_COMPLETED = "action_completed"
    ACTIVITY_SCHEDULED = "activity_scheduled"
    ACTIVITY_COMPLETED = "activity_completed"
    ACTIVITY_CANCELLED = "activity_cancelled"
    ACTIVITY_DELETED = "activity_deleted"
    NOTE_ADDED = "note_added"
    LINE_ITEM_ADDED = "line_item_added"
    LINE_ITEM_REMOVED = "line_item_removed"
    INVOICED = "invoiced"
    TICKET_LINKED = "ticket_linked"


@attrs.frozen
class Event:
    """One entry of an opportunity's history.

    ``details`` holds what the event concerns. Every event that changed fields of the
    opportunity has ``details["changes"]``: ``{field: (old, new)}``; a ``CREATED``
    event lists every field with ``None`` as the old value, so that folding the
    changes of the events up to a moment rebuilds the opportunity as it stood then.
    ``STAGE_CHANGED`` also has ``"from"`` and ``"to"`` (stage keys); activity and
    action events have ``"activity_id"`` / ``"action_id"``.
    """

    id: str
    kind: EventKind
    opportunity_id: str | None
    at: dt.datetime
    actor: str | None
    details: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def changes(self) -> Mapping[str, tuple[Any, Any]]:
        """The fields this event changed, each as ``(old, new)``."""
        changes: Mapping[str, tuple[Any, Any]] = self.details.get("changes", {})
        return changes
