"""The opportunity aggregate and its own copies of its process' stage actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
from moneyed import Money

from salesflow.domain.process import StageAction
from salesflow.domain.values import (
    ActionKind,
    Customer,
    Individual,
    LineItem,
    Note,
    Organization,
    Related,
    Status,
    check_money,
    same_currency,
)
from salesflow.errors import ValidationError

__all__ = ["TRACKED_FIELDS", "Opportunity", "OpportunityAction"]


@attrs.frozen
class OpportunityAction:
    """A stage action as this one opportunity holds it (seed 003).

    The process defines the actions; each opportunity gets its own copy of every
    stage's actions when it is created, and may add, change or remove them alone.
    ``activity_id`` names the planned or done activity linked to a CALENDAR action;
    cancelling or deleting that activity unlinks it, so the action can be performed
    again.
    """

    id: str
    stage: str
    spec: StageAction
    completed_at: dt.datetime | None = None
    activity_id: str | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def kind(self) -> ActionKind:
        return self.spec.kind

    @property
    def required(self) -> bool:
        return self.spec.required

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


#: The fields whose old and new values every event records in ``details["changes"]``.
TRACKED_FIELDS: tuple[str, ...] = (
    "title",
    "description",
    "customer",
    "related",
    "value",
    "annual_value",
    "probability",
    "probability_override",
    "stage",
    "status",
    "expected_close",
    "pay_date",
    "closed_on",
    "owner",
    "team",
    "external_ref",
    "avatar",
    "loss_reason",
)


@attrs.frozen
class Opportunity:
    """A deal moving through a sales process. Immutable: commands return new versions."""

    id: str
    process: str
    stage: str
    stage_probability: int
    value: Money
    created_at: dt.datetime
    stage_entered_at: dt.datetime
    title: str | None = None
    description: str = ""
    customer: Customer | None = None
    related: tuple[Related, ...] = ()
    annual_value: Money | None = None
    probability_override: int | None = None
    status: Status = Status.OPEN
    expected_close: dt.date | None = None
    pay_date: dt.date | None = None
    closed_on: dt.date | None = None
    owner: str | None = None
    team: tuple[str, ...] = ()
    external_ref: str | None = None
    avatar: str | None = None
    loss_reason: str | None = None
    notes: tuple[Note, ...] = ()
    line_items: tuple[LineItem, ...] = ()
    actions: tuple[OpportunityAction, ...] = ()
    version: int = 0

    @property
    def probability(self) -> int:
        """The probability in effect: the override if one is set, else the stage's."""
        if self.probability_override is not None:
            return self.probability_override
        return self.stage_probability

    @property
    def display_title(self) -> str:
        """The title, or the organisation's name when there is no title (seed 000)."""
        if self.title:
            return self.title
        if isinstance(self.customer, Organization):
            return self.customer.name
        return ""

    @property
    def currency(self) -> str:
        return str(self.value.currency.code)

    @property
    def billables_total(self) -> Money:
        """The sum of the line items, in the opportunity's currency (exact)."""
        total = Money(0, self.value.currency)
        for line in self.line_items:
            total = total + line.total
        return total

    @property
    def is_closed(self) -> bool:
        return self.status in (Status.WON, Status.LOST)

    def actions_of(self, stage: str) -> tuple[OpportunityAction, ...]:
        return tuple(a for a in self.actions if a.stage == stage)

    def action(self, action_id: str) -> OpportunityAction | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def with_action(self, action: OpportunityAction) -> Opportunity:
        """A copy with ``action`` replacing the action of the same id."""
        return attrs.evolve(
            self, actions=tuple(action if a.id == action.id else a for a in self.actions)
        )

    def tracked(self) -> dict[str, Any]:
        """The values of the tracked fields, as history records them."""
        return {name: getattr(self, name) for name in TRACKED_FIELDS}

    def changes_from(self, before: Opportunity | None) -> dict[str, tuple[Any, Any]]:
        """The tracked fields that differ from ``before`` (all of them when None)."""
        old: Mapping[str, Any] = before.tracked() if before is not None else {}
        return {
            name: (old.get(name), new)
            for name, new in self.tracked().items()
            if before is None or old[name] != new
        }


def is_empty(value: object) -> bool:
    """Whether a field counts as unset for a stage gate."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, tuple):
        return not value
    if isinstance(value, Money):
        return value.amount == 0
    return False


#: The fields ``SalesFlow.update`` may change.
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "customer",
        "value",
        "annual_value",
        "expected_close",
        "pay_date",
        "external_ref",
        "related",
        "team",
        "avatar",
    }
)


def _optional_text(value: object, record: str, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{record}.{name}: expected text, got {value!r}")
    return value


def clean_fields(fields: Mapping[str, Any], record: str) -> dict[str, Any]:
    """Check and normalise opportunity field values given by a caller.

    Raises ``ValidationError`` naming the record and the field. A title that is empty
    or only blanks becomes None (no title).
    """
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        where = f"{record}.{name}"
        if name == "title":
            text = _optional_text(value, record, name)
            clean[name] = text.strip() if text and text.strip() else None
        elif name == "description":
            if not isinstance(value, str):
                raise ValidationError(f"{where}: expected text, got {value!r}")
            clean[name] = value
        elif name == "customer":
            if value is not None and not isinstance(value, Individual | Organization):
                raise ValidationError(f"{where}: expected an Individual or an Organization")
            clean[name] = value
        elif name == "value":
            clean[name] = check_money(value, where)
        elif name == "annual_value":
            clean[name] = None if value is None else check_money(value, where)
        elif name in ("expected_close", "pay_date"):
            if value is not None and (
                not isinstance(value, dt.date) or isinstance(value, dt.datetime)
            ):
                raise ValidationError(f"{where}: expected a date, got {value!r}")
            clean[name] = value
        elif name in ("external_ref", "avatar", "owner"):
            clean[name] = _optional_text(value, record, name)
        elif name == "related":
            items = tuple(value) if isinstance(value, list | tuple) else None
            if items is None or not all(isinstance(r, Related) for r in items):
                raise ValidationError(f"{where}: expected a sequence of Related values")
            clean[name] = items
        elif name == "team":
            members = tuple(value) if isinstance(value, list | tuple) else None
            if members is None or not all(isinstance(m, str) and m for m in members):
                raise ValidationError(f"{where}: expected a sequence of user names")
            clean[name] = members
        elif name == "probability_override":
            clean[name] = check_probability(value, where)
        else:
            raise ValidationError(f"{record}: {name!r} is not a field that can be set")
    return clean


def check_probability(value: object, record: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationError(f"{record}: a probability must be an integer 0..100, got {value!r}")
    return value


def check_identity(opportunity: Opportunity, *, require_customer: bool) -> None:
    """The rules on title and customer (seeds 000, 002, 004)."""
    record = f"Opportunity {opportunity.id!r}"
    if opportunity.title is None and not isinstance(opportunity.customer, Organization):
        raise ValidationError(
            f"{record}: a title is required unless the customer is an Organization"
        )
    if require_customer and opportunity.customer is None:
        raise ValidationError(f"{record}: its process {opportunity.process!r} requires a customer")
    if opportunity.annual_value is not None:
        same_currency(opportunity.value, opportunity.annual_value, f"{record}.annual_value")
