"""Ready-made authorisation policies for ``SalesFlow(policy=...)``.

A policy answers one question before every command: may ``actor`` run ``command``
(the name of the ``SalesFlow`` method, bulk methods included) on ``opportunity``
(``None`` for commands that concern no existing opportunity: ``define_process``,
``create_opportunity``, ``create_opportunities``, and activities of no opportunity)?
A refusal raises ``PermissionDenied`` and changes nothing. Queries and reports
(``get``, ``search``, ``history``, ``pipeline`` ...) do not ask.

:class:`TeamPolicy` is the rule most sales teams expect (seed 002): owners and
managers may change a deal, anyone may claim an unowned one, only managers may
(re)assign. ``docs/permissions.md`` shows how to write one's own.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from salesflow.domain import checks
from salesflow.domain.opportunity import Opportunity
from salesflow.errors import ValidationError

__all__ = ["MANAGER_COMMANDS", "TeamPolicy"]

#: Commands only a manager may run under :class:`TeamPolicy`: giving a deal to
#: someone, and changing the workspace's processes.
MANAGER_COMMANDS = frozenset({"assign", "bulk_assign", "define_process"})


def _names(value: object, where: str) -> frozenset[str]:
    # Users' names, kept without surrounding blanks as SalesFlow keeps actors.
    return frozenset(checks.person(n, where) for n in checks.strings(value, where))


def _to_names(value: Iterable[str] | str) -> frozenset[str]:
    try:
        return _names(value, "")
    except ValidationError:  # the validator reports it, naming the field
        return value  # type: ignore[return-value]


@attrs.frozen
class TeamPolicy:
    """Owners and managers may change a deal; anyone may claim an unowned one; only
    managers may assign.

    - ``managers`` (a lone name is one) may run every command.
    - Any named actor may ``claim`` (an opportunity someone else owns is then refused
      with ``AlreadyAssigned``), create opportunities, schedule activities of no
      opportunity, and run the commands in ``anyone`` (default: ``add_note``) on any
      deal.
    - ``assign``, ``bulk_assign`` and ``define_process`` are for managers only
      (:data:`MANAGER_COMMANDS`); an owner may ``unassign`` their own deal, to give
      it back.
    - Every other command on a deal is for its owner, and for the members of its
      ``team`` unless ``team_may_change=False``. An unowned deal is changed by
      managers only: others claim it first.
    - An anonymous actor (``actor=None``) may do nothing unless ``anonymous=True``
      (a trusted background job), which lets it do everything.
    """

    managers: frozenset[str] = attrs.field(converter=_to_names, validator=checks.validator(_names))
    team_may_change: bool = attrs.field(
        default=True, kw_only=True, validator=checks.validator(checks.flag)
    )
    anyone: frozenset[str] = attrs.field(
        default=frozenset({"add_note"}),
        converter=_to_names,
        kw_only=True,
        validator=checks.validator(_names),
    )
    anonymous: bool = attrs.field(
        default=False, kw_only=True, validator=checks.validator(checks.flag)
    )

    def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool:
        if actor is None:
            return self.anonymous
        if actor in self.managers:
            return True
        if command in MANAGER_COMMANDS:
            return False
        if command == "claim" or command in self.anyone or opportunity is None:
            return True
        if opportunity.owner == actor:
            return True
        if command == "unassign":
            return False
        return self.team_may_change and actor in opportunity.team
