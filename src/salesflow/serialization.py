"""One cattrs converter for every salesflow value, and JSON helpers built on it.

The repositories store records with it, and front ends use it to send salesflow
values as JSON::

    text = to_json(opportunity)
    same = from_json(text, Opportunity)

The shapes (see ``docs/serialization.md``):

- ``Money``: ``{"amount": "12.50", "currency": "EUR"}``, the amount a decimal string;
- ``Decimal``: a decimal string; ``datetime``: ISO 8601 with its UTC offset (naive
  ones are refused); ``date``: ``YYYY-MM-DD``; ``timedelta``: ``{"days", "seconds",
  "microseconds"}``; ``relativedelta``: its non-zero fields;
- enums: their value; ``Individual`` / ``Organization``: their fields plus
  ``"type": "Individual"`` or ``"type": "Organization"``;
- attrs classes (``Process``, ``Stage``, ``Opportunity``, ``Activity``, ...): a JSON
  object of their fields;
- ``Event.details``: a JSON object whose values are *tagged* (see
  :func:`encode_detail`), so that each comes back as the same Python type.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import json.encoder
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, Union, get_args, get_origin, overload

import attrs
import cattrs
import cattrs.errors
import cattrs.gen
from cattrs.v import format_exception
from dateutil.relativedelta import relativedelta, weekday
from moneyed import Money
from moneyed.classes import CurrencyDoesNotExist

from salesflow.domain.activity import Activity
from salesflow.domain.checks import FrozenDelta, FrozenMoney
from salesflow.domain.events import (
    Changes,
    Details,
    Event,
    EventKind,
    Frozen,
    check_detail,
    freeze,
)
from salesflow.domain.opportunity import Opportunity, OpportunityAction
from salesflow.domain.process import Process, StageAction
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Indicator,
    Individual,
    InvoiceDraft,
    InvoiceLine,
    LineItem,
    Note,
    Organization,
    Related,
    StageKind,
    Status,
    TicketRef,
)
from salesflow.errors import SalesflowError, StorageError, ValidationError

__all__ = [
    "DECODE_ERRORS",
    "converter",
    "decode_detail",
    "describe_error",
    "dump_record",
    "encode_detail",
    "encode_row",
    "from_json",
    "load_event",
    "load_record",
    "load_versioned",
    "record_name",
    "search_text",
    "to_json",
]

T = TypeVar("T")

#: The exceptions that decoding bad data can raise; callers turn them into their own.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    cattrs.errors.CattrsError,
    SalesflowError,
    CurrencyDoesNotExist,
    ArithmeticError,
    AttributeError,
    KeyError,
    TypeError,
    ValueError,
)

converter = cattrs.Converter()
"""The configured converter: ``converter.unstructure(value)`` gives JSON-ready data,
``converter.structure(data, Type)`` rebuilds the value."""


# -- scalars -----------------------------------------------------------------------


def _expect(value: object, kind: type[T], what: str) -> T:
    # bool is an int in Python, never in salesflow's data.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _structure_str(value: object, _: type) -> str:
    return _expect(value, str, "a string")


def _structure_int(value: object, _: type) -> int:
    return _expect(value, int, "an integer")


def _structure_bool(value: object, _: type) -> bool:
    return _expect(value, bool, "true or false")


def _decimal_text(value: Decimal) -> str:
    # Fixed-point text ("0.0000001", not "1E-7"): what JSON readers in other languages
    # parse, and equal to the original.
    return format(value, "f")


def _structure_decimal(value: object, _: type) -> Decimal:
    text = _expect(value, str, "a decimal string")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite decimal number")
    return number


def _unstructure_money(value: Money) -> dict[str, str]:
    return {"amount": _decimal_text(value.amount), "currency": str(value.currency.code)}


def _structure_money(value: object, _: type) -> Money:
    data = _expect(value, dict, "an object with amount and currency")
    amount = _structure_decimal(data["amount"], Decimal)
    currency = _expect(data["currency"], str, "a currency code")
    return FrozenMoney(amount, currency)


def _unstructure_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value} cannot be stored: salesflow needs aware ones")
    return value.isoformat()


def _structure_datetime(value: object, _: type) -> dt.datetime:
    moment = dt.datetime.fromisoformat(_expect(value, str, "an ISO 8601 datetime"))
    if moment.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no UTC offset")
    return moment


def _structure_date(value: object, _: type) -> dt.date:
    return dt.date.fromisoformat(_expect(value, str, "an ISO 8601 date"))


def _unstructure_timedelta(value: dt.timedelta) -> dict[str, int]:
    return {"days": value.days, "seconds": value.seconds, "microseconds": value.microseconds}


def _structure_timedelta(value: object, _: type) -> dt.timedelta:
    data = _expect(value, dict, "an object with days, seconds and microseconds")
    return dt.timedelta(
        days=_expect(data.get("days", 0), int, "whole days"),
        seconds=_expect(data.get("seconds", 0), int, "whole seconds"),
        microseconds=_expect(data.get("microseconds", 0), int, "whole microseconds"),
    )


#: relativedelta's relative fields (default 0) and absolute fields (default None).
_RELATIVE = ("years", "months", "days", "leapdays", "hours", "minutes", "seconds", "microseconds")
_ABSOLUTE = ("year", "month", "day", "hour", "minute", "second", "microsecond")


def _unstructure_relativedelta(value: relativedelta) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: getattr(value, name) for name in _RELATIVE if getattr(value, name)
    }
    data.update(
        (name, getattr(value, name)) for name in _ABSOLUTE if getattr(value, name) is not None
    )
    if value.weekday is not None:
        data["weekday"] = {"day": value.weekday.weekday, "n": value.weekday.n}
    return data


def _structure_relativedelta(value: object, _: type) -> relativedelta:
    data = _expect(value, dict, "an object of relativedelta fields")
    unknown = set(data) - {*_RELATIVE, *_ABSOLUTE, "weekday"}
    if unknown:
        raise ValueError(f"unknown relativedelta fields {sorted(unknown)}")
    fields: dict[str, Any] = {}
    for name, number in data.items():
        if name == "weekday":
            day = _expect(number, dict, "an object with day and n")
            n = day.get("n")
            fields[name] = weekday(
                _expect(day["day"], int, "a weekday 0..6"),
                None if n is None else _expect(n, int, "an integer n"),
            )
        elif not isinstance(number, int | float) or isinstance(number, bool):
            raise TypeError(f"relativedelta.{name}: expected a number, got {number!r}")
        else:
            fields[name] = number
    return FrozenDelta(**fields)


# -- customers: a tagged union -----------------------------------------------------

_CUSTOMERS: dict[str, type[Individual] | type[Organization]] = {
    "Individual": Individual,
    "Organization": Organization,
}


def _unstructure_customer(value: Individual | Organization) -> dict[str, str]:
    return {"type": type(value).__name__, "id": value.id, "name": value.name}


def _structure_customer(value: object, _: type) -> Individual | Organization:
    data = _expect(value, dict, "a customer object")
    tag = data.get("type")
    if tag not in _CUSTOMERS:
        raise ValueError(f"a customer needs type 'Individual' or 'Organization', got {tag!r}")
    cls = _CUSTOMERS[tag]
    return cls(
        id=_expect(data["id"], str, "a string id"), name=_expect(data["name"], str, "a name")
    )


def _structure_customer_as(
    cls: type[Individual] | type[Organization],
) -> Callable[[object, type], Individual | Organization]:
    def structure(value: object, tp: type) -> Individual | Organization:
        customer = _structure_customer(value, tp)
        if not isinstance(customer, cls):
            raise ValueError(f"expected type {cls.__name__!r}, got {type(customer).__name__!r}")
        return customer

    return structure


def _is_customer_union(tp: Any) -> bool:
    if get_origin(tp) not in (Union, types.UnionType):
        return False
    members = set(get_args(tp)) - {type(None)}
    return members == {Individual, Organization}


def _structure_customer_union(value: object, tp: Any) -> Individual | Organization | None:
    if value is None:
        if type(None) in get_args(tp):
            return None
        raise TypeError("expected a customer object, got null")
    return _structure_customer(value, tp)


# -- Event.details: tagged values ---------------------------------------------------

_ENUMS: tuple[type[enum.Enum], ...] = (
    StageKind,
    Status,
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Indicator,
    EventKind,
)
#: attrs classes a detail may hold, stored with the converter's own shape.
_RECORDS: tuple[type, ...] = (
    Individual,
    Organization,
    Related,
    LineItem,
    Note,
    StageAction,
    OpportunityAction,
    TicketRef,
    InvoiceLine,
    InvoiceDraft,
)
#: Values tagged with a name of their own; the exact type, not a subclass, is stored.
#: The frozen forms come last, so that a tag reads back as the form salesflow holds.
_SCALAR_TAGS: tuple[tuple[type, str], ...] = (
    (Money, "Money"),
    (dt.datetime, "datetime"),
    (dt.date, "date"),
    (dt.timedelta, "timedelta"),
    (relativedelta, "relativedelta"),
    (FrozenMoney, "Money"),
    (FrozenDelta, "relativedelta"),
)
_BY_TAG: dict[str, type] = {
    **{cls.__name__: cls for cls in (*_ENUMS, *_RECORDS)},
    **{tag: cls for cls, tag in _SCALAR_TAGS},
}


def _tag(tag: str, value: object) -> dict[str, Any]:
    return {"type": tag, "value": value}


def encode_detail(value: object) -> Any:
    """Encode one value of ``Event.details`` as JSON-ready data that keeps its type.

    ``None``, strings, integers and booleans stay as they are; every other value
    becomes ``{"type": <tag>, "value": <data>}``: ``Decimal``, ``float``, ``Money``,
    ``date``, ``datetime``, ``timedelta``, ``relativedelta``, salesflow's enums (tagged
    by class name), ``Individual``, ``Organization``, ``Related``, ``LineItem``,
    ``Note``, ``StageAction``, ``OpportunityAction``, ``TicketRef``, ``InvoiceLine``,
    ``InvoiceDraft``, and the containers ``tuple``,
    ``list`` and ``dict`` (string keys) of these. Anything else raises ``TypeError``.
    """
    kind = type(value)
    if kind in _AS_IS:
        return value
    if kind is tuple:
        return {"type": "tuple", "value": [encode_detail(item) for item in value]}  # type: ignore[attr-defined]
    if kind in _MAPPINGS:
        return _encode_mapping(value)  # type: ignore[arg-type]
    if kind in _ENUM_TYPES:
        return {"type": kind.__name__, "value": value.value}  # type: ignore[attr-defined]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return _tag("float", repr(value))
    if isinstance(value, Decimal):
        return _tag("Decimal", str(value))
    if isinstance(value, enum.Enum):
        if type(value) not in _ENUMS:
            raise TypeError(f"cannot store enum member {value!r}: not one of salesflow's enums")
        return _tag(type(value).__name__, value.value)
    if isinstance(value, tuple | list):
        return _tag(type(value).__name__, [encode_detail(item) for item in value])
    if isinstance(value, Mapping):
        return _encode_mapping(value)
    for cls, tag in _SCALAR_TAGS:
        if type(value) is cls:
            return _tag(tag, converter.unstructure(value))
    if type(value) in _RECORDS:
        return _tag(type(value).__name__, converter.unstructure(value))
    raise TypeError(f"cannot store a {type(value).__name__} value in event details: {value!r}")


#: The exact types :func:`encode_detail` keeps as they are, or encodes without asking
#: what else they are: the values most details hold.
_AS_IS: frozenset[type] = frozenset({type(None), str, bool, int})
_MAPPINGS: frozenset[type] = frozenset({dict, types.MappingProxyType, Details, Changes})
_ENUM_TYPES: frozenset[type] = frozenset(_ENUMS)


def _encode_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"cannot store mapping key {key!r}: keys must be strings")
        encoded[key] = encode_detail(item)
    return _tag("dict", encoded)


def decode_detail(data: Any) -> Any:
    """The inverse of :func:`encode_detail`."""
    return _decode(data, frozen=False)


def _decode(data: Any, *, frozen: bool) -> Any:
    """A tagged value decoded; ``frozen``: in the form an event holds it (every
    mapping read-only, every sequence a tuple, Money and relativedelta frozen)."""
    if data is None or isinstance(data, str | bool | int):
        return data
    if not isinstance(data, dict) or set(data) != {"type", "value"}:
        raise ValueError(f"expected a tagged value {{'type': ..., 'value': ...}}, got {data!r}")
    tag, payload = data["type"], data["value"]
    if tag in ("tuple", "list"):
        items = [_decode(item, frozen=frozen) for item in _expect(payload, list, "a JSON array")]
        return tuple(items) if tag == "tuple" or frozen else items
    if tag == "dict":
        mapping = {
            _expect(key, str, "a string key"): _decode(item, frozen=frozen)
            for key, item in _expect(payload, dict, "a JSON object").items()
        }
        return Details.frozen(mapping) if frozen else mapping
    if tag == "float":
        return float(_expect(payload, str, "a float's text"))
    if tag == "Decimal":
        number = _expect(payload, str, "a decimal string")
        try:
            return Decimal(number)
        except InvalidOperation:
            raise ValueError(f"{number!r} is not a decimal number") from None
    cls = _BY_TAG.get(tag)
    if cls is None:
        raise ValueError(f"unknown tag {tag!r} in event details")
    value: Any = converter.structure(payload, cls)
    if frozen and isinstance(value, Money | relativedelta):
        return freeze(value)
    return value


def _unstructure_details(details: Mapping[str, Any]) -> dict[str, Any]:
    return {_expect(key, str, "a string key"): encode_detail(v) for key, v in details.items()}


def _structure_details(value: object, _: Any) -> Frozen:
    data = _expect(value, dict, "an object of event details")
    return Frozen(Details.frozen({key: _decode(item, frozen=True) for key, item in data.items()}))


# -- shared stage actions ------------------------------------------------------------


def _key(data: object) -> object:
    """A hashable key for decoded JSON ``data``, telling apart what compares equal in
    Python but is stored differently (``1``, ``1.0`` and ``true``)."""
    if type(data) is dict:
        return (dict, tuple((name, _key(item)) for name, item in data.items()))
    if type(data) is list:
        return (list, tuple(_key(item) for item in data))
    return (type(data), data)


#: How many distinct stored stage actions are kept decoded; past it, the cache starts
#: again. A workspace's processes hold a few dozen.
_SHARED_MAX = 4096


def _shared(structure: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``structure`` decoding each distinct stored value once: an opportunity holds a
    copy of every stage action of its process, so the same few definitions are read
    again for every opportunity loaded. A decoded ``StageAction`` is immutable, so the
    opportunities read share it, as they share the process' own when created."""
    decoded: dict[object, Any] = {}

    def structure_shared(value: Any, cls: Any) -> Any:
        key = (cls, _key(value))
        found = decoded.get(key)
        if found is None:
            found = structure(value, cls)
            if len(decoded) >= _SHARED_MAX:
                decoded.clear()
            decoded[key] = found
        return found

    return structure_shared


