"""The query side of a repository: what ``search`` and ``pipeline`` ask of it.

``SalesFlow`` checks a caller's arguments and turns them into a :class:`SearchQuery`
or a pipeline question; the repository answers in the database -- SQL over real
columns and indexes, decoding only the page it returns -- and the in-memory repository
in one pass with the functions here, which define what every answer must be:

- :meth:`SearchQuery.matches` and :meth:`SearchQuery.sort_key` say which
  opportunities a search finds and in which order;
- :func:`pipeline_totals` says what the pipeline's per-stage figures are: for each
  stage and currency, the number of opportunities that are not paused, the exact sum
  of their amounts, and the exact sum of amount x probability / 100;
- :class:`DealState` is what the reports read of one opportunity at one moment, and
  :func:`revision` says how history rebuilds it for a past moment;
- :func:`forecast_totals`, :func:`closed_deals` and :func:`stuck` say what the
  forecast, the analytics and the list of stuck deals are computed from.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs

from salesflow.domain.events import Event, EventKind
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.values import Status

__all__ = [
    "GROUPINGS",
    "ORDERINGS",
    "Basis",
    "ClosedDeal",
    "DealState",
    "ForecastQuery",
    "ForecastRow",
    "ForecastTotals",
    "Page",
    "PipelineTotals",
    "Revision",
    "SearchQuery",
    "StageTotal",
    "closed_deals",
    "first_changes",
    "forecast_totals",
    "pipeline_totals",
    "revised_forecast",
    "revised_pipeline",
    "revision",
    "state_of",
    "stuck",
    "unwind",
]

#: What ``search`` can order by; a leading ``-`` reverses the order.
ORDERINGS = ("expected_close", "created_at", "value", "title", "stage", "probability")

Basis = Literal["value", "annual_value"]


@attrs.frozen
class Page:
    """One page of search results and the number of matches in all."""

    items: tuple[Opportunity, ...]
    total: int


@attrs.frozen(kw_only=True)
class SearchQuery:
    """The filters, order and page of ``SalesFlow.search``, already checked.

    Every given filter must match. ``text`` matches the title, description and customer
    name, case-insensitively (``str.casefold``), as a literal substring. ``overdue``
    compares ``expected_close`` with ``today`` for open deals. ``order_by`` is one of
    :data:`ORDERINGS`, optionally with a leading ``-``; opportunities without a value
    to order by come last, and ties go by id. ``stage_order`` gives each (process,
    stage) its place in its process, for ``order_by="stage"``.
    """

    today: dt.date
    text: str | None = None
    process: str | None = None
    stages: frozenset[str] | None = None
    statuses: frozenset[Status] | None = None
    owner: str | None = None
    customer_id: str | None = None
    related_id: str | None = None
    close_from: dt.date | None = None
    close_to: dt.date | None = None
    overdue: bool | None = None
    order_by: str = "expected_close"
    limit: int = 50
    offset: int = 0
    stage_order: Mapping[tuple[str, str], int] = attrs.field(factory=dict)

    @property
    def descending(self) -> bool:
        return self.order_by.startswith("-")

    @property
    def order_key(self) -> str:
        return self.order_by.removeprefix("-")

    def matches(self, o: Opportunity) -> bool:
        """Whether ``o`` passes every filter of this query."""
        return all(test(o) for test in self._tests())

    def _tests(self) -> list[Callable[[Opportunity], bool]]:
        """One test per filter given, so that a pass over many opportunities evaluates
        only those; the most selective equalities come first."""
        tests: list[Callable[[Opportunity], bool]] = []
        if self.owner is not None:
            owner = self.owner
            tests.append(lambda o: o.owner == owner)
        if self.customer_id is not None:
            customer_id = self.customer_id
            tests.append(lambda o: o.customer is not None and o.customer.id == customer_id)
        if self.process is not None:
            process = self.process
            tests.append(lambda o: o.process == process)
        if self.stages is not None:
            stages = self.stages
            tests.append(lambda o: o.stage in stages)
        if self.statuses is not None:
            statuses = self.statuses
            tests.append(lambda o: o.status in statuses)
        if self.related_id is not None:
            related_id = self.related_id
            tests.append(lambda o: any(r.id == related_id for r in o.related))
        if self.close_from is not None:
            start = self.close_from
            tests.append(lambda o: o.expected_close is not None and o.expected_close >= start)
        if self.close_to is not None:
            end = self.close_to
            tests.append(lambda o: o.expected_close is not None and o.expected_close <= end)
        if self.overdue is not None:
            overdue, today = self.overdue, self.today
            tests.append(
                lambda o: (
                    (
                        o.status is Status.OPEN
                        and o.expected_close is not None
                        and o.expected_close < today
                    )
                    == overdue
                )
            )
        if self.text:
            needle = self.text.casefold()
            tests.append(lambda o: needle in _haystack(o))
        return tests

    def sort_value(self, o: Opportunity) -> Any:
        """What ``o`` is ordered by (None: it has no value and comes last)."""
        return self._value_of()(o)

    def _value_of(self) -> Callable[[Opportunity], Any]:
        """The function giving what an opportunity is ordered by."""
        key = self.order_key
        if key == "stage":
            places = self.stage_order
            return lambda o: places.get((o.process, o.stage))
        if key == "value":
            return lambda o: o.value.amount
        if key == "title":
            return lambda o: o.display_title.casefold()
        return operator.attrgetter(key)

    def sort_key(self, o: Opportunity) -> tuple[Any, ...]:
        """Where ``o`` goes in the answer: those with a value to order by first, by
        that value (reversed for a descending order), then those without; ties by id."""
        return self._sort_key()(o)

    def _sort_key(self) -> Callable[[Opportunity], tuple[Any, ...]]:
        value_of, descending = self._value_of(), self.descending

        def key(o: Opportunity) -> tuple[Any, ...]:
            value = value_of(o)
            if value is None:
                return (1, o.id)
            return (0, _Reversed(value) if descending else value, o.id)

        return key

    def page(self, opportunities: Iterable[Opportunity]) -> Page:
        """The page of ``opportunities`` this query asks for, in one pass: the matches
        are counted, and only the first ``offset + limit`` of them are ordered."""
        found = list(opportunities)
        for test in self._tests():
            found = [o for o in found if test(o)]
        wanted, key = self.offset + self.limit, self._sort_key()
        if wanted < len(found):
            first = heapq.nsmallest(wanted, found, key=key)
        else:
            first = sorted(found, key=key)
        return Page(items=tuple(first[self.offset : wanted]), total=len(found))


def _haystack(o: Opportunity) -> str:
    """The text a search's ``text`` is looked for in, case-folded."""
    customer = o.customer.name if o.customer else ""
    return f"{o.title or ''} {o.description} {customer}".casefold()


