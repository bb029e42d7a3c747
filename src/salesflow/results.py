"""What commands hand back: a :class:`Result` per command, a :class:`BulkResult` per
bulk command. Both are frozen, and their mappings read-only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.values import ReadOnlyMapping
from salesflow.errors import NotFound, SalesflowError

__all__ = ["BulkResult", "Result"]


@attrs.frozen
class Result:
    """What a command did: the opportunity after it, the events, and what to show.

    ``notices`` are short sentences a front end can show as the confirmation of the
    command ("Moved to Proposal."); ``created`` and ``cancelled`` are the activities the
    command created and cancelled.
    """

    _opportunity: Opportunity | None = attrs.field(alias="opportunity")
    events: tuple[Event, ...] = ()
    notices: tuple[str, ...] = ()
    created: tuple[Activity, ...] = ()
    cancelled: tuple[Activity, ...] = ()

    @property
    def opportunity(self) -> Opportunity:
        """The opportunity as the command left it.

        Raises ``NotFound`` for a command on an activity that belongs to no opportunity.
        """
        if self._opportunity is None:
            raise NotFound("This command concerned an activity that has no opportunity")
        return self._opportunity


def _read_only(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return ReadOnlyMapping(value)


@attrs.frozen
class BulkResult:
    """Each item of a bulk command on its own: the ids that succeeded, the errors
    (``failed``: id -> error; for ``create_opportunities``, the item's position ->
    error) and each success's ``Result`` (``results``)."""

    succeeded: tuple[str, ...]
    failed: Mapping[Any, SalesflowError] = attrs.field(converter=_read_only)
    results: Mapping[str, Result] = attrs.field(factory=dict, converter=_read_only)
