"""Small values shared by the aggregates: enums, customers, money helpers, notes.

Every value class validates each field when built, with the functions of
:mod:`salesflow.domain.checks`: a wrong type or range for any argument raises
``ValidationError`` naming the record and the field.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, TypeAlias, TypeVar, cast

import attrs
from moneyed import Money, get_currency

from salesflow.domain import checks
from salesflow.errors import CurrencyMismatch, ValidationError
from salesflow.messages import Message

__all__ = [
    "ActionKind",
    "ActivityKind",
    "ActivityStatus",
    "CancelPolicy",
    "Customer",
    "DealCounts",
    "Indicator",
    "Individual",
    "InvoiceDraft",
    "InvoiceLine",
    "LineItem",
    "Money",
    "Note",
    "Organization",
    "ReadOnlyMapping",
    "Related",
    "StageKind",
    "Status",
    "TicketRef",
    "initials",
    "round_money",
]


class StageKind(enum.Enum):
    """Whether a stage is still in play or closes the opportunity."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Status(enum.Enum):
    """Where an opportunity stands: open, paused, or closed as won or lost."""

    OPEN = "open"
    PAUSED = "paused"
    WON = "won"
    LOST = "lost"


class ActionKind(enum.Enum):
    """What performing a stage action does (seed 003)."""

    CALENDAR = "calendar"
    LETTER = "letter"
    EVENT = "event"
    MANUAL = "manual"


class ActivityKind(enum.Enum):
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    TASK = "task"
    LETTER = "letter"
    OTHER = "other"


class ActivityStatus(enum.Enum):
    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"


class CancelPolicy(enum.Enum):
    """What a stage change does with the planned activities of the stage it leaves."""

    KEEP = "keep"
    ASK = "ask"
    CANCEL = "cancel"


class Indicator(enum.Enum):
    """Seed 000's coloured activity box, by calendar day."""

    OVERDUE = "overdue"
    TODAY = "today"
    UPCOMING = "upcoming"
    NONE = "none"


K = TypeVar("K")
V = TypeVar("V")