@functools.total_ordering
class _Reversed:
    """A value that orders the other way round, for a descending sort that still
    breaks ties by ascending id."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and bool(self.value == other.value)

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value)

    __hash__ = None  # type: ignore[assignment]


@attrs.frozen
class StageTotal:
    """The figures of the opportunities of one stage in one currency (paused ones left
    out): how many, the exact sum of their amounts, and the exact sum of amount x
    probability / 100 (each at its own probability in effect)."""

    stage: str
    currency: str
    count: int
    amount: Decimal
    weighted: Decimal


@attrs.frozen
class PipelineTotals:
    """A process' per-stage totals, and how many of its opportunities are paused."""

    rows: tuple[StageTotal, ...]
    paused: int


def pipeline_totals(
    states: Iterable[DealState | Opportunity], *, basis: Basis, owner: str | None = None
) -> PipelineTotals:
    """The totals of ``states`` (of one process), in one pass. With
    ``basis="annual_value"`` the amount is the annual value, or the value where none is
    set (or it is zero). Rows come ordered by stage key, then currency."""
    sums: dict[tuple[str, str], list[Any]] = {}
    paused = 0
    for s in states:
        if owner is not None and s.owner != owner:
            continue
        if s.status is Status.PAUSED:
            paused += 1
            continue
        # Read straight off an Opportunity too: no DealState is built for the live board.
        if isinstance(s, DealState):
            amount, code = s.value, s.currency
            if basis == "annual_value" and s.annual_value and s.annual_currency is not None:
                amount, code = s.annual_value, s.annual_currency
        else:
            money = s.annual_value if basis == "annual_value" and s.annual_value else s.value
            amount, code = money.amount, str(money.currency.code)
        row = sums.setdefault((s.stage, code), [0, Decimal(0), Decimal(0)])
        row[0] += 1
        row[1] += amount
        row[2] += amount * s.probability
    return PipelineTotals(
        rows=tuple(
            StageTotal(stage, currency, count, amount, weighted / 100)
            for (stage, currency), (count, amount, weighted) in sorted(sums.items())
        ),
        paused=paused,
    )


