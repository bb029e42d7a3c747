"""Checks of every value that enters salesflow, one function per kind of value.

Every public call checks its arguments with these before it does anything, and the
validators of the stored records use the same functions, so that nothing which could
not be stored and read back on every repository can even be built. Each check returns
the value in the form salesflow keeps (a lone string as a one-item tuple, an enum
member for its value, an immutable ``Money``) or raises ``ValidationError`` naming
``where`` (the record and field, or the call and argument) and the rule.

The bounds, the same on every repository:

- text is valid Unicode that UTF-8 can encode (no lone surrogates) and holds no NUL
  character (PostgreSQL cannot store one); names, keys and ids have at most
  :data:`NAME_MAX` characters, longer text (descriptions, notes) :data:`TEXT_MAX`;
- an amount of money is finite, below :data:`AMOUNT_LIMIT` in size and has at most
  :data:`AMOUNT_PLACES` decimal places, so that it is stored exactly everywhere and
  any realistic sum of amounts stays exact in ``Decimal`` arithmetic; a negative zero
  is kept as zero (``-0.00`` as ``0.00``);
- datetimes are timezone-aware; dates are dates, not datetimes.
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import zoneinfo
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import dateutil.tz
from dateutil.relativedelta import relativedelta
from moneyed import Money, get_currency
from moneyed.classes import CurrencyDoesNotExist

from salesflow.errors import ValidationError
from salesflow.messages import Message, Term

__all__ = [
    "AMOUNT_LIMIT",
    "AMOUNT_PLACES",
    "NAME_MAX",
    "TEXT_MAX",
    "FrozenDelta",
    "FrozenMoney",
    "amount",
    "aware",
    "currency",
    "day",
    "flag",
    "frozen_delta",
    "instance_of",
    "integer",
    "items",
    "member",
    "money",
    "name",
    "optional",
    "optional_name",
    "optional_person",
    "person",
    "probability",
    "record_of",
    "strings",
    "text",
    "timezone",
    "tuple_of",
    "validator",
]

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")

#: Names, keys, ids, titles: at most this many characters.
NAME_MAX = 1_000
#: Descriptions, notes, outcomes: at most this many characters.
TEXT_MAX = 100_000
#: Every amount is smaller than this in size: one quadrillion.
AMOUNT_LIMIT = Decimal(10) ** 15
#: Every amount has at most this many decimal places.
AMOUNT_PLACES = 6
_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
#: The years of the moments salesflow takes, as their own time zone reads them: a
#: year away from the calendar's ends (1 and 9999), so that any time zone (its offset
#: is under a day) can show them.
_FIRST_YEAR, _LAST_YEAR = 2, 9998


class _Frozen:
    """Refuses to change an attribute once ``__init__`` has run."""

    _sealed = False

    def _seal(self) -> None:
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, attribute: str, value: object) -> None:
        if self._sealed:
            raise TypeError(f"{type(self).__name__} values held by salesflow cannot be changed")
        super().__setattr__(attribute, value)

    def __delattr__(self, attribute: str) -> None:
        raise TypeError(f"{type(self).__name__} values held by salesflow cannot be changed")


class FrozenMoney(_Frozen, Money):
    """A ``Money`` whose amount and currency cannot be reassigned.

    salesflow keeps every amount in this form, so that a caller holding an
    opportunity's ``value`` cannot change what is stored. It is a ``Money`` in every
    other way; arithmetic on it gives frozen results too.
    """

    def __init__(self, amount: object = Decimal(0), currency: Any = None) -> None:
        super().__init__(amount, currency)
        self._seal()


class FrozenDelta(_Frozen, relativedelta):
    """A ``relativedelta`` that cannot be changed (a stage action's ``due_after``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The same step as a ``timedelta`` when it is one -- only relative days, hours,
        #: minutes, seconds and microseconds -- which adds the same, and far quicker.
        plain = None
        if (
            not self.years
            and not self.months
            and not self.leapdays
            and self.weekday is None
            and all(
                getattr(self, absolute) is None
                for absolute in ("year", "month", "day", "hour", "minute", "second", "microsecond")
            )
        ):
            plain = dt.timedelta(
                days=self.days,
                hours=self.hours,
                minutes=self.minutes,
                seconds=self.seconds,
                microseconds=self.microseconds,
            )
        object.__setattr__(self, "_plain", plain)
        self._seal()

    def after(self, moment: dt.datetime) -> dt.datetime:
        """``moment + self``."""
        plain: dt.timedelta | None = self.__dict__.get("_plain")
        return moment + plain if plain is not None else moment + self

    def __repr__(self) -> str:
        return "relativedelta" + super().__repr__().removeprefix(type(self).__name__)


#: Stands for the record and field in a validator's check, until a message needs them.
_FIELD = "\x00field\x00"


def validator(check: Callable[[Any, str], object]) -> Any:
    """An attrs validator running ``check`` on a field, naming the record (see
    :func:`record_of`) and the field -- worked out only when the check fails, since
    validators run on every copy of a record."""

    def validate(instance: Any, attribute: Any, value: object) -> None:
        try:
            check(value, _FIELD)
        except ValidationError as error:
            where = field_of(instance, attribute.name)
            message = error.message
            if isinstance(message, Message) and message.params.get("where") == _FIELD:
                raise ValidationError(message.with_params(where=where)) from None
            raise ValidationError(str(error).replace(_FIELD, str(where))) from None

    return validate


def field_of(instance: object, field: str) -> Message:
    """How messages name a field of a record (``Opportunity 'o-1'.value``), with the
    kind of record translatable (``Muligheten «o-1».value``)."""
    kind = type(instance).__name__
    key = getattr(instance, getattr(type(instance), "_KEY", "id"), None)
    try:
        record: Message | Term = Message(
            "{kind} {key!r}", kind=Term("record", kind), key=name(key, kind)
        )
    except ValidationError:
        record = Term("record", kind)
    return Message("{record}.{field}", record=record, field=field)


def record_of(instance: object) -> str:
    """How messages name a record: its class and, when it is a valid name, its key
    (``Stage 'lead'``, ``Opportunity 'o-1'``); the class alone otherwise. A class names
    the field that holds its key in ``_KEY`` (default ``id``)."""
    kind = type(instance).__name__
    key = getattr(instance, getattr(type(instance), "_KEY", "id"), None)
    try:
        return f"{kind} {name(key, kind)!r}"
    except ValidationError:
        return kind


def optional(check: Callable[[Any, str], T]) -> Callable[[Any, str], T | None]:
    """``check``, letting None through."""

    def optional_check(value: object, where: str) -> T | None:
        return None if value is None else check(value, where)

    return optional_check


def instance_of(kind: type | tuple[type, ...], what: str) -> Callable[[Any, str], Any]:
    """A check that the value is an instance of ``kind`` (described as ``what``)."""

    def instance(value: object, where: str) -> Any:
        if not isinstance(value, kind):
            raise _fail(where, f"expected {what}, got {_shown(value)}")
        return value

    return instance


def tuple_of(kind: type | tuple[type, ...], what: str) -> Callable[[Any, str], tuple[Any, ...]]:
    """A check that the value is a tuple of ``kind`` instances (described as ``what``)."""

    def sequence(value: object, where: str) -> tuple[Any, ...]:
        if not isinstance(value, tuple) or not all(isinstance(v, kind) for v in value):
            raise _fail(where, f"expected a tuple of {what}, got {_shown(value)}")
        return value

    return sequence


def _fail(where: str, rule: str | Message) -> ValidationError:
    """The error for a value at ``where`` breaking ``rule`` (translatable when the rule
    is a :class:`~salesflow.messages.Message`)."""
    if isinstance(rule, Message):
        return ValidationError(Message("{where}: {rule}", where=where, rule=rule))
    return ValidationError(f"{where}: {rule}")


def _shown(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def text(value: object, where: str, *, limit: int = TEXT_MAX, blank: bool = True) -> str:
    """A string that every repository stores as given."""
    if not isinstance(value, str):
        raise _fail(where, f"expected text, got {type(value).__name__} {_shown(value)}")
    if len(value) > limit:
        raise _fail(where, f"must be at most {limit} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(where, "must be valid Unicode text (it holds a lone surrogate)") from None
    if "\x00" in value:
        raise _fail(where, "must not contain the NUL character")
    if not blank and not value.strip():
        raise _fail(where, Message("must not be blank"))
    return value


def name(value: object, where: str) -> str:
    """A non-blank short string: a key, an id, a name."""
    return text(value, where, limit=NAME_MAX, blank=False)


def optional_name(value: object, where: str) -> str | None:
    """None, or a non-blank short string (an owner, an actor, a reference)."""
    return None if value is None else name(value, where)


def person(value: object, where: str) -> str:
    """A user's name (an owner, an actor, a team member): a non-blank short string,
    kept without the blanks around it, so that ``"  ann  "`` and ``"ann"`` are one
    person everywhere (an assignment, a search, a report, a policy). The name is
    interned: the many records naming one person share one string."""
    return sys.intern(name(value, where).strip())


def stripped(value: object) -> object:
    """An attrs converter: text without the blanks around it (anything else is left
    to the validator). Users' names and loss reasons are kept this way, also when read
    back from storage written before they were."""
    return value.strip() if isinstance(value, str) else value


def stripped_all(value: object) -> object:
    """:func:`stripped` for each item of a tuple or list (anything else is left as it
    is, for the validator)."""
    if isinstance(value, tuple | list):
        return tuple(stripped(item) for item in value)
    return value


def optional_person(value: object, where: str) -> str | None:
    """None, or a user's name as :func:`person` keeps it."""
    return None if value is None else person(value, where)


def flag(value: object, where: str) -> bool:
    """True or False, and nothing that merely counts as one ("no" is not False)."""
    if not isinstance(value, bool):
        raise _fail(where, f"expected True or False, got {_shown(value)}")
    return value


def integer(value: object, where: str, low: int, high: int) -> int:
    """An int (not a bool) within ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(
            where,
            Message(
                "expected a whole number {low}..{high}, got {value}",
                low=low,
                high=high,
                value=_shown(value),
            ),
        )
    return value


def probability(value: object, where: str) -> int:
    """A win probability: a whole number of percent, 0..100."""
    return integer(value, where, 0, 100)


def aware(value: object, where: str) -> dt.datetime:
    """A timezone-aware datetime."""
    if not isinstance(value, dt.datetime):
        raise _fail(where, f"expected a datetime, got {_shown(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(
            where, Message("datetimes must be timezone-aware, got naive {value}", value=value)
        )
    if not _FIRST_YEAR <= value.year <= _LAST_YEAR:
        raise _fail(
            where,
            f"must lie in the years {_FIRST_YEAR} to {_LAST_YEAR} (both included), got {value}",
        )
    try:
        value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise _fail(where, f"{value} is out of the range of UTC datetimes") from None
    return value


def day(value: object, where: str) -> dt.date:
    """A calendar date (a datetime is refused: it would hide a time and a zone)."""
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise _fail(where, f"expected a date, got {_shown(value)}")
    return value


def member(value: object, kind: type[E], where: str) -> E:
    """A member of the enum ``kind``, given as itself or as its value (``"open"``)."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for candidate in kind:
            if candidate.value == value:
                return candidate
    choices = ", ".join(repr(m.value) for m in kind)
    raise _fail(where, f"expected a {kind.__name__} ({choices}), got {_shown(value)}")


def items(value: object, kind: type[T], where: str) -> tuple[T, ...]:
    """A tuple of ``kind`` values from any iterable of them; a lone one is one item."""
    if isinstance(value, kind):
        return (value,)
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise _fail(where, f"expected a sequence of {kind.__name__} values, got {_shown(value)}")
    found = tuple(value)
    for item in found:
        if not isinstance(item, kind):
            raise _fail(where, f"expected {kind.__name__} values, got {_shown(item)}")
    return found


def strings(value: object, where: str) -> tuple[str, ...]:
    """A tuple of names from any iterable of strings; a lone string is one item."""
    return tuple(name(item, where) for item in items(value, str, where))


def currency(value: object, where: str) -> str:
    """A known ISO 4217 currency code."""
    code = name(value, where)
    try:
        get_currency(code)
    except CurrencyDoesNotExist:
        raise _fail(where, Message("unknown currency code {code!r}", code=code)) from None
    return code


def amount(value: object, where: str, *, negative: bool = False) -> Decimal:
    """A Decimal within the bounds every repository stores exactly (see the module)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise _fail(where, f"expected a Decimal, got {_shown(value)}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise _fail(where, f"{_shown(value)} is not a decimal number") from None
    if not number.is_finite():
        raise _fail(where, f"must be a finite number, got {number}")
    if number.copy_abs() >= AMOUNT_LIMIT:
        raise _fail(where, f"must be smaller than {AMOUNT_LIMIT:,} in size, got {number:.6E}")
    exponent = number.as_tuple().exponent
    if (
        isinstance(exponent, int)
        and exponent < -AMOUNT_PLACES
        and number != number.quantize(_QUANTUM)
    ):
        raise _fail(where, f"must have at most {AMOUNT_PLACES} decimal places, got {number}")
    if not negative and number < 0:
        raise _fail(where, Message("must not be negative, got {number}", number=number))
    if number.is_zero() and number.is_signed():
        return number.copy_abs()  # -0.00 is 0.00: it must not read back, or print, as -0
    return number


def money(value: object, where: str, *, negative: bool = False) -> FrozenMoney:
    """A ``Money`` within the bounds of :func:`amount`, in the frozen form."""
    if not isinstance(value, Money):
        raise _fail(where, f"expected Money, got {_shown(value)}")
    if isinstance(value.amount, bool) or not isinstance(value.amount, Decimal):
        raise _fail(where, f"expected a Decimal amount, got {_shown(value.amount)}")
    checked = amount(value.amount, where, negative=negative)
    if isinstance(value, FrozenMoney) and checked is value.amount:
        return value
    return FrozenMoney(checked, value.currency)


def frozen_delta(value: object, where: str) -> FrozenDelta:
    """A dateutil ``relativedelta``, in the frozen form."""
    if not isinstance(value, relativedelta):
        raise _fail(where, f"expected a dateutil relativedelta, got {_shown(value)}")
    if isinstance(value, FrozenDelta):
        return value
    fields = {
        field: getattr(value, field)
        for field in (
            "years",
            "months",
            "days",
            "leapdays",
            "hours",
            "minutes",
            "seconds",
            "microseconds",
            "year",
            "month",
            "day",
            "weekday",
            "hour",
            "minute",
            "second",
            "microsecond",
        )
    }
    return FrozenDelta(**fields)


def timezone(value: object, where: str) -> dt.tzinfo:
    """A ``tzinfo``, or an IANA name such as ``"Europe/Oslo"`` resolved to one."""
    if isinstance(value, dt.tzinfo):
        return value
    key = name(value, where)
    try:
        return zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    # Machines without a system time zone database: dateutil ships its own copy.
    found = dateutil.tz.gettz(key)
    if found is None:
        raise _fail(where, f"unknown time zone {key!r}; use an IANA name such as 'Europe/Oslo'")
    return found