# -- wiring ------------------------------------------------------------------------


def _configure(c: cattrs.Converter) -> None:
    c.register_structure_hook(str, _structure_str)
    c.register_structure_hook(int, _structure_int)
    c.register_structure_hook(bool, _structure_bool)
    c.register_unstructure_hook(Decimal, _decimal_text)
    c.register_structure_hook(Decimal, _structure_decimal)
    for money in (Money, FrozenMoney):
        c.register_unstructure_hook(money, _unstructure_money)
        c.register_structure_hook(money, _structure_money)
    c.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    c.register_structure_hook(dt.datetime, _structure_datetime)
    c.register_unstructure_hook(dt.date, dt.date.isoformat)
    c.register_structure_hook(dt.date, _structure_date)
    c.register_unstructure_hook(dt.timedelta, _unstructure_timedelta)
    c.register_structure_hook(dt.timedelta, _structure_timedelta)
    for delta in (relativedelta, FrozenDelta):
        c.register_unstructure_hook(delta, _unstructure_relativedelta)
        c.register_structure_hook(delta, _structure_relativedelta)
    for cls in (Individual, Organization):
        c.register_unstructure_hook(cls, _unstructure_customer)
        c.register_structure_hook(cls, _structure_customer_as(cls))
    c.register_structure_hook_func(_is_customer_union, _structure_customer_union)
    c.register_unstructure_hook(
        Event,
        cattrs.gen.make_dict_unstructure_fn(
            Event, c, details=cattrs.gen.override(unstruct_hook=_unstructure_details)
        ),
    )
    c.register_structure_hook(
        Event,
        cattrs.gen.make_dict_structure_fn(
            Event, c, details=cattrs.gen.override(struct_hook=_structure_details)
        ),
    )
    c.register_structure_hook(StageAction, _shared(c.get_structure_hook(StageAction)))


