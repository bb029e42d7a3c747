"""``InMemoryRepository``: the default repository, for tests and short-lived apps."""

from __future__ import annotations

import datetime as dt
import threading

from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.process import Process
from salesflow.domain.values import ActivityStatus
from salesflow.errors import ConcurrencyError
from salesflow.ports import ChangeSet, Repository, sort_activities

__all__ = ["InMemoryRepository"]


class InMemoryRepository(Repository):
    """Keeps everything in dictionaries; thread-safe; nothing survives the process.

    Stored values are immutable, so reads hand out the stored objects themselves.
    """

    def __init__(self, *, workspace: str = "default") -> None:
        self.workspace = workspace
        self._lock = threading.RLock()
        self._processes: dict[str, Process] = {}
        self._opportunities: dict[str, Opportunity] = {}
        self._activities: dict[str, Activity] = {}
        self._history: dict[str, list[Event]] = {}

    def processes(self) -> list[Process]:
        with self._lock:
            return list(self._processes.values())

    def get_opportunity(self, opportunity_id: str) -> Opportunity | None:
        with self._lock:
            return self._opportunities.get(opportunity_id)

    def get_activity(self, activity_id: str) -> Activity | None:
        with self._lock:
            return self._activities.get(activity_id)

    def opportunities(self, *, process: str | None = None) -> list[Opportunity]:
        with self._lock:
            return [
                o for o in self._opportunities.values() if process is None or o.process == process
            ]

    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        with self._lock:
            found = [
                a
                for a in self._activities.values()
                if (opportunity_id is None or a.opportunity_id == opportunity_id)
                and (status is None or a.status is status)
                and (owner is None or a.owner == owner)
                and (due_from is None or a.due >= due_from)
                and (due_to is None or a.due <= due_to)
            ]
        return sort_activities(found)

    def history(self, opportunity_id: str) -> list[Event]:
        with self._lock:
            return list(self._history.get(opportunity_id, ()))

    def commit(self, changes: ChangeSet) -> None:
        with self._lock:
            for opportunity in changes.opportunities:
                _check_version(self._opportunities.get(opportunity.id), opportunity)
            for activity in changes.activities:
                _check_version(self._activities.get(activity.id), activity)
            for activity in changes.deleted_activities:
                stored = self._activities.get(activity.id)
                if stored is None or stored.version != activity.version:
                    raise ConcurrencyError(
                        f"Activity {activity.id!r} changed since it was read; "
                        "it cannot be deleted from a stale version"
                    )
            for process in changes.processes:
                self._processes[process.key] = process
            for opportunity in changes.opportunities:
                self._opportunities[opportunity.id] = opportunity
            for activity in changes.activities:
                self._activities[activity.id] = activity
            for activity in changes.deleted_activities:
                del self._activities[activity.id]
            for event in changes.events:
                if event.opportunity_id is not None:
                    self._history.setdefault(event.opportunity_id, []).append(event)


def _check_version(stored: Opportunity | Activity | None, new: Opportunity | Activity) -> None:
    expected = new.version - 1
    found = stored.version if stored is not None else 0
    if found != expected:
        kind = type(new).__name__
        raise ConcurrencyError(
            f"{kind} {new.id!r} was written at version {found} since it was read at "
            f"version {expected}"
        )
