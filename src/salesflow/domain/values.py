"""Small values shared by the aggregates: enums, customers, money helpers, notes."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeAlias

import attrs
from moneyed import Money, get_currency
from moneyed.classes import CurrencyDoesNotExist

from salesflow.errors import CurrencyMismatch, ValidationError

__all__ = [
    "ActionKind",
    "ActivityKind",
    "ActivityStatus",
    "CancelPolicy",
    "Customer",
    "Indicator",
    "Individual",
    "LineItem",
    "Money",
    "Note",
    "Organization",
    "Related",
    "StageKind",
    "Status",
    "check_currency",
    "check_money",
    "require_aware",
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


def require_aware(value: dt.datetime, record: str) -> dt.datetime:
    """Return ``value`` if it carries a timezone; raise ``ValidationError`` if naive."""
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{record}: expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{record}: datetimes must be timezone-aware, got naive {value}")
    return value


def check_currency(code: str, record: str) -> str:
    """Return ``code`` if it is a known ISO 4217 currency code."""
    try:
        get_currency(code)
    except CurrencyDoesNotExist:
        raise ValidationError(f"{record}: unknown currency code {code!r}") from None
    return code


def check_money(value: object, record: str, *, allow_negative: bool = False) -> Money:
    """Return ``value`` if it is a ``Money`` with a ``Decimal`` amount (and not negative)."""
    if not isinstance(value, Money):
        raise ValidationError(f"{record}: expected Money, got {value!r}")
    if not value.amount.is_finite():
        raise ValidationError(f"{record}: the amount must be a finite number, got {value.amount}")
    if not allow_negative and value.amount < 0:
        raise ValidationError(f"{record}: must not be negative, got {value}")
    return value


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
    return Money(value.amount.quantize(exponent, rounding=ROUND_HALF_UP), value.currency)


def same_currency(a: Money, b: Money, record: str) -> None:
    if a.currency != b.currency:
        raise CurrencyMismatch(
            f"{record}: {a.currency.code} and {b.currency.code} cannot be combined "
            "without a conversion"
        )


def _non_blank(record: str) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{record}.{attribute.name}: must not be blank")

    return check


@attrs.frozen
class Individual:
    """A person as the customer of an opportunity (seed 002)."""

    id: str = attrs.field(validator=_non_blank("Individual"))
    name: str = attrs.field(validator=_non_blank("Individual"))


@attrs.frozen
class Organization:
    """A company as the customer of an opportunity; its name can stand as the title."""

    id: str = attrs.field(validator=_non_blank("Organization"))
    name: str = attrs.field(validator=_non_blank("Organization"))


Customer: TypeAlias = Individual | Organization


@attrs.frozen
class Related:
    """A link to another record of the host app (seed 000: company, contact, candidate)."""

    role: str = attrs.field(validator=_non_blank("Related"))
    id: str = attrs.field(validator=_non_blank("Related"))
    name: str = attrs.field(default="")


@attrs.frozen
class Note:
    """A comment on an opportunity."""

    text: str
    author: str | None
    at: dt.datetime


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        return Decimal(value)
    raise ValidationError(f"LineItem: expected a Decimal, int or str number, got {value!r}")


@attrs.frozen
class LineItem:
    """A billable line of an opportunity (seed 002's billables)."""

    description: str
    quantity: Decimal = attrs.field(converter=_decimal)
    unit_price: Money
    discount_percent: Decimal = attrs.field(default=Decimal(0), converter=_decimal, kw_only=True)
    service_code: str | None = attrs.field(default=None, kw_only=True)
    id: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        check_money(self.unit_price, "LineItem.unit_price")
        if not self.quantity.is_finite() or self.quantity < 0:
            raise ValidationError(f"LineItem.quantity: must not be negative, got {self.quantity}")
        if not Decimal(0) <= self.discount_percent <= Decimal(100):
            raise ValidationError(
                f"LineItem.discount_percent: must be 0..100, got {self.discount_percent}"
            )

    @property
    def total(self) -> Money:
        """Quantity x unit price, less the discount; exact (not rounded)."""
        factor = (Decimal(100) - self.discount_percent) / Decimal(100)
        return Money(self.unit_price.amount * self.quantity * factor, self.unit_price.currency)