_configure(converter)


# -- JSON --------------------------------------------------------------------------


def describe_error(error: BaseException) -> str:
    """One line naming what was wrong where, for a decoding error from the converter."""
    if isinstance(error, cattrs.errors.BaseValidationError):
        return "; ".join(cattrs.transform_error(error, format_exception=_format))
    return _format(error, None)


def _format(error: BaseException, tp: type | None) -> str:
    if isinstance(error, KeyError):
        return format_exception(error, tp)
    return f"{type(error).__name__}: {error}"


def to_json(value: object, *, unstructure_as: Any = None, indent: int | None = None) -> str:
    """``value`` as JSON text, in the shapes of :data:`converter`."""
    data = converter.unstructure(value, unstructure_as=unstructure_as)
    return json.dumps(data, ensure_ascii=False, indent=indent)


@overload
def from_json(text: str | bytes, type_: type[T]) -> T: ...
@overload
def from_json(text: str | bytes, type_: Any) -> Any: ...
def from_json(text: str | bytes, type_: Any) -> Any:
    """Rebuild a ``type_`` value from JSON text made by :func:`to_json` (or a front end).

    Raises ``ValidationError`` naming the type and what was wrong where.
    """
    name = getattr(type_, "__name__", str(type_))
    try:
        value = converter.structure(json.loads(text), type_)
    except DECODE_ERRORS as error:
        raise ValidationError(f"Cannot read {name} from JSON: {describe_error(error)}") from error
    if isinstance(value, Event):  # text from outside: its details are checked as a caller's
        try:
            check_detail(value.details, "Event.details")
        except ValidationError as error:
            raise ValidationError(f"Cannot read {name} from JSON: {error}") from error
    return value


