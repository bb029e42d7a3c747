"""A negative zero amount (``Money("-0.00", ...)``) is kept as zero on every
repository: it reads back, sums and prints as ``0.00``, never ``-0.00``."""

from __future__ import annotations

from decimal import Decimal

from moneyed import Money

from salesflow import LineItem, SalesFlow


def _is_plain_zero(amount: Decimal) -> bool:
    return amount == 0 and not amount.is_signed()


def test_a_negative_zero_value_reads_back_as_zero(app: SalesFlow) -> None:
    created = app.create_opportunity(
        title="Nothing yet",
        value=Money("-0.00", "EUR"),
        annual_value=Money("-0", "EUR"),
    ).opportunity
    for opportunity in (created, app.get(created.id)):
        assert _is_plain_zero(opportunity.value.amount)
        assert str(opportunity.value.amount) == "0.00"
        assert opportunity.annual_value is not None
        assert _is_plain_zero(opportunity.annual_value.amount)
    app.update(created.id, value=Money("5", "EUR"))
    app.update(created.id, value=Money("-0.000", "EUR"))
    assert str(app.get(created.id).value.amount) == "0.000"
    totals = app.pipeline("standard")
    assert not any(stage.total.amount.is_signed() for stage in totals.stages)


def test_a_negative_zero_price_and_quantity_read_back_as_zero(app: SalesFlow) -> None:
    deal = app.create_opportunity(title="Free lines", value=Money("0", "EUR")).opportunity
    app.add_line_item(deal.id, LineItem("Free", Decimal("-0"), Money("-0.00", "EUR")))
    (line,) = app.get(deal.id).line_items
    assert _is_plain_zero(line.unit_price.amount)
    assert str(line.unit_price.amount) == "0.00"
    assert _is_plain_zero(line.quantity)
    assert not line.amount.amount.is_signed()
    assert not app.get(deal.id).billables_total.amount.is_signed()
