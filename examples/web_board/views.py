"""The board's view models: what the page receives, as plain JSON-ready dictionaries.

The web layer never hands salesflow's values to a serialiser it does not control: each
function here picks the fields the page shows and turns them into strings, numbers,
booleans and lists. Money travels as its exact decimal amount (a string), its currency
and a display text; the page parses the amount only to draw the chart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from moneyed import Money, get_currency

from salesflow import Event, Opportunity, Pipeline, SalesFlow, StageChangePlan, Status

__all__ = [
    "CARDS_PER_COLUMN",
    "JSON",
    "board",
    "card",
    "event",
    "forecast",
    "money",
    "plan",
    "stats",
]

#: A JSON object as the endpoints return it.
JSON = dict[str, Any]

#: The cards shown in one column; the column header still counts every deal.
CARDS_PER_COLUMN = 50


def _digits(currency: str) -> int:
    """The currency's minor-unit digits (2 for USD, 0 for JPY)."""
    sub_unit = get_currency(currency).sub_unit
    return max(len(str(sub_unit)) - 1, 0)


def money(value: Money) -> JSON:
    """An amount as the page shows it: exact, its currency and a grouped text."""
    code = str(value.currency.code)
    amount: Decimal = value.amount
    digits = _digits(code)
    exact = amount.quantize(Decimal(1).scaleb(-digits)) if digits else amount.quantize(Decimal(1))
    return {"amount": str(exact), "currency": code, "text": f"{exact:,} {code}"}


def card(app: SalesFlow, opportunity: Opportunity) -> JSON:
    """One card: title, value, owner and seed 000's activity box."""
    box = app.indicator(opportunity.id)
    return {
        "id": opportunity.id,
        "title": opportunity.display_title,
        "customer": None if opportunity.customer is None else opportunity.customer.name,
        "value": money(opportunity.value),
        "owner": opportunity.owner,
        "stage": opportunity.stage,
        "status": opportunity.status.value,
        "paused": opportunity.status is Status.PAUSED,
        "probability": opportunity.probability,
        "expected_close": None
        if opportunity.expected_close is None
        else opportunity.expected_close.isoformat(),
        "indicator": {"state": box.state.name, "open": box.open, "overdue": box.overdue},
    }


def stats(pipeline: Pipeline) -> JSON:
    """The column headers: each stage's count, total and weighted value, and the
    totals over the open stages."""
    return {
        "process": pipeline.process.key,
        "currency": pipeline.currency,
        "stages": [
            {
                "key": summary.stage.key,
                "count": summary.count,
                "total": money(summary.total),
                "weighted": money(summary.weighted),
            }
            for summary in pipeline.stages
        ],
        "total": money(pipeline.total),
        "weighted": money(pipeline.weighted),
        "paused": pipeline.paused,
    }


def board(app: SalesFlow, process: str, *, position: int | None) -> JSON:
    """The whole board of one process: its columns with their figures and cards.

    ``position`` is the change feed's position the board is at least as new as (None
    when the library has no change feed); the page follows the feed from there.
    """
    definition = app.process(process)
    pipeline = app.pipeline(definition.key)
    figures = stats(pipeline)
    columns = []
    for stage, summary in zip(definition.stages, figures["stages"], strict=True):
        page = app.search(
            process=definition.key,
            stages=stage.key,
            order_by="expected_close",
            limit=CARDS_PER_COLUMN,
        )
        columns.append(
            {
                "key": stage.key,
                "name": stage.name,
                "kind": stage.kind.name,
                "probability": stage.probability,
                **{k: summary[k] for k in ("count", "total", "weighted")},
                "cards": [card(app, o) for o in page.items],
                "more": max(page.total - len(page.items), 0),
            }
        )
    return {
        "process": {
            "key": definition.key,
            "name": definition.name,
            "currency": definition.currency,
            "require_loss_reason": definition.require_loss_reason,
            "loss_reasons": list(definition.loss_reasons),
        },
        "processes": [{"key": p.key, "name": p.name} for p in app.processes()],
        "columns": columns,
        "stats": figures,
        "position": position,
    }


def plan(change: StageChangePlan) -> JSON:
    """What a drop would do, for the confirmation dialog."""
    return {
        "opportunity_id": change.opportunity_id,
        "from": change.from_stage.key,
        "to": change.to_stage.key,
        "to_name": change.to_stage.name,
        "moves": change.moves,
        "needs_answer": change.needs_answer,
        "to_cancel": [
            {"id": a.id, "title": a.title, "due": a.due.isoformat()} for a in change.to_cancel
        ],
        "kept": [{"id": a.id, "title": a.title} for a in change.kept],
        "to_create": [action.title for action in change.to_create],
        "warnings": list(change.warnings),
        "probability": change.probability,
        "status": change.status.value,
    }


def _plain(details: Mapping[str, Any]) -> JSON:
    """The details of an event that are plain JSON values (stage keys, ids, flags)."""
    return {
        key: value
        for key, value in details.items()
        if isinstance(value, str | int | bool | float) or value is None
    }


def event(item: Event) -> JSON:
    """One change feed entry as the page's log shows it."""
    at: dt.datetime = item.at
    return {
        "position": item.position,
        "kind": item.kind.name,
        "opportunity_id": item.opportunity_id,
        "at": at.isoformat(),
        "actor": item.actor,
        "details": _plain(item.details),
    }


def forecast(
    app: SalesFlow, process: str, *, first: dt.date, months: int, simulations: int, seed: int
) -> JSON:
    """The chart's figures: for each month from ``first``, the expected revenue (what
    was won in it plus value x probability of the open deals expected to close in it)
    and, with ``simulations``, the P10 and P90 of the month's simulated revenue.

    One grouped forecast gives every month's expected figures; each month's band
    needs a forecast of its own, since percentiles do not add up across months.
    """
    definition = app.process(process)
    currency = definition.currency
    starts = [first + relativedelta(months=i) for i in range(months)]
    last = starts[-1] + relativedelta(months=1, days=-1)
    grouped = app.forecast(
        start=first, end=last, currency=currency, process=definition.key, group_by="month"
    )
    rows = {row.key: row for row in grouped.rows}
    zero = Money(0, currency)
    points = []
    for start in starts:
        key = f"{start:%Y-%m}"
        row = rows.get(key)
        expected, won = (row.expected, row.won) if row is not None else (zero, zero)
        point: JSON = {
            "month": key,
            "label": f"{start:%b %Y}",
            "count": 0 if row is None else row.count,
            "expected": money(expected + won),
            "open_expected": money(expected),
            "won": money(won),
            "p10": None,
            "p90": None,
        }
        if simulations:
            band = app.forecast(
                start=start,
                end=start + relativedelta(months=1, days=-1),
                currency=currency,
                process=definition.key,
                simulations=simulations,
                seed=seed,
            )
            if band.p10 is not None and band.p90 is not None:
                point["p10"], point["p90"] = money(band.p10), money(band.p90)
        points.append(point)
    return {
        "process": definition.key,
        "currency": currency,
        "simulations": simulations,
        "months": points,
    }