# -- stored records ----------------------------------------------------------------
# The repositories keep each record as JSON plus the columns that queries filter,
# sort or sum on. These helpers are shared by the adapters.

V = TypeVar("V", Opportunity, Activity)


def record_name(kind: str, key: str, workspace: str) -> str:
    """How errors name a stored record: ``opportunity 'o-1' (workspace 'main')``."""
    return f"{kind} {key!r} (workspace {workspace!r})"


def dump_record(value: Opportunity | Activity | Event | Process, record: str) -> str:
    """``value`` as compact JSON text for storage; ``StorageError`` naming ``record``
    when it holds something the converter cannot store. An event's JSON leaves its
    position out: the repository keeps that in a column of its own (see
    :func:`load_event`).

    Opportunities, activities and events are written straight from their fields:
    the very text the converter and ``json.dumps`` give, faster."""
    writer = _RECORD_WRITERS.get(type(value))
    try:
        if writer is not None:
            return writer(value)
        return _dump_generic(value)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise StorageError(f"{record} cannot be stored: {error}") from error


def dump_generic(value: Opportunity | Activity | Event | Process, record: str) -> str:
    """:func:`dump_record` through the converter and ``json.dumps`` alone: the
    reference that :func:`dump_text` must agree with, byte for byte."""
    try:
        return _dump_generic(value)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise StorageError(f"{record} cannot be stored: {error}") from error


