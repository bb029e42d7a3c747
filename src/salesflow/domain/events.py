"""What happened to an opportunity: the history every command records."""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta
from moneyed import Money

from salesflow.domain import checks
from salesflow.domain.revision import reviser
from salesflow.errors import ValidationError

__all__ = [
    "POSITION_MAX",
    "Changes",
    "Details",
    "Event",
    "EventKind",
    "check_detail",
    "contributors",
    "packed",
    "unpacked",
]


class EventKind(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    PROBABILITY_SET = "probability_set"
    STAGE_CHANGED = "stage_changed"
    REOPENED = "reopened"
    PAUSED = "paused"
    RESUMED = "resumed"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    CLAIMED = "claimed"
    ACTION_ADDED = "action_added"
    ACTION_REMOVED = "action_removed"
    ACTION_PERFORMED = "action_performed"
    ACTION_COMPLETED = "action_completed"
    ACTIVITY_SCHEDULED = "activity_scheduled"
    ACTIVITY_COMPLETED = "activity_completed"
    ACTIVITY_CANCELLED = "activity_cancelled"
    ACTIVITY_DELETED = "activity_deleted"
    NOTE_ADDED = "note_added"
    LINE_ITEM_ADDED = "line_item_added"
    LINE_ITEM_REMOVED = "line_item_removed"
    INVOICED = "invoiced"
    TICKET_LINKED = "ticket_linked"


#: Types whose values are immutable and hold nothing mutable: ``freeze`` keeps them.
_IMMUTABLE: frozenset[type] = frozenset(
    {type(None), str, int, bool, float, Decimal, dt.date, dt.datetime, dt.timedelta}
)


#: Interned tuples of changed field names: most events change the same few fields.
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


class Changes(Mapping[str, tuple[Any, Any]]):
    """The read-only ``{field: (old, new)}`` of an event, held compactly: the field
    names (a tuple shared by every event changing the same fields), and the old and
    new values as two tuples -- no old values at all for a creation, where every old
    value is None. It reads, compares and is stored like any other mapping."""

    __slots__ = ("_names", "_new", "_old")

    def __init__(
        self, names: tuple[str, ...], old: tuple[Any, ...] | None, new: tuple[Any, ...]
    ) -> None:
        if len(new) != len(names) or (old is not None and len(old) != len(names)):
            raise ValidationError("Changes: one old and one new value per field name")
        if len(_NAMES) < 4096:
            names = _NAMES.setdefault(names, names)
        put = object.__setattr__
        put(self, "_names", names)
        put(self, "_old", None if old is None else tuple(freeze(value) for value in old))
        put(self, "_new", tuple(freeze(value) for value in new))

    _names: tuple[str, ...]
    _old: tuple[Any, ...] | None
    _new: tuple[Any, ...]

    @classmethod
    def frozen(
        cls, names: tuple[str, ...], old: tuple[Any, ...] | None, new: tuple[Any, ...]
    ) -> Changes:
        """Changes of values frozen already (the fields of a record, which hold only
        immutable values), taken as they are."""
        if len(new) != len(names) or (old is not None and len(old) != len(names)):
            raise ValidationError("Changes: one old and one new value per field name")
        if len(_NAMES) < 4096:
            names = _NAMES.setdefault(names, names)
        changes = cls.__new__(cls)
        put = object.__setattr__
        put(changes, "_names", names)
        put(changes, "_old", old)
        put(changes, "_new", new)
        return changes

    def __getitem__(self, name: str) -> tuple[Any, Any]:
        try:
            i = self._names.index(name)
        except ValueError:
            raise KeyError(name) from None
        return (None if self._old is None else self._old[i], self._new[i])

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if (
            type(other) is Changes
            and self._names == other._names
            and self._new == other._new
            and self._old == other._old
        ):
            return True
        return super().__eq__(other)

    def __hash__(self) -> int:  # read-only all the way down, so it can be hashed
        return hash(frozenset(self.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Changes are read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Changes are read-only: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[Changes], tuple[Any, ...]]:
        return (Changes, (self._names, self._old, self._new))

    def __repr__(self) -> str:
        return f"Changes({dict(self.items())!r})"


#: Interned tuples of detail keys: events of one kind have the same few keys.
_KEYS: dict[tuple[Any, ...], tuple[Any, ...]] = {}


class Details(Mapping[str, Any]):
    """An event's read-only details, held compactly: the keys (a tuple shared by the
    events with the same keys) and the values, frozen, in a tuple. It reads, compares
    and is stored like any other mapping."""

    __slots__ = ("_keys", "_values")

    _keys: tuple[str, ...]
    _values: tuple[Any, ...]

    def __init__(self, items: Mapping[str, Any]) -> None:
        """Details of a caller's values: each checked (``check_detail``) and frozen;
        ``"changes"``, when there, must be ``{field: (old, new)}``."""
        check_detail(items, "Event.details")
        changes = items.get("changes", {})
        if not isinstance(changes, Mapping) or not all(
            isinstance(pair, tuple | list) and len(pair) == 2 for pair in changes.values()
        ):
            raise ValidationError(
                f"Event.details['changes']: must map each field to (old, new), got {changes!r}"
            )
        self._fill(items)

    def _fill(self, items: Mapping[str, Any]) -> None:
        keys = tuple(items)
        if len(_KEYS) < 4096:
            keys = _KEYS.setdefault(keys, keys)
        put = object.__setattr__
        put(self, "_keys", keys)
        put(self, "_values", tuple(map(freeze, items.values())))

    @classmethod
    def checked(cls, items: Mapping[str, Any]) -> Details:
        """Details of values the domain built from checked ones: frozen, not checked
        again."""
        details = cls.__new__(cls)
        details._fill(items)
        return details

    @classmethod
    def frozen(cls, items: Mapping[str, Any]) -> Details:
        """Details of values frozen already, all the way down (as decoding stored JSON
        builds them), taken as they are."""
        details = cls.__new__(cls)
        keys = tuple(items)
        if len(_KEYS) < 4096:
            keys = _KEYS.setdefault(keys, keys)
        put = object.__setattr__
        put(details, "_keys", keys)
        put(details, "_values", tuple(items.values()))
        return details

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if type(other) is Details and self._keys == other._keys:
            return self._values == other._values
        return super().__eq__(other)  # in any order, as dicts compare

    def __hash__(self) -> int:  # read-only all the way down, so it can be hashed
        return hash(frozenset(self.items()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Event details are read-only: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Event details are read-only: cannot delete {name!r}")

    def __reduce__(self) -> tuple[type[Details], tuple[Any, ...]]:
        return (Details, (dict(zip(self._keys, self._values, strict=True)),))

    def __repr__(self) -> str:
        return f"Details({dict(self.items())!r})"


def freeze(value: Any) -> Any:
    """``value`` with every mapping made read-only (a :class:`Details`), every list a
    tuple and every ``Money`` or ``relativedelta`` the frozen form, all the way down:
    what an event holds can be read, never changed (and can be pickled)."""
    kind = type(value)
    if (
        kind in _IMMUTABLE
        or kind is checks.FrozenMoney
        or kind is Changes
        or kind is Details
        or isinstance(value, enum.Enum)
    ):
        return value
    if isinstance(value, Money) and not isinstance(value, checks.FrozenMoney):
        return checks.FrozenMoney(value.amount, value.currency)
    if isinstance(value, relativedelta):
        return checks.frozen_delta(value, "Event.details")
    if isinstance(value, Mapping):
        return Details.checked(value)
    if isinstance(value, list | tuple):
        items = [freeze(item) for item in value]
        if type(value) is tuple and all(a is b for a, b in zip(items, value, strict=True)):
            return value  # already frozen all the way down: keep it, rather than a copy
        return tuple(items)
    return value


@attrs.frozen
class Frozen:
    """Event details already frozen all the way down -- as decoding stored JSON builds
    them -- which an ``Event`` takes as they are instead of walking them again."""

    details: Details


def _details(value: object) -> Mapping[str, Any]:
    """An ``Event``'s details from a caller: checked and frozen."""
    if type(value) is Frozen:
        return value.details
    if type(value) is Details:
        return value
    if not isinstance(value, Mapping):
        raise ValidationError(f"Event.details: expected a mapping, got {value!r}")
    return Details(value)


#: The kinds of value event details may hold besides text, numbers, mappings and
#: sequences: each is checked by its own constructor, or immutable and always valid.
_VALUE_TYPES: tuple[type, ...] = (dt.timedelta, relativedelta, enum.Enum)


def check_detail(value: object, where: str) -> None:
    """Raise ``ValidationError`` naming ``where`` unless ``value`` is something every
    repository stores and reads back as it is: None, text (UTF-8, no NUL), a bool, an
    int, a finite float or Decimal, a date, an aware datetime, Money, a timedelta, a
    relativedelta, a salesflow enum member or record, or a list, tuple or
    string-keyed mapping of these."""
    kind = type(value)
    if value is None or kind is bool:
        return
    if kind is int:
        if not -POSITION_MAX - 1 <= value <= POSITION_MAX:  # type: ignore[operator]
            raise ValidationError(f"{where}: a whole number must fit in 64 bits, got {value}")
        return
    if kind is str:
        checks.text(value, where, limit=checks.TEXT_MAX)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{where}: keys must be text, got {key!r}")
            checks.text(key, f"{where}: a key", limit=checks.NAME_MAX)
            check_detail(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_detail(item, f"{where}[{i}]")
    elif isinstance(value, float | Decimal):
        if not (value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)):
            raise ValidationError(f"{where}: must be a finite number, got {value!r}")
    elif isinstance(value, dt.datetime):
        checks.aware(value, where)
    elif isinstance(value, dt.date):
        checks.day(value, where)
    elif isinstance(value, Money):
        checks.money(value, where, negative=True)
    elif isinstance(value, _VALUE_TYPES) and (
        not isinstance(value, enum.Enum) or type(value).__module__.startswith("salesflow.")
    ):
        return
    elif attrs.has(kind) and kind.__module__.startswith("salesflow.domain."):
        return  # a record: its constructor checked it
    else:
        raise ValidationError(
            f"{where}: cannot hold a {kind.__name__} value ({value!r}); details hold "
            "text, numbers, dates, Money, salesflow's values, and lists and mappings of these"
        )


#: The largest position an event can have (what a signed 64-bit column holds).
POSITION_MAX = 2**63 - 1


def _position(value: object, where: str) -> int:
    return checks.integer(value, where, 0, POSITION_MAX)


@attrs.frozen
class Event:
    """One entry of an opportunity's history.

    ``details`` is a read-only mapping of what the event concerns. Every event that
    changed fields of the opportunity has ``details["changes"]``: ``{field: (old,
    new)}``; a ``CREATED`` event lists every field with ``None`` as the old value, so
    that folding the changes of the events up to a moment rebuilds the opportunity as
    it stood then. ``STAGE_CHANGED`` also has ``"from"`` and ``"to"`` (stage keys);
    activity and action events have ``"activity_id"`` / ``"action_id"``.

    ``position`` is the event's place in the workspace's change feed (see
    ``SalesFlow.changes``).
    """

    id: str = attrs.field(validator=checks.validator(checks.name))
    kind: EventKind = attrs.field(
        validator=checks.validator(checks.instance_of(EventKind, "an EventKind"))
    )
    opportunity_id: str | None = attrs.field(validator=checks.validator(checks.optional_name))
    at: dt.datetime = attrs.field(validator=checks.validator(checks.aware))
    actor: str | None = attrs.field(
        converter=checks.stripped, validator=checks.validator(checks.optional_name)
    )
    details: Mapping[str, Any] = attrs.field(factory=dict, converter=_details)
    #: Its place in the workspace's commit order, given by the repository when the
    #: event is committed: 1 for the first event of a workspace, then increasing in the
    #: order the commands committed (0 until then). Equality leaves it out: an event is
    #: what happened, its position where the feed holds it.
    position: int = attrs.field(
        default=0,
        kw_only=True,
        eq=False,
        validator=checks.validator(_position),
    )

    def numbered(self, position: int) -> Event:
        """This event at ``position`` in the feed: what a repository hands out once it
        has committed it. A copy sharing the (read-only) details, so numbering costs
        no re-validation."""
        if type(position) is not int or not 0 <= position <= POSITION_MAX:
            _position(position, "Event.position")  # raises, naming the rule
        return _copy(self, position=position)

    @property
    def changes(self) -> Mapping[str, tuple[Any, Any]]:
        """The fields this event changed, each as ``(old, new)``."""
        changes: Mapping[str, tuple[Any, Any]] = self.details.get("changes", {})
        return changes


def recorded(
    *,
    id: str,
    kind: EventKind,
    opportunity_id: str | None,
    at: dt.datetime,
    actor: str | None,
    details: Mapping[str, Any],
) -> Event:
    """The event a command records, of values the domain has checked already (a new id
    and the actor checked at the boundary, the clock's checked time, an opportunity's
    id): built without running the field validators again, its details frozen as
    ``Event`` freezes them. Anything else builds an ``Event``, which checks every
    field."""
    return _copy(
        _BLANK,
        id=id,
        kind=kind,
        opportunity_id=opportunity_id,
        at=at,
        actor=actor,
        details=Details.checked(details),
    )


#: Copies an event without running its validators (see :func:`revised`).
_copy = reviser(Event)

#: An event copied by :func:`recorded`, which sets every field of the copy.
_BLANK = Event(
    id="-",
    kind=EventKind.CREATED,
    opportunity_id=None,
    at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    actor=None,
)


#: An event as a repository that keeps events in memory may hold it: one flat tuple,
#: ``(id, kind, opportunity_id, at, actor, detail keys, *detail values)``. The id is
#: an int when it is 32 lowercase hexadecimal digits (a uuid4 hex: 48 bytes instead
#: of 81); the position is where the repository keeps the tuple.
Packed = tuple[Any, ...]


def packed(event: Event) -> Packed:
    """``event`` as one flat tuple, which :func:`unpacked` turns back into an equal
    event: about half the memory of the ``Event`` and its details."""
    details = event.details
    if type(details) is not Details:  # an Event always holds Details; be safe anyway
        details = Details.frozen(details)
    return (
        _packed_id(event.id),
        event.kind,
        event.opportunity_id,
        event.at,
        event.actor,
        details._keys,
        *details._values,
    )


def unpacked(entry: Packed, position: int) -> Event:
    """The event :func:`packed` made ``entry`` of, at ``position`` in the feed."""
    details = Details.__new__(Details)
    put = object.__setattr__
    put(details, "_keys", entry[5])
    put(details, "_values", entry[6:])
    id_ = entry[0]
    return _copy(
        _BLANK,
        id=_HEX % id_ if type(id_) is int else id_,
        kind=entry[1],
        opportunity_id=entry[2],
        at=entry[3],
        actor=entry[4],
        details=details,
        position=position,
    )


_HEX = "%032x"


def _packed_id(id_: str) -> str | int:
    """An id of 32 lowercase hexadecimal digits as the number they write; any other
    as it is."""
    if len(id_) == 32:
        try:
            number = int(id_, 16)
        except ValueError:
            return id_
        if _HEX % number == id_:  # no capitals, signs, underscores or blanks
            return number
    return id_


def contributors(history: Iterable[Event]) -> tuple[str, ...]:
    """Who worked on a deal, from its history (seed 002's assignment history): every
    user who ran a command on it and every user it was assigned to or whose team it
    had, each once, in the order they first appear."""
    people: dict[str, None] = {}
    for event in history:
        if event.actor is not None:
            people.setdefault(event.actor)
        changes = event.changes
        if "owner" in changes and changes["owner"][1] is not None:
            people.setdefault(changes["owner"][1])
        if "team" in changes:
            for member in changes["team"][1] or ():
                people.setdefault(member)
    return tuple(people)
