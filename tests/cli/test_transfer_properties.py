"""Property: whatever opportunities a pipeline holds, exporting them and importing the
file into another pipeline gives the same opportunities, in CSV and in JSON."""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow import FixedClock, Individual, Money, Organization, SalesFlow
from salesflow.cli._transfer import Format, Record, export_file, protect, read_rows, unprotect
from tests.conftest import START
from tests.strategies import names, text

#: Free text and names are read as written: blanks at either end included, and text
#: a spreadsheet would take for a formula (protected on export, restored on import).
texts = names | st.builds(
    str.__add__, st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "'=", "''-", " "]), names
)

customers = st.none() | st.builds(Organization, texts, texts) | st.builds(Individual, texts, texts)


@st.composite
def creations(draw: st.DrawFn) -> dict[str, Any]:
    currency = draw(st.sampled_from(["USD", "EUR", "JPY", "NOK"]))
    places = 0 if currency == "JPY" else 2
    amount = st.decimals(min_value=0, max_value=10**9, places=places).map(
        lambda d: Money(d, currency)
    )
    customer = draw(customers)
    title = draw(texts if not isinstance(customer, Organization) else st.none() | texts)
    stage = draw(st.sampled_from(["lead", "qualification", "proposal", "won", "lost"]))
    return {
        "title": title,
        "customer": customer,
        "stage": stage,
        "value": draw(amount),
        "annual_value": draw(st.none() | amount),
        "probability": draw(st.none() | st.integers(0, 100)),
        "expected_close": draw(st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31))),
        "owner": draw(st.none() | texts),
        "description": draw(st.just("") | text),
        "external_ref": draw(st.none() | texts),
        "loss_reason": draw(st.none() | texts) if stage == "lost" else None,
    }


def records(app: SalesFlow) -> list[Record]:
    return sorted((Record.of(o) for o in app.search(limit=1000).items), key=repr)


@pytest.mark.parametrize("form", ["csv", "json"])
@settings(max_examples=40)
@given(items=st.lists(creations(), min_size=1, max_size=6))
def test_export_then_import_keeps_every_field(form: Format, items: list[dict[str, Any]]) -> None:
    source = SalesFlow(clock=FixedClock(START))
    made = source.create_opportunities(items)
    assert not made.failed, made.failed
    target = SalesFlow(clock=FixedClock(START))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"deals.{form}"
        assert export_file(source, path, form, process=None) == len(items)
        rows = read_rows(path, form, target, mapping={}, process=None, currency=None, stages={})
    assert [row.problem for row in rows.rows] == [None] * len(items)
    result = target.create_opportunities([row.arguments or {} for row in rows.rows])
    assert not result.failed, result.failed
    assert records(target) == records(source)


def test_amounts_and_percentages_that_are_not_numbers(tmp_path: Path) -> None:
    app = SalesFlow(clock=FixedClock(START))
    path = tmp_path / "odd.csv"
    path.write_text(
        "title\tvalue\tprobability\n"
        "A\tInfinity\t\n"
        "B\tNaN\t\n"
        "C\t1\tnan\n"
        "D\t1,234.5\t0.25\n"
        "E\t1.234,5\t\n"
    )
    rows = read_rows(path, "csv", app, mapping={}, process=None, currency=None, stages={})
    problems = [row.problem for row in rows.rows]
    assert problems[:3] == [
        "value: 'Infinity' is not an amount such as 1234.50",
        "value: 'NaN' is not an amount such as 1234.50",
        "probability: 'nan' is not a percentage such as 40",
    ]
    assert problems[3] is None
    assert rows.rows[3].arguments is not None
    assert rows.rows[3].arguments["value"] == Money(Decimal("1234.5"), "USD")
    assert rows.rows[3].arguments["probability"] == 25
    assert problems[4] == "value: '1.234,5' is not an amount such as 1234.50"


@given(text)
def test_unprotect_undoes_protect_and_protected_cells_are_no_formulas(cell: str) -> None:
    shown = protect(cell)
    assert unprotect(shown) == cell
    assert not shown.startswith(("=", "+", "-", "@", "\t", "\r"))
