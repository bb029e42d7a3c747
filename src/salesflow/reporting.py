"""Reports: the board's stage summaries, the forecast, analytics.

Pure functions of what a repository's query side answers (:mod:`salesflow.queries`);
``SalesFlow`` checks the caller's arguments, asks the repository and passes the
currency conversion in. Every sum is an exact Decimal; each reported Money is rounded
half-up to its currency's minor unit once, at the end.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Literal, TypeVar

import attrs
from moneyed import Money

from salesflow.domain.process import Process, Stage
from salesflow.domain.values import ReadOnlyMapping, StageKind, round_money
from salesflow.errors import CurrencyMismatch, MissingExchangeRate, ValidationError
from salesflow.messages import Message
from salesflow.queries import ClosedDeal, ForecastTotals, PipelineTotals

__all__ = [
    "Analytics",
    "Forecast",
    "ForecastGroup",
    "Pipeline",
    "ProbabilitySource",
    "StageSummary",
    "analytics",
    "converter",
    "forecast",
    "percentiles",
    "pipeline",
    "stage_order",
]

K = TypeVar("K")
V = TypeVar("V")

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
            raise MissingExchangeRate(
                Message(
                    "No exchange rate from {base} to {quote}: pass rates= to SalesFlow",
                    base=code,
                    quote=currency,
                )
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
            Message(
                "Process {key!r} has opportunities in {codes}: "
                "pass currency= (and rates= to SalesFlow) for one report",
                key=process.key,
                codes=", ".join(sorted(codes)),
            )
        )
    return codes.pop() if codes else process.currency


# -- forecast ------------------------------------------------------------------------


@attrs.frozen
class ForecastGroup:
    """The forecast's figures of one owner, stage or month (``key``; None for the
    opportunities without an owner)."""

    key: str | None
    count: int
    expected: Money
    best_case: Money
    won: Money
    won_count: int


@attrs.frozen
class Forecast:
    """Open opportunities expected to close in [start, end] and the deals won in it.

    ``expected`` is the sum of value x probability of the open ones, ``best_case`` the
    sum of their values, ``won`` the sum of the values of the deals won (``closed_on``)
    in the period. ``rows`` holds the same figures per group when grouped. With
    ``simulations``, ``p10``, ``p50`` and ``p90`` are percentiles of the period's
    revenue -- what was won plus each open deal won with its probability -- over that
    many simulated outcomes (None without).
    """

    start: dt.date
    end: dt.date
    currency: str
    count: int
    expected: Money
    best_case: Money
    won: Money
    won_count: int
    group_by: str | None = None
    rows: tuple[ForecastGroup, ...] = ()
    simulations: int = 0
    p10: Money | None = None
    p50: Money | None = None
    p90: Money | None = None


def forecast(
    totals: ForecastTotals,
    *,
    start: dt.date,
    end: dt.date,
    currency: str,
    group_by: str | None,
    convert: Convert,
    simulations: int,
    seed: int | None,
) -> Forecast:
    """The forecast from its per-group totals, each currency's sum converted once."""
    groups: dict[str | None, list[Decimal | int]] = {}
    for row in totals.rows:
        sums = groups.setdefault(row.group, [0, Decimal(0), Decimal(0), Decimal(0), 0])
        sums[0] += row.count
        sums[1] += convert(Money(row.weighted, row.currency), currency)
        sums[2] += convert(Money(row.amount, row.currency), currency)
        sums[3] += convert(Money(row.won, row.currency), currency)
        sums[4] += row.won_count

    def money(amount: Decimal | int) -> Money:
        return round_money(Money(amount, currency))

    overall = [sum((g[i] for g in groups.values()), Decimal(0)) for i in range(5)]
    result = Forecast(
        start=start,
        end=end,
        currency=currency,
        count=int(overall[0]),
        expected=money(overall[1]),
        best_case=money(overall[2]),
        won=money(overall[3]),
        won_count=int(overall[4]),
        group_by=group_by,
        rows=tuple(
            ForecastGroup(key, int(n), money(e), money(b), money(w), int(wn))
            for key, (n, e, b, w, wn) in groups.items()
        )
        if group_by is not None
        else (),
    )
    if simulations <= 0:
        return result
    deals = [
        (convert(Money(amount, code), currency), probability)
        for code, amount, probability in totals.deals
    ]
    p10, p50, p90 = percentiles(Decimal(overall[3]), deals, simulations, seed)
    return attrs.evolve(
        result, simulations=simulations, p10=money(p10), p50=money(p50), p90=money(p90)
    )