def _dump_generic(value: object) -> str:
    data = converter.unstructure(value)
    if isinstance(value, Event):
        del data["position"]
    return _compact(data)


def _compact(data: object) -> str:
    """JSON text as salesflow stores it: no blanks, non-ASCII text as it is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def dump_text(value: Opportunity | Activity | Event) -> str:
    """The JSON text :func:`dump_record` stores for an opportunity, an activity or an
    event, written straight from the record's fields (see "writing JSON text" below);
    raises what the converter would (``TypeError``, ``ValueError``)."""
    return _RECORD_WRITERS[type(value)](value)


def load_record(data: str | bytes, type_: type[T], record: str) -> T:
    """Rebuild a stored record from its JSON; bad data raises ``StorageError`` naming
    ``record`` and what was wrong where."""
    try:
        return converter.structure(json.loads(data), type_)
    except DECODE_ERRORS as error:
        raise StorageError(f"Stored {record} cannot be read: {describe_error(error)}") from error


def load_event(data: str | bytes, position: int, record: str) -> Event:
    """Rebuild a stored event from its JSON and the position its row holds (which
    wins over any position in the JSON)."""
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise TypeError(f"expected a JSON object, got {type(fields).__name__}")
        fields["position"] = position
        event: Event = converter.structure(fields, Event)
    except DECODE_ERRORS as error:
        raise StorageError(f"Stored {record} cannot be read: {describe_error(error)}") from error
    return event


def load_versioned(rows: Iterable[Sequence[Any]], type_: type[V], workspace: str) -> list[V]:
    """Rebuild opportunities or activities from ``(id, version, data)`` rows; the JSON
    must agree with the row's id and version columns."""
    kind = "opportunity" if type_ is Opportunity else "activity"
    found = []
    for id_, version, data in rows:
        record = record_name(kind, id_, workspace)
        value = load_record(data, type_, record)
        if value.id != id_ or value.version != version:
            raise StorageError(
                f"Stored {record} is inconsistent: its data says id {value.id!r} at version "
                f"{value.version}, its row says version {version}"
            )
        found.append(value)
    return found


