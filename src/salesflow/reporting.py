"""Reports: the stage summaries of the board.

Pure functions of the totals a repository computes (:mod:`salesflow.queries`);
``SalesFlow`` asks the repository and passes the currency conversion in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Literal

import attrs
from moneyed import Money

from salesflow.domain.process import Process, Stage
from salesflow.domain.values import StageKind, round_money
from salesflow.errors import CurrencyMismatch, ValidationError
from salesflow.queries import PipelineTotals

__all__ = [
    "Pipeline",
    "ProbabilitySource",
    "StageSummary",
    "converter",
    "pipeline",
    "stage_order",
]

ProbabilitySource = Literal["opportunity", "stage"]


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
    totals: PipelineTotals,
    *,
    currency: str | None,
    probability: ProbabilitySource,
    convert: Convert,
) -> Pipeline:
    """Seed 000's stage summaries of ``process`` from its per-stage ``totals``.

    Each currency's sum is converted at the report's rate (conversion is linear, so
    this equals converting each deal). Each figure is rounded once, half-up to the
    currency's minor unit, from its exact sum.
    """
    if probability not in ("opportunity", "stage"):
        raise ValidationError(
            f"pipeline: probability must be 'opportunity' or 'stage', not {probability!r}"
        )
    target = currency or _single_currency(totals, process)
    summaries = []
    open_total = open_weighted = Decimal(0)
    for stage in process.stages:
        rows = [r for r in totals.rows if r.stage == stage.key]
        total = weighted = Decimal(0)
        for row in rows:
            amount = convert(Money(row.amount, row.currency), target)
            total += amount
            if probability == "opportunity":
                weighted += convert(Money(row.weighted, row.currency), target)
            else:
                weighted += amount * stage.probability / 100
        summaries.append(
            StageSummary(
                stage=stage,
                count=sum(r.count for r in rows),
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
        paused=totals.paused,
    )


def _single_currency(totals: PipelineTotals, process: Process) -> str:
    codes = {r.currency for r in totals.rows}
    if len(codes) > 1:
        raise CurrencyMismatch(
            f"Process {process.key!r} has opportunities in {sorted(codes)}: "
            "pass currency= (and rates= to SalesFlow) for one report"
        )
    return codes.pop() if codes else process.currency