def percentiles(
    base: Decimal,
    deals: Sequence[tuple[Decimal, int]],
    simulations: int,
    seed: int | None,
) -> tuple[Decimal, Decimal, Decimal]:
    """P10, P50 and P90 of ``base`` plus each deal's amount with its probability (a
    percentage), over ``simulations`` outcomes drawn from ``random.Random(seed)`` in the
    order of ``deals``. The q-th percentile is the nearest rank: the smallest outcome
    that at least q% of the outcomes are at or below."""
    draw = random.Random(seed).random
    chances = [(amount, probability / 100) for amount, probability in deals]
    outcomes = sorted(
        base + sum((amount for amount, chance in chances if draw() < chance), Decimal(0))
        for _ in range(simulations)
    )

    def rank(tenths: int) -> Decimal:
        return outcomes[max(0, -(-tenths * simulations // 10) - 1)]

    return rank(1), rank(5), rank(9)


# -- analytics -----------------------------------------------------------------------


@attrs.frozen
class Analytics:
    """What the closed deals of a period tell (see ``docs/reports.md``).

    ``closed``, ``won`` and ``lost`` count the deals behind the figures; ``reached``
    counts, for each stage, the closed deals that were created in it or moved into it
    -- the number behind that stage's ``conversion``, ``average_days_in_stage`` and
    ``stage_win_rates``. Rates are floats in 0..1, or None with no deal behind them.
    """

    process: Process
    start: dt.date | None
    end: dt.date | None
    currency: str | None
    closed: int
    won: int
    lost: int
    win_rate: float | None
    average_won_value: Money | None
    median_cycle_days: float | None
    conversion: Mapping[str, float | None]
    average_days_in_stage: Mapping[str, float | None]
    loss_reasons: Mapping[str, int]
    stage_win_rates: Mapping[str, float | None]
    reached: Mapping[str, int]


def _frozen(mapping: dict[K, V]) -> Mapping[K, V]:
    return ReadOnlyMapping(mapping)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def analytics(
    process: Process,
    deals: Sequence[ClosedDeal],
    *,
    start: dt.date | None,
    end: dt.date | None,
    currency: str | None,
    convert: Convert,
    timezone: dt.tzinfo,
) -> Analytics:
    """The analytics of the closed deals of ``process`` in the period."""
    won = [d for d in deals if d.won]
    lost = [d for d in deals if not d.won]
    target = currency
    average: Money | None = None
    if won:
        if target is None:
            codes = sorted({d.currency for d in won})
            if len(codes) > 1:
                raise CurrencyMismatch(
                    Message(
                        "Process {key!r} has won deals in {codes}: pass currency= "
                        "(and rates= to SalesFlow) for their average value",
                        key=process.key,
                        codes=", ".join(codes),
                    )
                )
            target = codes[0]
        by_currency: dict[str, Decimal] = {}
        for d in won:
            by_currency[d.currency] = by_currency.get(d.currency, Decimal(0)) + d.value
        total = sum(
            (convert(Money(amount, code), target) for code, amount in sorted(by_currency.items())),
            Decimal(0),
        )
        average = round_money(Money(total / len(won), target))
    cycles = [(d.closed_on - d.created_at.astimezone(timezone).date()).days for d in won]

    place = {stage.key: i for i, stage in enumerate(process.stages)}
    kind = {stage.key: stage.kind for stage in process.stages}
    reached: Counter[str] = Counter()
    reached_won: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    days: dict[str, list[float]] = {}
    # Deals share few stage sequences: what a sequence tells (the stages reached, and
    # which of them the deal went further from) is worked out once per sequence.
    # How far on each stage is: a LOST stage is nowhere, a WON stage beyond every open
    # stage wherever the process lists it (winning is going on from any stage).
    reach = {StageKind.LOST: -1, StageKind.WON: len(place)}
    onward = {key: reach.get(kind[key], place[key]) for key in place}
    sequences: Counter[tuple[tuple[str, ...], bool]] = Counter()
    for deal in deals:
        # Time is counted over the whole path, so that days spent in a stage the process
        # no longer has are nobody's; only the stages it has are then reported.
        spent: dict[str, float] = {}
        for (at, stage), (then, _) in itertools.pairwise(deal.path):
            spent[stage] = spent.get(stage, 0.0) + (then - at).total_seconds()
        for stage, seconds in spent.items():
            days.setdefault(stage, []).append(seconds / 86_400)
        known = tuple(stage for _, stage in deal.path if stage in place)
        sequences[(known, deal.won)] += 1
    for (stages, won_it), count in sequences.items():
        # The furthest non-LOST stage entered after each point, in one backward pass.
        furthest = [-1] * len(stages)
        best = -1
        for i in range(len(stages) - 1, -1, -1):
            furthest[i] = best
            best = max(best, onward[stages[i]])
        seen: set[str] = set()
        for i, stage in enumerate(stages):
            if stage in seen:
                continue
            seen.add(stage)
            reached[stage] += count
            if won_it:
                reached_won[stage] += count
            if furthest[i] > place[stage]:
                converted[stage] += count
    open_stages = [s.key for s in process.stages if s.kind is StageKind.OPEN]
    return Analytics(
        process=process,
        start=start,
        end=end,
        currency=target,
        closed=len(deals),
        won=len(won),
        lost=len(lost),
        win_rate=_rate(len(won), len(deals)),
        average_won_value=average,
        median_cycle_days=float(statistics.median(cycles)) if cycles else None,
        conversion=_frozen({key: _rate(converted[key], reached[key]) for key in open_stages}),
        average_days_in_stage=_frozen(
            {key: statistics.fmean(days[key]) if days.get(key) else None for key in open_stages}
        ),
        loss_reasons=_frozen(
            dict(
                sorted(
                    Counter(d.loss_reason for d in lost if d.loss_reason is not None).items(),
                    key=lambda item: (-item[1], item[0]),
                )
            )
        ),
        stage_win_rates=_frozen(
            {s.key: _rate(reached_won[s.key], reached[s.key]) for s in process.stages}
        ),
        reached=_frozen({s.key: reached[s.key] for s in process.stages}),
    )