class ReadOnlyMapping(Mapping[K, V]):
    """A mapping that cannot be changed, and that pickles (a ``MappingProxyType`` does
    not): what reports and bulk results hand out."""

    __slots__ = ("_items",)

    _items: dict[K, V]

    def __init__(self, items: Mapping[K, V] | None = None) -> None:
        object.__setattr__(self, "_items", dict(items or {}))

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return self._items == other if isinstance(other, Mapping) else NotImplemented

    def __hash__(self) -> int:  # hashable when its values are, as a tuple is
        return hash(frozenset(self._items.items()))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a read-only mapping: cannot set {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._items,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


def minor_digits(currency: str) -> int:
    """How many decimal places the currency's minor unit has (2 for USD, 0 for JPY)."""
    sub_unit = get_currency(currency).sub_unit
    digits = 0
    while sub_unit > 1:
        sub_unit //= 10
        digits += 1
    return digits


def round_money(value: Money) -> Money:
    """Round half-up to the currency's minor unit."""
    exponent = Decimal(1).scaleb(-minor_digits(value.currency.code))
    rounded = value.amount.quantize(exponent, rounding=ROUND_HALF_UP)
    return checks.FrozenMoney(rounded, value.currency)


def same_currency(a: Money, b: Money, record: str) -> None:
    if a.currency != b.currency:
        raise CurrencyMismatch(
            Message(
                "{record}: {a} and {b} cannot be combined without a conversion",
                record=record,
                a=a.currency.code,
                b=b.currency.code,
            )
        )


# -- validation of the value classes (here and in ``process.py``) ---------------------
#
# Every field has a validator that runs one of ``checks``' functions with ``where`` set
# to the record and the field ("Stage 'lead'.rot_after"). attrs runs the validators
# after every field is set, so the record's key is known by then. A field whose value
# is kept in another form (a tuple, an enum member, a frozen Money) also has a
# converter that applies the check leniently: it returns the checked form, or the
# value as given when the check fails, for the validator to report with the record's
# name. (A converter could be told the record itself with ``attrs.Converter(...,
# takes_self=True)``, but mypy's attrs plugin cannot read such converters and would
# type those constructor arguments as ``Any``; plain converters keep the signatures
# typed.)

T = TypeVar("T")


def convert_with(check: Callable[[object, str], T], value: object) -> T:
    """``check``'s form of ``value``, or ``value`` as given if the check fails (the
    field's validator then reports the failure, naming the record)."""
    try:
        return check(value, "")
    except ValidationError:
        return cast(T, value)


def collect(value: object, kind: type) -> object:
    """A lone ``kind`` value as a one-item tuple, any other iterable (but text and
    dicts) as a tuple; anything else as given, for the validator to refuse.

    Iterables are read once here, so that the validator sees what was read."""
    if isinstance(value, kind):
        return (value,)
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        return value
    return tuple(value)


def optional_text(value: object, where: str) -> str | None:
    """None, or a short string that may be blank (checks.py has ``optional_name``,
    which refuses blank text)."""
    return None if value is None else checks.text(value, where, limit=checks.NAME_MAX)


# -- customers, links, notes, line items -------------------------------------------


@attrs.frozen
class Individual:
    """A person as the customer of an opportunity (seed 002); the name is kept without
    the blanks around it."""

    _KEY: ClassVar[str] = "id"

    id: str = attrs.field(validator=checks.validator(checks.name))
    name: str = attrs.field(converter=checks.stripped, validator=checks.validator(checks.name))


@attrs.frozen
class Organization:
    """A company as the customer of an opportunity; its name (kept without the blanks
    around it) can stand as the title."""

    _KEY: ClassVar[str] = "id"

    id: str = attrs.field(validator=checks.validator(checks.name))
    name: str = attrs.field(converter=checks.stripped, validator=checks.validator(checks.name))


Customer: TypeAlias = Individual | Organization


def _related_name(value: object, where: str) -> str:
    return checks.text(value, where, limit=checks.NAME_MAX)


@attrs.frozen
class Related:
    """A link to another record of the host app (seed 000: company, contact,
    candidate); the role and the name are kept without the blanks around them."""

    _KEY: ClassVar[str] = "id"

    role: str = attrs.field(converter=checks.stripped, validator=checks.validator(checks.name))
    id: str = attrs.field(validator=checks.validator(checks.name))
    name: str = attrs.field(
        default="", converter=checks.stripped, validator=checks.validator(_related_name)
    )


@attrs.frozen
class Note:
    """A comment on an opportunity."""

    text: str = attrs.field(validator=checks.validator(checks.text))
    author: str | None = attrs.field(validator=checks.validator(checks.optional_name))
    at: dt.datetime = attrs.field(validator=checks.validator(checks.aware))


def _percent(value: object, where: str) -> Decimal:
    number = checks.amount(value, where)
    if number > 100:
        raise ValidationError(f"{where}: must be 0..100, got {number}")
    return number


def _to_amount(value: Decimal | int | str) -> Decimal:
    return convert_with(checks.amount, value)


def _to_percent(value: Decimal | int | str) -> Decimal:
    return convert_with(_percent, value)


def to_money(value: Money) -> Money:
    return convert_with(checks.money, value)


def to_optional_money(value: Money | None) -> Money | None:
    """:func:`to_money`, letting None through."""
    return None if value is None else to_money(value)


@attrs.frozen
class LineItem:
    """A billable line of an opportunity (seed 002's billables).

    ``unit_price`` is kept as an immutable ``Money``; ``quantity`` and
    ``discount_percent`` (0..100) are ``Decimal`` values, given as such or as an int
    or a decimal string.
    """

    _KEY: ClassVar[str] = "id"

    description: str = attrs.field(validator=checks.validator(checks.text))
    quantity: Decimal = attrs.field(converter=_to_amount, validator=checks.validator(checks.amount))
    unit_price: Money = attrs.field(converter=to_money, validator=checks.validator(checks.money))
    discount_percent: Decimal = attrs.field(
        default=Decimal(0),
        converter=_to_percent,
        validator=checks.validator(_percent),
        kw_only=True,
    )
    service_code: str | None = attrs.field(
        default=None, validator=checks.validator(checks.optional_name), kw_only=True
    )
    id: str | None = attrs.field(
        default=None, validator=checks.validator(checks.optional_name), kw_only=True
    )

    @property
    def currency(self) -> str:
        return str(self.unit_price.currency.code)

    @property
    def total(self) -> Money:
        """Quantity x unit price, less the discount; exact (not rounded)."""
        factor = (Decimal(100) - self.discount_percent) / Decimal(100)
        return Money(self.unit_price.amount * self.quantity * factor, self.unit_price.currency)

    @property
    def gross(self) -> Money:
        """Quantity x unit price before the discount, rounded half-up to the currency's
        minor unit."""
        return round_money(Money(self.unit_price.amount * self.quantity, self.unit_price.currency))

    @property
    def amount(self) -> Money:
        """What the line bills: :attr:`total` rounded half-up to the currency's minor
        unit, once, on this line. An opportunity's ``billables_total`` and an invoice's
        total are sums of these."""
        return round_money(self.total)


@attrs.frozen
class TicketRef:
    """A support ticket of the host app linked to an opportunity (seed 002)."""

    _KEY: ClassVar[str] = "id"

    id: str = attrs.field(validator=checks.validator(checks.name))
    title: str = attrs.field(validator=checks.validator(checks.name))


@attrs.frozen
class InvoiceLine:
    """One line of an :class:`InvoiceDraft`: a line item as it is billed.

    ``subtotal`` is quantity x unit price and ``amount`` the same less the discount,
    each rounded half-up to the currency's minor unit on this line; ``discount`` is
    the difference of the two.
    """

    _KEY: ClassVar[str] = "line_id"

    line_id: str = attrs.field(validator=checks.validator(checks.name))
    description: str = attrs.field(validator=checks.validator(checks.text))
    quantity: Decimal = attrs.field(validator=checks.validator(checks.amount))
    unit_price: Money = attrs.field(converter=to_money, validator=checks.validator(checks.money))
    discount_percent: Decimal = attrs.field(validator=checks.validator(_percent))
    service_code: str | None = attrs.field(validator=checks.validator(checks.optional_name))
    subtotal: Money = attrs.field(converter=to_money, validator=checks.validator(checks.money))
    amount: Money = attrs.field(converter=to_money, validator=checks.validator(checks.money))

    @property
    def discount(self) -> Money:
        return checks.FrozenMoney(self.subtotal.amount - self.amount.amount, self.amount.currency)

    @classmethod
    def of(cls, item: LineItem) -> InvoiceLine:
        """The billed form of a stored line item (which has its id)."""
        return cls(
            line_id=checks.name(item.id, "LineItem.id"),
            description=item.description,
            quantity=item.quantity,
            unit_price=item.unit_price,
            discount_percent=item.discount_percent,
            service_code=item.service_code,
            subtotal=item.gross,
            amount=item.amount,
        )


def _lines(value: object, where: str) -> tuple[InvoiceLine, ...]:
    lines = checks.tuple_of(InvoiceLine, "InvoiceLine values")(value, where)
    if not lines:
        raise ValidationError(f"{where}: an invoice needs at least one line")
    return lines


@attrs.frozen
class InvoiceDraft:
    """An invoice drawn from an opportunity's billables: a value for the host app's
    billing system, which numbers, sends and books it (seed 002).

    ``issued`` and ``due`` are calendar dates; ``lines`` are the opportunity's line
    items in order, each rounded on its own line; ``subtotal``, ``discount`` and
    ``total`` are the exact sums of the lines' rounded figures, so the draft adds up
    as printed.
    """

    _KEY: ClassVar[str] = "number"

    number: str = attrs.field(validator=checks.validator(checks.name))
    opportunity_id: str = attrs.field(validator=checks.validator(checks.name))
    issued: dt.date = attrs.field(validator=checks.validator(checks.day))
    due: dt.date = attrs.field(validator=checks.validator(checks.day))
    customer: Individual | Organization = attrs.field(
        validator=checks.validator(checks.instance_of((Individual, Organization), "a customer"))
    )
    lines: tuple[InvoiceLine, ...] = attrs.field(validator=checks.validator(_lines))

    @property
    def currency(self) -> str:
        return str(self.lines[0].amount.currency.code)

    def _sum(self, figure: Callable[[InvoiceLine], Money]) -> Money:
        return checks.FrozenMoney(
            sum((figure(line).amount for line in self.lines), Decimal(0)), self.currency
        )

    @property
    def subtotal(self) -> Money:
        """The lines before their discounts."""
        return self._sum(lambda line: line.subtotal)

    @property
    def discount(self) -> Money:
        """The lines' discounts together."""
        return self._sum(lambda line: line.discount)

    @property
    def total(self) -> Money:
        """What the invoice bills: the sum of the lines' amounts."""
        return self._sum(lambda line: line.amount)


@attrs.frozen
class DealCounts:
    """How many opportunities a customer or related record has, by status (seed 000's
    record summary, seed 002's customer history)."""

    open: int
    paused: int
    won: int
    lost: int

    @property
    def total(self) -> int:
        return self.open + self.paused + self.won + self.lost


def initials(name: str) -> str:
    """Up to two capital letters for a card: the first letters of the first two words
    of ``name`` ("Acme Corp" -> "AC", "Nordic Freight AS" -> "NF", "Olga" -> "O");
    punctuation is skipped, and the result is empty when ``name`` has no letter or
    digit."""
    words = ["".join(c for c in word if c.isalnum()) for word in name.split()]
    return "".join(word[0].upper()[0] for word in words if word)[:2]
