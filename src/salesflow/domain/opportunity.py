"""The opportunity aggregate and its own copies of its process' stage actions.

An :class:`Opportunity` is immutable: each rule of the aggregate is a method that
checks the rule and returns the changed copy (or raises, changing nothing). Every
field has a validator, so no opportunity that could not be stored and read back can
be built.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from moneyed import Money

from salesflow.domain import checks
from salesflow.domain.events import Changes
from salesflow.domain.process import Stage, StageAction
from salesflow.domain.revision import reviser
from salesflow.domain.values import (
    ActionKind,
    Customer,
    Individual,
    InvoiceDraft,
    InvoiceLine,
    LineItem,
    Note,
    Organization,
    Related,
    Status,
    TicketRef,
    initials,
    same_currency,
    to_money,
    to_optional_money,
)
from salesflow.errors import (
    AlreadyAssigned,
    CurrencyMismatch,
    NotFound,
    TransitionNotAllowed,
    ValidationError,
)
from salesflow.messages import Message, Term

__all__ = ["EDITABLE_FIELDS", "TRACKED_FIELDS", "Opportunity", "OpportunityAction"]


def _team(value: object, where: str) -> object:
    return tuple(
        checks.name(member, where) for member in checks.tuple_of(str, "names")(value, where)
    )


@attrs.frozen
class OpportunityAction:
    """A stage action as this one opportunity holds it (seed 003).

    The process defines the actions; each opportunity gets its own copy of every
    stage's actions when it is created, and may add, change or remove them alone.
    ``activity_id`` names the planned or done activity linked to a CALENDAR action;
    cancelling or deleting that activity unlinks it, so the action can be performed
    again.
    """

    id: str = attrs.field(validator=checks.validator(checks.name))
    stage: str = attrs.field(validator=checks.validator(checks.name))
    spec: StageAction = attrs.field(
        validator=checks.validator(checks.instance_of(StageAction, "a StageAction"))
    )
    completed_at: dt.datetime | None = attrs.field(
        default=None, validator=checks.validator(checks.optional(checks.aware))
    )
    activity_id: str | None = attrs.field(
        default=None, validator=checks.validator(checks.optional(checks.name))
    )

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
    "value_from_billables",
)

#: The tracked fields' values of an opportunity, in the order of ``TRACKED_FIELDS``.
_tracked_values: Callable[[Opportunity], tuple[Any, ...]] = operator.attrgetter(*TRACKED_FIELDS)

_NAME = checks.validator(checks.name)
_VERSION = checks.validator(lambda v, w: checks.integer(v, w, 0, 2**62))
_OPTIONAL_NAME = checks.validator(checks.optional_name)
_OPTIONAL_DAY = checks.validator(checks.optional(checks.day))


@attrs.frozen
class Opportunity:
    """A deal moving through a sales process. Immutable: commands return new versions."""

    id: str = attrs.field(validator=_NAME)
    process: str = attrs.field(validator=_NAME)
    stage: str = attrs.field(validator=_NAME)
    stage_probability: int = attrs.field(validator=checks.validator(checks.probability))
    value: Money = attrs.field(converter=to_money, validator=checks.validator(checks.money))
    created_at: dt.datetime = attrs.field(validator=checks.validator(checks.aware))
    stage_entered_at: dt.datetime = attrs.field(validator=checks.validator(checks.aware))
    title: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    description: str = attrs.field(default="", validator=checks.validator(checks.text))
    customer: Customer | None = attrs.field(
        default=None,
        validator=checks.validator(
            checks.optional(checks.instance_of((Individual, Organization), "a customer"))
        ),
    )
    related: tuple[Related, ...] = attrs.field(
        default=(), validator=checks.validator(checks.tuple_of(Related, "Related values"))
    )
    annual_value: Money | None = attrs.field(
        default=None,
        converter=to_optional_money,
        validator=checks.validator(checks.optional(checks.money)),
    )
    probability_override: int | None = attrs.field(
        default=None, validator=checks.validator(checks.optional(checks.probability))
    )
    status: Status = attrs.field(
        default=Status.OPEN, validator=checks.validator(checks.instance_of(Status, "a Status"))
    )
    expected_close: dt.date | None = attrs.field(default=None, validator=_OPTIONAL_DAY)
    pay_date: dt.date | None = attrs.field(default=None, validator=_OPTIONAL_DAY)
    closed_on: dt.date | None = attrs.field(default=None, validator=_OPTIONAL_DAY)
    owner: str | None = attrs.field(
        default=None, converter=checks.stripped, validator=_OPTIONAL_NAME
    )
    team: tuple[str, ...] = attrs.field(
        default=(), converter=checks.stripped_all, validator=checks.validator(_team)
    )
    external_ref: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    avatar: str | None = attrs.field(default=None, validator=_OPTIONAL_NAME)
    loss_reason: str | None = attrs.field(
        default=None, converter=checks.stripped, validator=_OPTIONAL_NAME
    )
    notes: tuple[Note, ...] = attrs.field(
        default=(), validator=checks.validator(checks.tuple_of(Note, "notes"))
    )
    line_items: tuple[LineItem, ...] = attrs.field(
        default=(), validator=checks.validator(checks.tuple_of(LineItem, "line items"))
    )
    actions: tuple[OpportunityAction, ...] = attrs.field(
        default=(), validator=checks.validator(checks.tuple_of(OpportunityAction, "actions"))
    )
    tickets: tuple[TicketRef, ...] = attrs.field(
        default=(), validator=checks.validator(checks.tuple_of(TicketRef, "ticket references"))
    )
    value_from_billables: bool = attrs.field(default=False, validator=checks.validator(checks.flag))
    version: int = attrs.field(default=0, validator=_VERSION)

    # -- reading ---------------------------------------------------------------

    @property
    def record(self) -> str:
        """How messages name this opportunity."""
        return f"Opportunity {self.id!r}"

    @property
    def _status(self) -> Term:
        """The status as messages write it (``won``), translatable."""
        return Term("status value", self.status.value)

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
        """The sum of the line items' amounts (each rounded half-up to the currency's
        minor unit on its own line), in the opportunity's currency: what an invoice of
        them totals."""
        total = sum((line.amount.amount for line in self.line_items), Decimal(0))
        return checks.FrozenMoney(total, self.value.currency)

    @property
    def members(self) -> tuple[str, ...]:
        """Everyone associated with the deal (seed 000's initials on the card): the
        owner first, then the team, each once."""
        people = (self.owner, *self.team) if self.owner is not None else self.team
        return tuple(dict.fromkeys(people))

    @property
    def company(self) -> str | None:
        """The name of the company the deal is with: the customer when it is an
        organisation, else the first related record whose role is ``company``."""
        if isinstance(self.customer, Organization):
            return self.customer.name
        for link in self.related:
            if link.role.casefold() == "company" and link.name.strip():
                return link.name
        return None

    @property
    def initials(self) -> str:
        """The initials in the corner of the card (seed 000): the company's, or the
        display title's when there is no company."""
        return initials(self.company or self.display_title)

    def line_item(self, line_id: str) -> LineItem:
        """The line item with this id; ``NotFound`` if the opportunity has none."""
        for line in self.line_items:
            if line.id == line_id:
                return line
        raise NotFound(
            Message("Opportunity {id!r} has no line item {line!r}", id=self.id, line=line_id)
        )

    @property
    def is_closed(self) -> bool:
        return self.status in (Status.WON, Status.LOST)

    def actions_of(self, stage: str) -> tuple[OpportunityAction, ...]:
        return tuple(a for a in self.actions if a.stage == stage)

    def action(self, action_id: str) -> OpportunityAction | None:
        return next((a for a in self.actions if a.id == action_id), None)

    def require_action(self, action_id: str) -> OpportunityAction:
        """The action with this id; ``NotFound`` if the opportunity has none."""
        found = self.action(action_id)
        if found is None:
            raise NotFound(
                Message("Opportunity {id!r} has no action {action!r}", id=self.id, action=action_id)
            )
        return found

    def tracked(self) -> dict[str, Any]:
        """The values of the tracked fields, as history records them."""
        return dict(zip(TRACKED_FIELDS, _tracked_values(self), strict=True))

    def changes_from(self, before: Opportunity | None) -> Changes:
        """The tracked fields that differ from ``before`` (all of them when None). An
        opportunity's fields hold immutable values only (its validators and converters
        see to it), so the changes take them as they are."""
        new = _tracked_values(self)
        if before is None:
            return Changes.frozen(TRACKED_FIELDS, None, new)
        old = _tracked_values(before)
        # Most fields of a copy hold the very same objects: ``is`` settles those quickly.
        differ = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a is not b and a != b]
        return Changes.frozen(
            tuple(TRACKED_FIELDS[i] for i in differ),
            tuple(old[i] for i in differ),
            tuple(new[i] for i in differ),
        )

    # -- the rules -------------------------------------------------------------

    def with_action(self, action: OpportunityAction) -> Opportunity:
        """A copy with ``action`` replacing the action of the same id."""
        if not isinstance(action, OpportunityAction):
            raise ValidationError(f"{self.record}: expected an OpportunityAction, got {action!r}")
        return _copy(self, actions=tuple(action if a.id == action.id else a for a in self.actions))

    def with_added_action(self, stage: Stage, spec: StageAction, action_id: str) -> Opportunity:
        """A copy with one more action in ``stage``; its key must be new to the stage."""
        if not isinstance(stage, Stage) or not isinstance(spec, StageAction):
            raise ValidationError(
                f"{self.record}: expected a Stage and a StageAction, got {stage!r}, {spec!r}"
            )
        if any(a.key == spec.key for a in self.actions_of(stage.key)):
            raise ValidationError(
                f"{self.record}: stage {stage.key!r} already has an action with key {spec.key!r}"
            )
        added = OpportunityAction(id=action_id, stage=stage.key, spec=spec)
        return _copy(self, actions=(*self.actions, added))

    def without_action(self, action_id: str) -> Opportunity:
        self.require_action(action_id)
        return _copy(self, actions=tuple(a for a in self.actions if a.id != action_id))

    def with_probability(self, probability: int | None) -> Opportunity:
        """Override the stage's probability (None: follow the stage again); a closed
        deal's probability is fixed by its stage."""
        if self.is_closed:
            raise TransitionNotAllowed(
                Message(
                    "Opportunity {id!r} is {status}: its probability is fixed by its stage",
                    id=self.id,
                    status=self._status,
                )
            )
        return attrs.evolve(self, probability_override=probability)

    def paused(self) -> Opportunity:
        """On hold (seed 004): only an open opportunity can be paused."""
        if self.status is not Status.OPEN:
            raise TransitionNotAllowed(
                Message(
                    "Opportunity {id!r} is {status}: only an open opportunity can be paused",
                    id=self.id,
                    status=self._status,
                )
            )
        return _copy(self, status=Status.PAUSED)

    def resumed(self) -> Opportunity:
        """Off hold: only a paused opportunity can be resumed."""
        if self.status is not Status.PAUSED:
            raise TransitionNotAllowed(
                Message(
                    "Opportunity {id!r} is {status}: only a paused opportunity can be resumed",
                    id=self.id,
                    status=self._status,
                )
            )
        return _copy(self, status=Status.OPEN)

    def moved(
        self, stage: Stage, *, at: dt.datetime, today: dt.date, loss_reason: str | None
    ) -> Opportunity:
        """In ``stage`` from ``at``: its probability (an override is dropped), its status,
        the closing date of a WON or LOST stage, and the loss reason of a LOST one.
        The arguments are checked here (cheaply): the copy runs no validators."""
        if not isinstance(stage, Stage):
            raise ValidationError(f"{self.record}: expected a Stage, got {stage!r}")
        checks.aware(at, f"{self.record}.stage_entered_at")
        checks.day(today, f"{self.record}.closed_on")
        checks.optional_name(loss_reason, f"{self.record}.loss_reason")
        return _copy(
            self,
            stage=stage.key,
            stage_probability=stage.probability,
            probability_override=None,
            status=stage.status,
            stage_entered_at=at,
            closed_on=None if stage.is_open else today,
            loss_reason=loss_reason,
        )

    # -- team, notes, tickets, billables --------------------------------------

    def assigned(self, user: str | None) -> Opportunity:
        """Owned by ``user`` (None: by nobody)."""
        return attrs.evolve(self, owner=user)

    def claimed_by(self, actor: str) -> Opportunity:
        """Owned by ``actor``, who claims it (seed 002): only an unowned opportunity, or
        one the actor already owns, can be claimed."""
        if self.owner is not None and self.owner != actor:
            raise AlreadyAssigned(
                Message(
                    "Opportunity {id!r} ({title!r}) is assigned to {owner!r}: {actor!r} "
                    "cannot claim it; it must be unassigned or reassigned first",
                    id=self.id,
                    title=self.display_title,
                    owner=self.owner,
                    actor=actor,
                )
            )
        return attrs.evolve(self, owner=actor)

    def with_note(self, note: Note) -> Opportunity:
        return attrs.evolve(self, notes=(*self.notes, note))

    def with_ticket(self, ticket: TicketRef) -> Opportunity:
        """A copy with ``ticket`` linked; a ticket already linked (same id) stays as it
        is."""
        if any(t.id == ticket.id for t in self.tickets):
            return self
        return attrs.evolve(self, tickets=(*self.tickets, ticket))

    def with_line_item(self, item: LineItem) -> Opportunity:
        """A copy with one more line item, which must have an id new to the deal and be
        in the deal's currency (``CurrencyMismatch``)."""
        if item.id is None:
            raise ValidationError(f"{self.record}: a line item needs an id to be added")
        if any(line.id == item.id for line in self.line_items):
            raise ValidationError(f"{self.record} already has a line item {item.id!r}")
        added = attrs.evolve(self, line_items=(*self.line_items, item))
        added.check_billables()
        where = f"{self.record}: line item {item.id!r}"
        checks.money(item.gross, f"{where}: quantity x unit price")
        checks.money(added.billables_total, f"{where}: the billables total")
        return added.following_billables()

    def without_line_item(self, line_id: str) -> Opportunity:
        self.line_item(line_id)
        kept = tuple(line for line in self.line_items if line.id != line_id)
        return attrs.evolve(self, line_items=kept).following_billables()

    def following_billables(self) -> Opportunity:
        """With ``value_from_billables`` set, a copy whose value is its billables total;
        otherwise the opportunity as it is."""
        if not self.value_from_billables or self.value == self.billables_total:
            return self
        return attrs.evolve(self, value=self.billables_total)

    def edited(self, fields: Mapping[str, Any], *, require_customer: bool) -> Opportunity:
        """A copy with ``fields`` (checked by :func:`clean_fields`) set, under every
        rule of the aggregate. While the value follows the billables, a value other
        than their total is refused."""
        new = attrs.evolve(self, **fields)
        new.check_identity(require_customer=require_customer)
        new.check_billables()
        if new.value_from_billables and "value" in fields and new.value != new.billables_total:
            raise ValidationError(
                f"{self.record}: its value follows its billables "
                f"({new.billables_total.amount} {new.currency}); set "
                "value_from_billables=False to set it by hand"
            )
        return new.following_billables()

    def check_billables(self) -> None:
        """Every line item is in the opportunity's currency (seed 002)."""
        for line in self.line_items:
            if line.unit_price.currency != self.value.currency:
                raise CurrencyMismatch(
                    Message(
                        "Opportunity {id!r}: line item {line!r} ({description!r}) is in "
                        "{currency}, the opportunity in {own}",
                        id=self.id,
                        line=line.id,
                        description=line.description,
                        currency=line.currency,
                        own=self.currency,
                    )
                )

    def invoice_draft(self, number: str, *, issued: dt.date, due: dt.date) -> InvoiceDraft:
        """An invoice of every line item (seed 002's invoice generation): the deal needs
        a customer to bill and at least one line, and must not be lost."""
        if self.status is Status.LOST:
            raise ValidationError(
                f"{self.record} ({self.display_title!r}) is lost: it cannot be invoiced"
            )
        if self.customer is None:
            raise ValidationError(
                f"{self.record} ({self.display_title!r}) has no customer to invoice"
            )
        if not self.line_items:
            raise ValidationError(
                f"{self.record} ({self.display_title!r}) has no line items to invoice"
            )
        if due < issued:
            raise ValidationError(f"Invoice {number!r}: due {due} is before issued {issued}")
        return InvoiceDraft(
            number=number,
            opportunity_id=self.id,
            issued=issued,
            due=due,
            customer=self.customer,
            lines=tuple(InvoiceLine.of(line) for line in self.line_items),
        )

    def check_identity(self, *, require_customer: bool) -> None:
        """The rules on title and customer (seeds 000, 002, 004)."""
        if self.title is None and not isinstance(self.customer, Organization):
            raise ValidationError(
                f"{self.record}: a title is required unless the customer is an Organization"
            )
        if require_customer and self.customer is None:
            raise ValidationError(
                f"{self.record}: its process {self.process!r} requires a customer"
            )
        if self.annual_value is not None:
            same_currency(self.value, self.annual_value, f"{self.record}.annual_value")


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