def search_text(opportunity: Opportunity) -> str:
    """What ``SearchQuery.text`` is looked for in: the title, description and customer
    name, joined by blanks and casefolded (see ``SearchQuery.matches``)."""
    customer = opportunity.customer
    return " ".join(
        (opportunity.title or "", opportunity.description, customer.name if customer else "")
    ).casefold()


def encode_row(value: Opportunity | Activity | Event, workspace: str) -> dict[str, Any]:
    """The row of a record, as Python values: workspace, id, version (not for events),
    the query columns (moments in UTC) and ``data``, its JSON text.

    An opportunity's query columns are what searches filter and sort on and what the
    pipeline sums: besides its stage, status, owner, dates and amounts, the
    probability in effect, the annual value (None when not set), ``sort_title`` (the
    display title, casefolded) and ``search_text`` (see :func:`search_text`). Its
    related records' ids are not a column: a repository keeps them beside the row.
    """
    if isinstance(value, Opportunity):
        record = record_name("opportunity", value.id, workspace)
        annual = value.annual_value
        columns: dict[str, Any] = {
            "workspace": workspace,
            "id": value.id,
            "version": value.version,
            "process": value.process,
            "stage": value.stage,
            "status": value.status.value,
            "owner": value.owner,
            "expected_close": value.expected_close,
            "closed_on": value.closed_on,
            "value_amount": value.value.amount,
            "value_currency": str(value.value.currency.code),
            "customer_id": value.customer.id if value.customer is not None else None,
            "created_at": _utc(value.created_at, record),
            "probability": value.probability,
            "annual_amount": annual.amount if annual is not None else None,
            "annual_currency": str(annual.currency.code) if annual is not None else None,
            "sort_title": value.display_title.casefold(),
            "search_text": search_text(value),
        }
    elif isinstance(value, Activity):
        record = record_name("activity", value.id, workspace)
        columns = {
            "workspace": workspace,
            "id": value.id,
            "version": value.version,
            "opportunity_id": value.opportunity_id,
            "status": value.status.value,
            "owner": value.owner,
            "due": _utc(value.due, record),
        }
    else:
        record = record_name("event", value.id, workspace)
        columns = {
            "workspace": workspace,
            "id": value.id,
            "opportunity_id": value.opportunity_id,
            "kind": value.kind.value,
            "at": _utc(value.at, record),
            "actor": value.actor,
        }
    columns["data"] = dump_record(value, record)
    return columns


def _utc(moment: dt.datetime, record: str) -> dt.datetime:
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError) as error:
        raise StorageError(f"{record}: {moment} has no UTC equivalent: {error}") from error


# -- writing JSON text -------------------------------------------------------------
# Storing records is most of what a commit costs in Python: the converter builds a
# dict of the record (with a copy of every stage action's definition, and a tagged
# pair for each changed field of an event), which json.dumps then walks again. The
# writers below write the same text straight from the fields, for the types the
# fields declare. A value of any other type is handed to the converter and
# json.dumps, alone, so the text is the converter's in every case: the JSON of an
# object is the JSON of its parts, joined. The unit tests compare the two over
# generated records.

#: json.dumps' own function for text (``ensure_ascii=False``): quoted and escaped.
_quoted: Callable[[str], str] = json.encoder.encode_basestring

_Writer = Callable[[Any], str]


def _through_converter(tp: Any) -> _Writer:
    """The writer of any value as a field of type ``tp``: the converter's text."""

    def write(value: Any) -> str:
        return _compact(converter.unstructure(value, unstructure_as=tp))

    return write


def _moment_text(value: dt.datetime) -> str:
    return '"' + _unstructure_datetime(value) + '"'  # ISO text needs no escaping


def _money_text(value: Money) -> str:
    data = _unstructure_money(value)
    return '{"amount":' + _quoted(data["amount"]) + ',"currency":' + _quoted(data["currency"]) + "}"


def _customer_text(value: Individual | Organization) -> str:
    data = _unstructure_customer(value)
    if type(data["id"]) is not str or type(data["name"]) is not str:
        return _compact(data)
    return f'{{"type":"{data["type"]}","id":{_quoted(data["id"])},"name":{_quoted(data["name"])}}}'


def _scalar_text(value: object) -> str:
    """A value kept as it is (an enum's value): text, or json.dumps' text of it."""
    return _quoted(value) if type(value) is str else _compact(value)


