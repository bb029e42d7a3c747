"""The unit of work: what one command read, and the change set of what it changed.

A command loads an opportunity and its activities, lets a
:class:`~salesflow.domain.deal.Deal` change working copies of them, and commits the
difference in one step. :class:`UnitOfWork` remembers the versions read, and
:meth:`UnitOfWork.change_set` compares the deal's records with them: each changed
record goes out one version above the one read (a new record at version 1), so that
the repository can refuse a write from a stale read.
"""

from __future__ import annotations

from collections.abc import Iterable

from salesflow.domain.activity import Activity
from salesflow.domain.deal import Deal
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.revision import reviser
from salesflow.ports import ChangeSet

__all__ = ["UnitOfWork"]

_copy_activity = reviser(Activity)


class UnitOfWork:
    """The records one command loaded, to diff the command's changes against."""

    def __init__(self, opportunity: Opportunity | None, activities: Iterable[Activity]) -> None:
        self.opportunity = opportunity
        self.activities = {a.id: a for a in activities}

    def change_set(self, deal: Deal) -> ChangeSet:
        """The records of ``deal`` that differ from what was loaded, each one version up,
        with the deal's events."""
        opportunities: tuple[Opportunity, ...] = ()
        if deal.changed_opportunity(self.opportunity):
            base = self.opportunity.version if self.opportunity is not None else 0
            opportunities = (deal.settled(base + 1),)
        activities = []
        for activity in deal.activities.values():
            loaded = self.activities.get(activity.id)
            if activity is not loaded:
                base = loaded.version if loaded is not None else 0
                activities.append(_copy_activity(activity, version=base + 1))
        return ChangeSet(
            opportunities=opportunities,
            activities=tuple(activities),
            deleted_activities=tuple(
                self.activities[i] for i in deal.deleted if i in self.activities
            ),
            events=tuple(deal.events),
        )