def _title(value: object, where: str) -> str | None:
    if value is None:
        return None
    text = checks.text(value, where, limit=checks.NAME_MAX)
    return text.strip() or None


def _related(value: object, where: str) -> tuple[Related, ...]:
    return checks.items(value, Related, where)


def _customer(value: object, where: str) -> Customer | None:
    if value is not None and not isinstance(value, Individual | Organization):
        raise ValidationError(f"{where}: expected an Individual or an Organization, got {value!r}")
    return value


#: How each field a caller may set is checked and normalised.
_FIELD_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "title": _title,
    "description": checks.text,
    "customer": _customer,
    "value": checks.money,
    "annual_value": lambda v, w: None if v is None else checks.money(v, w),
    "expected_close": lambda v, w: None if v is None else checks.day(v, w),
    "pay_date": lambda v, w: None if v is None else checks.day(v, w),
    "owner": checks.optional_person,
    "external_ref": checks.optional_name,
    "avatar": checks.optional_name,
    "related": _related,
    "team": lambda v, w: tuple(dict.fromkeys(checks.person(m, w) for m in checks.strings(v, w))),
    "value_from_billables": checks.flag,
    "probability_override": lambda v, w: None if v is None else checks.probability(v, w),
}

#: The fields ``SalesFlow.update`` may change.
EDITABLE_FIELDS = frozenset(_FIELD_CHECKS) - {"owner", "probability_override"}


def clean_fields(fields: Mapping[str, Any], opportunity_id: str) -> dict[str, Any]:
    """Check and normalise opportunity field values given by a caller.

    Raises ``ValidationError`` naming the opportunity and the field (translatably). A
    title that is empty or only blanks becomes None (no title); a lone ``Related`` or
    team member is one.
    """
    record = f"Opportunity {opportunity_id!r}"
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        check = _FIELD_CHECKS.get(name)
        if check is None:
            raise ValidationError(f"{record}: {name!r} is not a field that can be set")
        where = f"{record}.{name}"
        try:
            clean[name] = check(value, where)
        except ValidationError as error:
            message = error.message
            if isinstance(message, Message) and message.params.get("where") == where:
                field = Message(
                    "{record}.{field}",
                    record=Message("Opportunity {id!r}", id=opportunity_id),
                    field=name,
                )
                raise ValidationError(message.with_params(where=field)) from None
            raise
    return clean


#: Copies an opportunity without running its validators (see :func:`revised`).
_copy = reviser(Opportunity)