def _writer(tp: Any) -> _Writer:
    """The writer of a field declared as ``tp``."""
    fallback = _through_converter(tp)
    if tp is str:
        return lambda v: _quoted(v) if type(v) is str else fallback(v)
    if tp is int:
        return lambda v: int.__repr__(v) if type(v) is int else fallback(v)
    if tp is bool:
        return lambda v: "true" if v is True else "false" if v is False else fallback(v)
    if tp is dt.datetime:
        return lambda v: _moment_text(v) if type(v) is dt.datetime else fallback(v)
    if tp is dt.date:
        return lambda v: '"' + v.isoformat() + '"' if type(v) is dt.date else fallback(v)
    if tp is Money:
        return lambda v: _money_text(v) if type(v) in (FrozenMoney, Money) else fallback(v)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        texts = {member: _scalar_text(member.value) for member in tp}
        return lambda v: texts[v] if type(v) is tp else fallback(v)
    if tp is StageAction:
        return _stage_action_text
    if isinstance(tp, type) and attrs.has(tp):
        return _record_writer(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _writer(args[0])
        return lambda v: (
            ("[" + ",".join([item(i) for i in v]) + "]" if v else "[]")
            if type(v) is tuple
            else fallback(v)
        )
    if origin in (Union, types.UnionType) and type(None) in args:
        members = set(args) - {type(None)}
        if members == {Individual, Organization}:
            some: _Writer = lambda v: (  # noqa: E731
                _customer_text(v) if type(v) in (Individual, Organization) else fallback(v)
            )
        elif len(members) == 1:
            some = _writer(members.pop())
        else:
            return fallback
        return lambda v: "null" if v is None else some(v)
    return fallback


def _record_writer(cls: type, *, leave_out: str = "", **writers: _Writer) -> _Writer:
    """The writer of an attrs record of ``cls``: its fields in order as one JSON
    object, each by the writer of its declared type, or by ``writers[name]``;
    ``leave_out``, a field the text leaves out. The common cases of each field's
    writer (None, text, a number, an empty tuple) are written inline."""
    attrs.resolve_types(cls)
    scope: dict[str, Any] = {
        "_cls": cls,
        "_whole": _through_converter(cls),
        "_q": _quoted,
        "_r": int.__repr__,
    }
    lines = [
        "def write(v):",
        "    if type(v) is not _cls:",
        "        return _whole(v)",
    ]
    parts = []
    fields = [f for f in attrs.fields(cls) if f.name != leave_out]
    for n, field in enumerate(fields):
        writer = writers.get(field.name)
        scope[f"_w{n}"] = writer or _writer(field.type)
        lines.append(f"    a{n} = v.{field.name}")
        literal = ("{" if n == 0 else ",") + _quoted(field.name) + ":"
        expression = f"_w{n}(a{n})" if writer else _inline(field.type, f"a{n}", f"_w{n}")
        parts.append(literal.replace("{", "{{") + "{" + expression + "}")
    lines.append("    return f'''" + "".join(parts) + "}}'''")
    exec(compile("\n".join(lines), f"<write {cls.__qualname__}>", "exec"), scope)
    write: _Writer = scope["write"]
    return write


def _inline(tp: Any, name: str, writer: str) -> str:
    """The expression writing the field ``name`` of type ``tp``: its common cases
    inline, anything else by its ``writer``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType) and type(None) in args:
        members = set(args) - {type(None)}
        some = _inline(members.pop(), name, writer) if len(members) == 1 else f"{writer}({name})"
        return f'"null" if {name} is None else {some}'
    if tp is str:
        return f"_q({name}) if type({name}) is str else {writer}({name})"
    if tp is int:
        return f"_r({name}) if type({name}) is int else {writer}({name})"
    if tp is bool:
        return f'"true" if {name} is True else "false" if {name} is False else {writer}({name})'
    if origin is tuple:
        return f'"[]" if {name} == () else {writer}({name})'
    return f"{writer}({name})"


#: The text of each stage action definition written lately, by the identity of the
#: (immutable) definition, which the entry holds: the opportunities of a process share
#: its definitions, so each is written once rather than once per opportunity.
_STAGE_ACTIONS: dict[int, tuple[StageAction, str]] = {}


def _stage_action_text(value: Any) -> str:
    found = _STAGE_ACTIONS.get(id(value))
    if found is not None and found[0] is value:
        return found[1]
    text = _stage_action_fields(value)
    if len(_STAGE_ACTIONS) >= _SHARED_MAX:
        _STAGE_ACTIONS.clear()
    _STAGE_ACTIONS[id(value)] = (value, text)
    return text


_stage_action_fields = _record_writer(StageAction)


# -- event details, tagged --------------------------------------------------------


def _detail_text(value: Any) -> str:
    """The JSON text of :func:`encode_detail`'s data for ``value``."""
    writer = _DETAIL_WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    return _compact(encode_detail(value))


def _tuple_text(value: tuple[Any, ...]) -> str:
    if not value:
        return '{"type":"tuple","value":[]}'
    return '{"type":"tuple","value":[' + ",".join([_detail_text(i) for i in value]) + "]}"


def _enum_writer(kind: type[enum.Enum]) -> _Writer:
    """The writer of members of ``kind`` in details: each member's text made once."""
    head = '{"type":' + _quoted(kind.__name__) + ',"value":'
    texts = {member: head + _scalar_text(member.value) + "}" for member in kind}
    return texts.__getitem__


#: For each tuple of field names changes have: the text before each field's pair; the
#: same with a None old value; and the whole pair of two None values.
_PAIR_TEXTS: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}


