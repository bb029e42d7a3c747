"""Billables and invoices (seed 002) -- on every repository."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from salesflow import (
    Event,
    EventKind,
    FixedClock,
    Individual,
    InvoiceDraft,
    LineItem,
    Money,
    SalesFlow,
)
from salesflow.errors import CurrencyMismatch, NotFound, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import ACME, new_deal

LICENCE = LineItem("Licence", Decimal(3), Money("100", "USD"), discount_percent=Decimal(10))
SETUP = LineItem("Setup", Decimal(1), Money("49.995", "USD"), service_code="SRV-1")


def test_adding_a_line_item_gives_it_an_id_and_records_it(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")

    result = app.add_line_item(deal.id, LICENCE, actor="per")

    (line,) = result.opportunity.line_items
    assert line.id is not None
    assert (line.description, line.quantity, line.unit_price) == (
        "Licence",
        Decimal(3),
        Money("100", "USD"),
    )
    assert app.get(deal.id).line_items == (line,)
    assert result.opportunity.billables_total == Money("270", "USD")
    (event,) = result.events
    assert event.kind is EventKind.LINE_ITEM_ADDED
    assert (event.details["line_id"], event.details["item"]) == (line.id, line)
    assert result.notices == ("Added 'Licence' to 'Acme licence'.",)


def test_a_line_item_keeps_the_id_it_was_given(app: SalesFlow) -> None:
    deal = new_deal(app)
    item = LineItem("Support", 1, Money("10", "USD"), id="line-1")
    assert app.add_line_item(deal.id, item).opportunity.line_items == (item,)
    with pytest.raises(ValidationError, match="already has a line item 'line-1'"):
        app.add_line_item(deal.id, item)
    assert len(app.get(deal.id).line_items) == 1


def test_a_line_in_another_currency_is_refused(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(CurrencyMismatch, match="EUR"):
        app.add_line_item(deal.id, LineItem("Licence", 1, Money("10", "EUR")))
    assert app.get(deal.id) == deal
    assert len(app.history(deal.id)) == 1


def test_the_currency_cannot_change_under_existing_lines(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    with pytest.raises(CurrencyMismatch):
        app.update(deal.id, value=Money("10", "EUR"))
    assert app.get(deal.id).value == Money("1000", "USD")


def test_each_line_is_rounded_half_up_once_and_the_total_sums_the_lines(app: SalesFlow) -> None:
    deal = new_deal(app)
    # 49.995 rounds half-up to 50.00 on its line; three lines make 150.00, where the
    # exact sum (149.985) would round to 149.99.
    for _ in range(3):
        app.add_line_item(deal.id, SETUP)
    assert app.get(deal.id).billables_total == Money("150.00", "USD")
    assert sum(line.total.amount for line in app.get(deal.id).line_items) == Decimal("149.985")


def test_removing_a_line_item(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")
    line = app.add_line_item(deal.id, LICENCE).opportunity.line_items[0]
    app.add_line_item(deal.id, SETUP)

    result = app.remove_line_item(deal.id, line.id or "", actor="per")

    assert [x.description for x in result.opportunity.line_items] == ["Setup"]
    (event,) = result.events
    assert event.kind is EventKind.LINE_ITEM_REMOVED
    assert event.details["item"] == line
    assert result.notices == ("Removed 'Licence' from 'Acme licence'.",)


def test_removing_an_unknown_line_is_not_found(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    version = app.get(deal.id).version
    with pytest.raises(NotFound, match="no line item 'nope'"):
        app.remove_line_item(deal.id, "nope")
    assert app.get(deal.id).version == version


@pytest.mark.parametrize("item", [None, "Licence", {"description": "x"}, Money("1", "USD")])
def test_add_line_item_takes_a_line_item(app: SalesFlow, item: object) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match=r"add_line_item\(item=...\)"):
        app.add_line_item(deal.id, item)  # type: ignore[arg-type]


# -- the value follows the billables ----------------------------------------------------


def test_the_value_can_follow_the_billables(app: SalesFlow) -> None:
    deal = new_deal(app, value=Money("1000", "USD"))
    app.add_line_item(deal.id, LICENCE)

    turned_on = app.update(deal.id, value_from_billables=True)

    assert turned_on.opportunity.value == Money("270", "USD")
    assert turned_on.events[0].changes["value"] == (Money("1000", "USD"), Money("270", "USD"))
    added = app.add_line_item(deal.id, SETUP)
    assert added.opportunity.value == Money("320.00", "USD")
    assert added.events[0].changes["value"] == (Money("270", "USD"), Money("320.00", "USD"))
    line = added.opportunity.line_items[0].id or ""
    assert app.remove_line_item(deal.id, line).opportunity.value == Money("50.00", "USD")
    assert app.pipeline().stages[0].total == Money("50.00", "USD")


def test_a_value_that_follows_the_billables_cannot_be_set_by_hand(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.update(deal.id, value_from_billables=True)
    assert app.get(deal.id).value == Money(0, "USD")
    with pytest.raises(ValidationError, match="follows its billables"):
        app.update(deal.id, value=Money("5", "USD"))
    # turned off, the value stays where it was and can be set again
    off = app.update(deal.id, value_from_billables=False, value=Money("5", "USD"))
    assert off.opportunity.value == Money("5", "USD")
    assert app.add_line_item(deal.id, LICENCE).opportunity.value == Money("5", "USD")


def test_value_from_billables_must_be_a_bool(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match="value_from_billables"):
        app.update(deal.id, value_from_billables="yes")
    assert app.get(deal.id) == deal


# -- invoices ---------------------------------------------------------------------------


def test_an_invoice_drafts_every_line(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app, title="Acme licence")
    app.add_line_item(deal.id, LICENCE)
    app.add_line_item(deal.id, SETUP)

    draft = app.invoice(deal.id, number="2026-0042", actor="per")

    assert isinstance(draft, InvoiceDraft)
    assert (draft.number, draft.opportunity_id, draft.customer) == ("2026-0042", deal.id, ACME)
    assert draft.issued == clock.now().date()
    assert draft.due == draft.issued + dt.timedelta(days=14)
    assert [(line.description, line.amount) for line in draft.lines] == [
        ("Licence", Money("270.00", "USD")),
        ("Setup", Money("50.00", "USD")),
    ]
    assert draft.lines[0].subtotal == Money("300.00", "USD")
    assert draft.lines[0].discount == Money("30.00", "USD")
    assert draft.lines[1].service_code == "SRV-1"
    assert draft.subtotal == Money("350.00", "USD")
    assert draft.discount == Money("30.00", "USD")
    assert draft.total == Money("320.00", "USD")
    assert draft.total == app.get(deal.id).billables_total
    event = app.history(deal.id)[-1]
    assert (event.kind, event.actor) == (EventKind.INVOICED, "per")
    assert event.details["invoice"] == draft


def test_issued_defaults_to_today_in_the_apps_time_zone(make_app: MakeApp) -> None:
    # 23:30 UTC on 2 March is already 3 March in Oslo.
    late = FixedClock(dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC))
    app = make_app(clock=late, timezone="Europe/Oslo")
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    draft = app.invoice(deal.id, number="1", due_in=dt.timedelta(days=30))
    assert (draft.issued, draft.due) == (dt.date(2026, 3, 3), dt.date(2026, 4, 2))


def test_an_invoice_with_a_given_issue_date(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    draft = app.invoice(deal.id, number="7", issued=dt.date(2026, 1, 31), due_in=dt.timedelta(0))
    assert (draft.issued, draft.due) == (dt.date(2026, 1, 31), dt.date(2026, 1, 31))


def test_an_invoice_needs_lines_and_a_customer_and_a_deal_not_lost(app: SalesFlow) -> None:
    empty = new_deal(app, title="Empty")
    with pytest.raises(ValidationError, match="no line items"):
        app.invoice(empty.id, number="1")
    nobody = new_deal(app, title="Nobody's", customer=None)
    app.add_line_item(nobody.id, LICENCE)
    with pytest.raises(ValidationError, match="no customer"):
        app.invoice(nobody.id, number="1")
    lost = new_deal(app, title="Gone", customer=Individual("i-1", "Ida"))
    app.add_line_item(lost.id, LICENCE)
    app.mark_lost(lost.id, cancel_pending=False)
    with pytest.raises(ValidationError, match="is lost"):
        app.invoice(lost.id, number="1")
    for deal in (empty, nobody, lost):
        assert EventKind.INVOICED not in [e.kind for e in app.history(deal.id)]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"number": ""}, "number"),
        ({"number": 12}, "number"),
        ({"number": "1", "issued": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, "issued"),
        ({"number": "1", "issued": "2026-01-01"}, "issued"),
        ({"number": "1", "due_in": dt.timedelta(days=-1)}, "due_in"),
        ({"number": "1", "due_in": dt.timedelta(hours=36)}, "due_in"),
        ({"number": "1", "due_in": 14}, "due_in"),
        ({"number": "1", "actor": 5}, "actor"),
    ],
)
def test_invoice_arguments_are_checked(
    app: SalesFlow, arguments: dict[str, object], named: str
) -> None:
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    version = app.get(deal.id).version
    with pytest.raises(ValidationError, match=named):
        app.invoice(deal.id, **arguments)  # type: ignore[arg-type]
    assert app.get(deal.id).version == version


def test_a_due_date_outside_the_calendar_is_refused(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.add_line_item(deal.id, LICENCE)
    with pytest.raises(ValidationError, match="outside the calendar"):
        app.invoice(deal.id, number="1", issued=dt.date(9999, 12, 1), due_in=dt.timedelta(60))


def test_what_the_new_events_hold_cannot_be_changed(app: SalesFlow) -> None:
    heard: list[Event] = []
    app.subscribe(heard.append)
    deal = new_deal(app, owner="olga")
    app.assign(deal.id, "per")
    app.add_note(deal.id, "note")
    app.link_ticket(deal.id, "T-1", "Bug")
    app.add_line_item(deal.id, LICENCE)
    draft = app.invoice(deal.id, number="1")

    for event in (*app.history(deal.id), *heard):
        with pytest.raises(TypeError):
            event.details["extra"] = 1  # type: ignore[index]
    stored = app.history(deal.id)[-1].details["invoice"]
    for held in (draft, stored, heard[-1].details["invoice"]):
        with pytest.raises(AttributeError):
            held.number = "2"  # type: ignore[misc]
        with pytest.raises(TypeError):
            held.lines[0].amount.amount = Decimal(1)  # type: ignore[misc]
        with pytest.raises(AttributeError):
            held.lines[0].quantity = Decimal(9)  # type: ignore[misc]
        assert isinstance(held.lines, tuple)
    line = app.history(deal.id)[-2].details["item"]
    with pytest.raises(TypeError):
        line.unit_price.amount = Decimal(0)
    assert app.get(deal.id).line_items[0].unit_price == Money("100", "USD")
