"""Reports given wrong arguments raise salesflow errors, never anything else.

Each argument of each report, in turn, gets values of every wrong kind (the same
values the public-input property test hands every command), on every repository; the
call may succeed or raise a ``SalesflowError``, and the workspace still reports after.
Moments at the ends of the calendar are given to every moment argument too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow import Money, SalesFlow
from salesflow.errors import SalesflowError, ValidationError
from tests.conftest import START
from tests.unit.test_public_inputs import bad_values

TODAY = START.date()

#: Each report with valid arguments for every parameter it takes.
REPORTS: dict[str, tuple[str, dict[str, Any]]] = {
    "pipeline": (
        "pipeline",
        {
            "process": "standard",
            "currency": "GBP",
            "basis": "annual_value",
            "probability": "stage",
            "owner": "ann",
            "as_of": START,
        },
    ),
    "forecast": (
        "forecast",
        {
            "start": TODAY,
            "end": TODAY + dt.timedelta(days=30),
            "currency": "GBP",
            "process": "standard",
            "owner": "ann",
            "group_by": "month",
            "as_of": START,
            "simulations": 5,
            "seed": 1,
        },
    ),
    "analytics": (
        "analytics",
        {"process": "standard", "start": TODAY, "end": TODAY, "currency": "GBP"},
    ),
    "stuck": ("stuck", {"process": "standard", "now": START}),
}
PAIRS = [(name, argument) for name, (_, arguments) in REPORTS.items() for argument in arguments]

#: Moments salesflow must refuse or handle: the calendar's ends in far time zones.
EDGES = [
    dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=14))),
    dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-14))),
    dt.datetime.min.replace(tzinfo=dt.UTC),
    dt.datetime.max.replace(tzinfo=dt.UTC),
    dt.date.min,
    dt.date.max,
]


def populated(app: SalesFlow) -> SalesFlow:
    deal = app.create_opportunity(
        title="a", value=Money(Decimal(100), "GBP"), owner="ann", expected_close=TODAY
    ).opportunity
    app.mark_won(deal.id)
    app.create_opportunity(title="b", value=Money(Decimal(50), "GBP"), expected_close=TODAY)
    return app


def call(app: SalesFlow, name: str, argument: str, value: object) -> None:
    method, arguments = REPORTS[name]
    report: Callable[..., object] = getattr(app, method)
    with contextlib.suppress(SalesflowError):  # refused, or it went through
        report(**{**arguments, argument: value})
    app.pipeline()  # still reporting
    app.forecast(start=TODAY, end=TODAY, currency="GBP")


@pytest.mark.parametrize(("name", "argument"), PAIRS)
def test_the_valid_calls_and_the_edges_of_the_calendar(
    app: SalesFlow, name: str, argument: str
) -> None:
    populated(app)
    method, arguments = REPORTS[name]
    getattr(app, method)(**arguments)
    for edge in EDGES:
        call(app, name, argument, edge)


@pytest.mark.parametrize(("name", "argument"), PAIRS)
@settings(max_examples=5, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(bad_values, st.sampled_from(EDGES)))
def test_wrong_report_arguments_raise_only_salesflow_errors(
    app: SalesFlow, name: str, argument: str, value: object
) -> None:
    if not app.search().total:
        populated(app)
    call(app, name, argument, value)


@pytest.mark.parametrize("name", ["pipeline", "forecast", "analytics", "stuck", "search"])
@pytest.mark.parametrize("value", [5, ["standard"], "", b"standard"])
def test_a_wrong_process_argument_is_named_with_its_call(
    app: SalesFlow, name: str, value: object
) -> None:
    method, arguments = REPORTS.get(name, (name, {"process": "standard"}))
    with pytest.raises(ValidationError, match=rf"^{name}\(process=\.\.\.\): "):
        getattr(app, method)(**{**arguments, "process": value})
