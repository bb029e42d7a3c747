"""The query side of a repository: what ``search`` and ``pipeline`` ask of it.

``SalesFlow`` checks a caller's arguments and turns them into a :class:`SearchQuery`
or a pipeline question; the repository answers in the database -- SQL over real
columns and indexes, decoding only the page it returns -- and the in-memory repository
in one pass with the functions here, which define what every answer must be:

- :meth:`SearchQuery.matches` and :meth:`SearchQuery.sort_key` say which
  opportunities a search finds and in which order;
- :func:`pipeline_totals` says what the pipeline's per-stage figures are: for each
  stage and currency, the number of opportunities that are not paused, the exact sum
  of their amounts, and the exact sum of amount x probability / 100.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from salesflow.domain.opportunity import Opportunity
from salesflow.domain.values import Status

__all__ = [
    "ORDERINGS",
    "Basis",
    "Page",
    "PipelineTotals",
    "SearchQuery",
    "StageTotal",
    "pipeline_totals",
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
        if self.text:
            haystack = " ".join(
                (o.title or "", o.description, o.customer.name if o.customer else "")
            )
            if self.text.casefold() not in haystack.casefold():
                return False
        close = o.expected_close
        is_overdue = o.status is Status.OPEN and close is not None and close < self.today
        return (
            (self.process is None or o.process == self.process)
            and (self.stages is None or o.stage in self.stages)
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

    def sort_value(self, o: Opportunity) -> Any:
        """What ``o`` is ordered by (None: it has no value and comes last)."""
        key = self.order_key
        if key == "stage":
            return self.stage_order.get((o.process, o.stage))
        if key == "value":
            return o.value.amount
        if key == "title":
            return o.display_title.casefold()
        return getattr(o, key)

    def page(self, opportunities: Iterable[Opportunity]) -> Page:
        """The page of ``opportunities`` this query asks for, in one pass."""
        found = sorted((o for o in opportunities if self.matches(o)), key=lambda o: o.id)
        present = [o for o in found if self.sort_value(o) is not None]
        present.sort(key=self.sort_value, reverse=self.descending)
        ordered = present + [o for o in found if self.sort_value(o) is None]
        return Page(
            items=tuple(ordered[self.offset : self.offset + self.limit]), total=len(ordered)
        )


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
    opportunities: Iterable[Opportunity], *, basis: Basis, owner: str | None = None
) -> PipelineTotals:
    """The totals of ``opportunities`` (of one process), in one pass. With
    ``basis="annual_value"`` the amount is the annual value, or the value where none is
    set. Rows come ordered by stage key, then currency."""
    sums: dict[tuple[str, str], list[Any]] = {}
    paused = 0
    for o in opportunities:
        if owner is not None and o.owner != owner:
            continue
        if o.status is Status.PAUSED:
            paused += 1
            continue
        money = o.annual_value if basis == "annual_value" and o.annual_value else o.value
        row = sums.setdefault((o.stage, str(money.currency.code)), [0, Decimal(0), Decimal(0)])
        row[0] += 1
        row[1] += money.amount
        row[2] += money.amount * o.probability
    return PipelineTotals(
        rows=tuple(
            StageTotal(stage, currency, count, amount, weighted / 100)
            for (stage, currency), (count, amount, weighted) in sorted(sums.items())
        ),
        paused=paused,
    )