def _pair_texts(names: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    found = _PAIR_TEXTS.get(names)
    if found is None:
        heads = tuple(_quoted(name) + ':{"type":"tuple","value":[' for name in names)
        found = (heads, tuple((head + "null,", head + "null,null]}") for head in heads))
        if len(_PAIR_TEXTS) >= _SHARED_MAX:
            _PAIR_TEXTS.clear()
        _PAIR_TEXTS[names] = found
    return found


def _changes_text(value: Changes) -> str:
    names, old, new = value._names, value._old, value._new
    heads, created = _pair_texts(names)
    write, quoted = _detail_text, _quoted
    if old is None:  # a creation: no old values, and most new ones None or text
        pairs = [
            nothing
            if after is None
            else start + (quoted(after) if type(after) is str else write(after)) + "]}"
            for (start, nothing), after in zip(created, new, strict=True)
        ]
    else:
        pairs = [
            head + write(before) + "," + write(after) + "]}"
            for head, before, after in zip(heads, old, new, strict=True)
        ]
    return '{"type":"dict","value":{' + ",".join(pairs) + "}}"


def _mapping_text(value: Mapping[Any, Any]) -> str:
    return '{"type":"dict","value":' + _object_text(value, encode_detail) + "}"


def _object_text(value: Mapping[Any, Any], generic: Callable[[Any], Any]) -> str:
    """A string-keyed mapping as a JSON object of tagged values; one with another key
    goes to ``generic``, which refuses it."""
    if type(value) is Details:
        items: Iterable[tuple[Any, Any]] = zip(value._keys, value._values, strict=True)
    else:
        items = value.items()
    parts = []
    for key, item in items:
        if type(key) is not str:
            return _compact(generic(value))
        parts.append(_quoted(key) + ":" + _detail_text(item))
    return "{" + ",".join(parts) + "}"


def _details_text(value: Any) -> str:
    """``Event.details`` as :func:`_unstructure_details` gives it."""
    if type(value) not in _MAPPINGS:
        return _compact(_unstructure_details(value))
    return _object_text(value, _unstructure_details)


def _tagged(tag: str, write: _Writer) -> _Writer:
    head = '{"type":' + _quoted(tag) + ',"value":'
    return lambda v: head + write(v) + "}"


_DETAIL_WRITERS: dict[type, _Writer] = {
    str: _quoted,
    type(None): lambda v: "null",
    bool: lambda v: "true" if v else "false",
    int: int.__repr__,
    tuple: _tuple_text,
    Changes: _changes_text,
    **dict.fromkeys(_MAPPINGS - {Changes}, _mapping_text),
    **{kind: _enum_writer(kind) for kind in _ENUMS},
    FrozenMoney: _tagged("Money", _money_text),
    Money: _tagged("Money", _money_text),
    dt.date: _tagged("date", lambda v: '"' + v.isoformat() + '"'),
    dt.datetime: _tagged("datetime", _moment_text),
    Individual: _tagged("Individual", _customer_text),
    Organization: _tagged("Organization", _customer_text),
}

#: The writer of each record type :func:`dump_record` writes without the converter.
_RECORD_WRITERS: dict[type, _Writer] = {
    Opportunity: _record_writer(Opportunity),
    Activity: _record_writer(Activity),
    Event: _record_writer(Event, leave_out="position", details=_details_text),
}
