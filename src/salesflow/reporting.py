"""Queries and reports over opportunities: search and the stage summaries of the board.

Pure functions of the opportunities they are given; ``SalesFlow`` loads them and
passes the time and the currency conversion in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs
from moneyed import Money

from salesflow.domain.opportunity import Opportunity
from salesflow.domain.process import Process, Stage
from salesflow.domain.values import StageKind, Status, round_money
from salesflow.errors import CurrencyMismatch, ValidationError

__all__ = [
    "ORDERINGS",
    "Page",
    "Pipeline",
    "Search",
    "StageSummary",
    "pipeline",
]

#: What ``search`` can order by; a leading ``-`` reverses the order.
ORDERINGS = ("expected_close", "created_at", "value", "title", "stage", "probability")

Basis = Literal["value", "annual_value"]
ProbabilitySource = Literal["opportunity", "stage"]


@attrs.frozen
class Page:
    """One page of search results and the number of matches in all."""

    items: tuple[Opportunity, ...]
    total: int


def _set_or_none(values: Iterable[Any] | None) -> frozenset[Any] | None:
    return frozenset(values) if values is not None else None


@attrs.frozen(kw_only=True)
class Search:
    """The filters of ``SalesFlow.search``; every given filter must match."""

    today: dt.date
    text: str | None = None
    stages: Collection[str] | None = attrs.field(default=None, converter=_set_or_none)
    statuses: Collection[Status] | None = attrs.field(default=None, converter=_set_or_none)
    owner: str | None = None
    customer_id: str | None = None
    related_id: str | None = None
    close_from: dt.date | None = None
    close_to: dt.date | None = None
    overdue: bool | None = None

    def matches(self, o: Opportunity) -> bool:
        if self.text:
            haystack = " ".join(
                (o.title or "", o.description, o.customer.name if o.customer else "")
            )
            if self.text.casefold() not in haystack.casefold():
                return False
        close = o.expected_close
        is_overdue = o.status is Status.OPEN and close is not None and close < self.today
        return (
            (self.stages is None or o.stage in self.stages)
            and (self.statuses is None or o.status in self.statuses)
            and (self.owner is None or o.owner == self.owner)
            and (
                self.customer_id is None
                or (o.customer is not None and o.customer.id == self.customer_id)
            )
            and (self.related_id is None or any(r.id == self.related_id for r in o.related))
            and (self.close_from is None or (close is not None and close >= self.close_from))
            and (self.close_to is None or (close is not None and close <= self.close_to))
            and (self.overdue is None or is_overdue == self.overdue)
        )

    def page(
        self,
        opportunities: Iterable[Opportunity],
        *,
        order_by: str,
        limit: int,
        offset: int,
        stage_order: Mapping[tuple[str, str], int],
    ) -> Page:
        """The matches ordered by ``order_by`` (those without a value last, ties by id);
        ``stage_order`` gives each (process, stage) its place in its process."""
        descending = order_by.startswith("-")
        key = order_by.removeprefix("-")
        if key not in ORDERINGS:
            raise ValidationError(f"search: cannot order by {order_by!r}; use one of {ORDERINGS}")
        if limit < 0 or offset < 0:
            raise ValidationError("search: limit and offset must not be negative")
        found = sorted((o for o in opportunities if self.matches(o)), key=lambda o: o.id)
        present = [o for o in found if _sort_value(o, key, stage_order) is not None]
        present.sort(key=lambda o: _sort_value(o, key, stage_order), reverse=descending)
        ordered = present + [o for o in found if _sort_value(o, key, stage_order) is None]
        return Page(items=tuple(ordered[offset : offset + limit]), total=len(ordered))


def _sort_value(o: Opportunity, name: str, stage_order: Mapping[tuple[str, str], int]) -> Any:
    if name == "stage":
        return stage_order.get((o.process, o.stage))
    if name == "value":
        return o.value.amount
    if name == "title":
        return o.display_title.casefold()
    return getattr(o, name)


@attrs.frozen
class StageSummary:
    """One column header of the board: how many deals, their total and weighted value."""

    stage: Stage
    count: int
    total: Money
    weighted: Money


@attrs.frozen
class Pipeline:
    """The board's stage summaries; ``total`` and ``weighted`` cover the open stages."""

    process: Process
    currency: str
    stages: tuple[StageSummary, ...]
    total: Money
    weighted: Money
    paused: int


#: Converts an amount into a currency, as a plain Decimal.
Convert = Callable[[Money, str], Decimal]


def stage_order(processes: Iterable[Process]) -> dict[tuple[str, str], int]:
    """Each (process key, stage key) with the stage's place in its process."""
    return {(p.key, s.key): i for p in processes for i, s in enumerate(p.stages)}


def converter(rate: Callable[[str, str], Decimal] | None) -> Convert:
    """Conversion of amounts at ``rate(base, quote)`` (the rate of one ``base`` in
    ``quote``); without rates only amounts already in the target currency convert."""

    def convert(amount: Money, currency: str) -> Decimal:
        code = str(amount.currency.code)
        if code == currency:
            return Decimal(amount.amount)
        if rate is None:
            raise CurrencyMismatch(
                f"Converting {code} to {currency} needs exchange rates: pass rates= to SalesFlow"
            )
        return Decimal(amount.amount) * rate(code, currency)

    return convert


def pipeline(
    process: Process,
    opportunities: Sequence[Opportunity],
    *,
    currency: str | None,
    basis: Basis,
    probability: ProbabilitySource,
    convert: Convert,
) -> Pipeline:
    """Seed 000's stage summaries of ``process`` over ``opportunities``.

    Paused opportunities are only counted. Each figure is rounded once, half-up to the
    currency's minor unit, from its exact sum.
    """
    if basis not in ("value", "annual_value"):
        raise ValidationError(f"pipeline: basis must be 'value' or 'annual_value', not {basis!r}")
    if probability not in ("opportunity", "stage"):
        raise ValidationError(
            f"pipeline: probability must be 'opportunity' or 'stage', not {probability!r}"
        )
    live = [o for o in opportunities if o.status is not Status.PAUSED]
    target = currency or _single_currency(live, process)
    summaries = []
    open_total = open_weighted = Decimal(0)
    for stage in process.stages:
        total = weighted = Decimal(0)
        members = [o for o in live if o.stage == stage.key]
        for o in members:
            amount = o.annual_value if basis == "annual_value" and o.annual_value else o.value
            converted = convert(amount, target)
            chance = o.probability if probability == "opportunity" else stage.probability
            total += converted
            weighted += converted * chance / 100
        summaries.append(
            StageSummary(
                stage=stage,
                count=len(members),
                total=round_money(Money(total, target)),
                weighted=round_money(Money(weighted, target)),
            )
        )
        if stage.kind is StageKind.OPEN:
            open_total += total
            open_weighted += weighted
    return Pipeline(
        process=process,
        currency=target,
        stages=tuple(summaries),
        total=round_money(Money(open_total, target)),
        weighted=round_money(Money(open_weighted, target)),
        paused=len(opportunities) - len(live),
    )


def _single_currency(opportunities: Sequence[Opportunity], process: Process) -> str:
    codes = {o.currency for o in opportunities}
    if len(codes) > 1:
        raise CurrencyMismatch(
            f"Process {process.key!r} has opportunities in {sorted(codes)}: "
            "pass currency= (and rates= to SalesFlow) for one report"
        )
    return codes.pop() if codes else process.currency