# -- the state of a deal at a moment -------------------------------------------------


@attrs.frozen(slots=True)
class DealState:
    """What the reports read of one opportunity, as it stood at one moment.

    ``value`` is an amount in ``currency``, ``annual_value`` one in
    ``annual_currency`` (both None when no annual value is set); ``probability`` is the
    probability in effect.
    """

    id: str
    process: str
    stage: str
    status: Status
    owner: str | None
    currency: str
    value: Decimal
    annual_value: Decimal | None
    annual_currency: str | None
    probability: int
    expected_close: dt.date | None
    closed_on: dt.date | None
    created_at: dt.datetime


#: The fields of :class:`DealState` that history records in ``details["changes"]``.
STATE_FIELDS = (
    "stage",
    "status",
    "owner",
    "value",
    "annual_value",
    "probability",
    "expected_close",
    "closed_on",
)


def state_of(o: Opportunity) -> DealState:
    """The state of an opportunity as it stands."""
    annual = o.annual_value
    return DealState(
        id=o.id,
        process=o.process,
        stage=o.stage,
        status=o.status,
        owner=o.owner,
        currency=str(o.value.currency.code),
        value=o.value.amount,
        annual_value=None if annual is None else annual.amount,
        annual_currency=None if annual is None else str(annual.currency.code),
        probability=o.probability,
        expected_close=o.expected_close,
        closed_on=o.closed_on,
        created_at=o.created_at,
    )


@attrs.frozen
class Revision:
    """What a report as of a past moment changes in the live one: the opportunities
    history shows changed (or created) after the moment, each as it stands (``now``)
    and as it stood then (``then``; only those created by then). Every other
    opportunity stands as it did then. An opportunity with no history at all counts as
    always having been as it is."""

    now: tuple[DealState, ...] = ()
    then: tuple[DealState, ...] = ()


def first_changes(later: Iterable[Mapping[str, tuple[Any, Any]]]) -> dict[str, Any]:
    """For each report field the ``changes`` of ``later`` events (oldest first) touch,
    the old value of the first change: the value it had before them."""
    earlier: dict[str, Any] = {}
    for changes in later:
        for name, (old, _) in changes.items():
            if name in STATE_FIELDS and name not in earlier:
                earlier[name] = old
    return earlier


def unwind(fields: dict[str, Any], earlier: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a :class:`DealState` as it stood before later events
    changed it, from ``fields`` as it stands (changed in place), ``earlier`` being the
    :func:`first_changes` of those events."""
    for name, old in earlier.items():
        if name == "value":
            fields["value"] = old.amount
            fields["currency"] = str(old.currency.code)
        elif name == "annual_value":
            fields["annual_value"] = None if old is None else old.amount
            fields["annual_currency"] = None if old is None else str(old.currency.code)
        elif name in STATE_FIELDS:
            fields[name] = old
    return fields


def revision(histories: Iterable[tuple[Opportunity, Sequence[Event]]], at: dt.datetime) -> Revision:
    """The :class:`Revision` of ``at`` from each opportunity with its history."""
    now: list[DealState] = []
    then: list[DealState] = []
    for opportunity, events in histories:
        later = [e for e in events if e.at > at]
        if not later:
            continue
        current = state_of(opportunity)
        now.append(current)
        if any(e.kind is EventKind.CREATED for e in later):
            continue
        fields = attrs.asdict(current, recurse=False)
        then.append(DealState(**unwind(fields, first_changes(e.changes for e in later))))
    return Revision(tuple(now), tuple(then))


def revised_pipeline(
    live: PipelineTotals, now: PipelineTotals, then: PipelineTotals
) -> PipelineTotals:
    """The live totals with the changed opportunities taken out as they are and put
    back as they were (sums are exact, so this equals summing the states then)."""
    sums: dict[tuple[str, str], list[Any]] = {}
    for totals, sign in ((live, 1), (now, -1), (then, 1)):
        for r in totals.rows:
            row = sums.setdefault((r.stage, r.currency), [0, Decimal(0), Decimal(0)])
            row[0] += sign * r.count
            row[1] += sign * r.amount
            row[2] += sign * r.weighted
    return PipelineTotals(
        rows=tuple(
            StageTotal(stage, currency, count, amount, weighted)
            for (stage, currency), (count, amount, weighted) in sorted(sums.items())
            if count
        ),
        paused=live.paused - now.paused + then.paused,
    )


# -- forecast ------------------------------------------------------------------------

#: What ``forecast`` can group its rows by.
GROUPINGS = ("owner", "stage", "month")


@attrs.frozen(kw_only=True)
class ForecastQuery:
    """The period (inclusive), filters and grouping of a forecast, already checked.

    An opportunity counts as open in the period when its status is OPEN (a paused one
    does not) and its ``expected_close`` is within [start, end]; as won when its status
    is WON and its ``closed_on`` is within the period. ``group_by="month"`` groups by
    the month of that date (``"YYYY-MM"``). With ``deals``, the answer lists each open
    deal of the period too (for a simulation).
    """

    start: dt.date
    end: dt.date
    process: str | None = None
    owner: str | None = None
    group_by: str | None = None
    deals: bool = False

    def group(self, state: DealState | Opportunity, day: dt.date) -> str | None:
        if self.group_by == "owner":
            return state.owner
        if self.group_by == "stage":
            return state.stage
        if self.group_by == "month":
            return f"{day.year:04d}-{day.month:02d}"
        return None

    def selects(self, state: DealState | Opportunity) -> bool:
        return (self.process is None or state.process == self.process) and (
            self.owner is None or state.owner == self.owner
        )


@attrs.frozen
class ForecastRow:
    """The figures of one group and currency: open deals (count, exact sum of values,
    exact sum of value x probability / 100) and won deals (count, exact sum)."""

    group: str | None
    currency: str
    count: int
    amount: Decimal
    weighted: Decimal
    won_count: int
    won: Decimal


@attrs.frozen
class ForecastTotals:
    """A forecast's rows, ordered by group (None first), then currency; with
    ``ForecastQuery.deals``, each open deal as (currency, value, probability)."""

    rows: tuple[ForecastRow, ...]
    deals: tuple[tuple[str, Decimal, int], ...] = ()


def forecast_totals(
    states: Iterable[DealState | Opportunity], query: ForecastQuery
) -> ForecastTotals:
    """The forecast's figures of ``states``, in one pass."""
    sums: dict[tuple[str | None, str], list[Any]] = {}
    deals: list[tuple[str, Decimal, int]] = []
    for s in states:
        if not query.selects(s):
            continue
        if s.status is Status.OPEN:
            day = s.expected_close
            if day is None or not query.start <= day <= query.end:
                continue
            value, code = _value(s)
            row = sums.setdefault((query.group(s, day), code), _empty_row())
            row[0] += 1
            row[1] += value
            row[2] += value * s.probability
            if query.deals:
                deals.append((code, value, s.probability))
        elif s.status is Status.WON:
            day = s.closed_on
            if day is None or not query.start <= day <= query.end:
                continue
            value, code = _value(s)
            row = sums.setdefault((query.group(s, day), code), _empty_row())
            row[3] += 1
            row[4] += value
    return ForecastTotals(
        rows=tuple(
            ForecastRow(group, currency, n, amount, weighted / 100, won_n, won)
            for (group, currency), (n, amount, weighted, won_n, won) in sorted(
                sums.items(), key=lambda item: (item[0][0] is not None, item[0])
            )
        ),
        deals=tuple(sorted(deals)),
    )


def revised_forecast(
    live: ForecastTotals, now: ForecastTotals, then: ForecastTotals
) -> ForecastTotals:
    """The live forecast with the changed opportunities taken out as they are and put
    back as they were (their deals too)."""
    sums: dict[tuple[str | None, str], list[Any]] = {}
    for totals, sign in ((live, 1), (now, -1), (then, 1)):
        for r in totals.rows:
            row = sums.setdefault((r.group, r.currency), _empty_row())
            row[0] += sign * r.count
            row[1] += sign * r.amount
            row[2] += sign * r.weighted
            row[3] += sign * r.won_count
            row[4] += sign * r.won
    deals = Counter(live.deals)
    deals.subtract(now.deals)
    deals.update(then.deals)
    return ForecastTotals(
        rows=tuple(
            ForecastRow(group, currency, n, amount, weighted, won_n, won)
            for (group, currency), (n, amount, weighted, won_n, won) in sorted(
                sums.items(), key=lambda item: (item[0][0] is not None, item[0])
            )
            if n or won_n
        ),
        deals=tuple(sorted(deals.elements())),
    )


def _value(s: DealState | Opportunity) -> tuple[Decimal, str]:
    """The value of a state or an opportunity, as an amount and its currency."""
    if isinstance(s, DealState):
        return s.value, s.currency
    return s.value.amount, str(s.value.currency.code)


def _empty_row() -> list[Any]:
    return [0, Decimal(0), Decimal(0), 0, Decimal(0)]


# -- analytics -----------------------------------------------------------------------


@attrs.frozen
class ClosedDeal:
    """What analytics read of one closed opportunity: whether it was won, its value,
    when it was created and closed, its loss reason, and ``path``: each stage it
    entered, with when, oldest first (its first stage at its creation)."""

    id: str
    won: bool
    currency: str
    value: Decimal
    created_at: dt.datetime
    closed_on: dt.date
    loss_reason: str | None
    path: tuple[tuple[dt.datetime, str], ...]


def stage_path(events: Iterable[Event]) -> tuple[tuple[dt.datetime, str], ...]:
    """The stages one opportunity entered, with when: its ``CREATED`` stage and the
    ``to`` of each ``STAGE_CHANGED``, in history order."""
    path: list[tuple[dt.datetime, str]] = []
    for event in events:
        if event.kind is EventKind.CREATED:
            path.append((event.at, event.details["stage"]))
        elif event.kind is EventKind.STAGE_CHANGED:
            path.append((event.at, event.details["to"]))
    return tuple(path)


def closed_deals(
    opportunities: Iterable[Opportunity],
    history: Callable[[str], Iterable[Event]],
    *,
    process: str,
    start: dt.date | None,
    end: dt.date | None,
) -> list[ClosedDeal]:
    """The won and lost opportunities of ``process`` whose ``closed_on`` is within
    [start, end] (either bound may be open), ordered by id."""
    found = []
    for o in opportunities:
        if o.process != process or o.status not in (Status.WON, Status.LOST):
            continue
        day = o.closed_on
        if day is None or (start is not None and day < start) or (end is not None and day > end):
            continue
        found.append(
            ClosedDeal(
                id=o.id,
                won=o.status is Status.WON,
                currency=str(o.value.currency.code),
                value=o.value.amount,
                created_at=o.created_at,
                closed_on=day,
                loss_reason=o.loss_reason if o.status is Status.LOST else None,
                path=stage_path(history(o.id)),
            )
        )
    return sorted(found, key=lambda d: d.id)


# -- stuck ---------------------------------------------------------------------------


def stuck(
    opportunities: Iterable[Opportunity], *, process: str, cutoffs: Mapping[str, dt.datetime]
) -> list[Opportunity]:
    """The open opportunities of ``process`` in a stage of ``cutoffs`` that they
    entered before that stage's cutoff, oldest entry first (then by id)."""
    found = [
        o
        for o in opportunities
        if o.process == process
        and o.status is Status.OPEN
        and o.stage in cutoffs
        and o.stage_entered_at < cutoffs[o.stage]
    ]
    return sorted(found, key=lambda o: (o.stage_entered_at, o.id))
