"""Creating and editing opportunities (seeds 000, 002, 004)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from salesflow import (
    EventKind,
    FixedClock,
    Individual,
    Money,
    Organization,
    Related,
    SalesFlow,
    Status,
    processes,
)
from salesflow.errors import NotFound, TransitionNotAllowed, UnknownStage, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import ACME, new_deal, one_stage_process


def test_standard_and_simple_processes_are_always_defined(app: SalesFlow) -> None:
    assert app.process("standard") is processes.STANDARD
    assert [(s.key, s.probability) for s in app.process("simple").stages] == [
        ("lead", 10),
        ("pitching", 30),
        ("quoting", 50),
        ("closing", 75),
        ("won", 100),
        ("lost", 0),
    ]
    assert [(s.name, s.probability) for s in processes.STANDARD.stages] == [
        ("Lead", 15),
        ("Qualification", 30),
        ("Proposal", 50),
        ("Negotiation", 75),
        ("Closed-Won", 100),
        ("Closed-Lost", 0),
    ]


def test_an_unknown_process_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound, match="nope"):
        app.create_opportunity(title="x", process="nope")


def test_define_process_replaces_by_key(app: SalesFlow) -> None:
    custom = one_stage_process("standard")
    app.define_process(custom)
    assert app.process("standard") == custom
    assert new_deal(app).stage == "a"


def test_a_new_opportunity_starts_in_the_first_open_stage_with_its_probability(
    app: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(app, title="Acme licence")
    assert (deal.stage, deal.probability, deal.status) == ("lead", 15, Status.OPEN)
    assert deal.created_at == deal.stage_entered_at == clock.now()
    assert deal.version == 1
    assert app.get(deal.id) == deal


def test_value_defaults_to_zero_in_the_process_currency(app: SalesFlow) -> None:
    process = one_stage_process("nok", currency="NOK")
    app.define_process(process)
    deal = app.create_opportunity(title="Fjord", process="nok").opportunity
    assert deal.value == Money(0, "NOK")


def test_a_negative_value_is_refused(app: SalesFlow) -> None:
    with pytest.raises(ValidationError, match="value: must not be negative"):
        app.create_opportunity(title="x", value=Money("-1", "USD"))
    deal = new_deal(app, title="x")
    with pytest.raises(ValidationError, match="annual_value: must not be negative"):
        app.update(deal.id, annual_value=Money("-0.01", "USD"))


def test_a_blank_title_counts_as_no_title(app: SalesFlow) -> None:
    deal = app.create_opportunity(title="   ", customer=ACME).opportunity
    assert deal.title is None
    assert deal.display_title == "Acme Corp"


def test_no_title_is_allowed_only_for_an_organization_customer(app: SalesFlow) -> None:
    with pytest.raises(ValidationError, match="title is required"):
        app.create_opportunity(customer=Individual("p1", "Kari Nordmann"))
    with pytest.raises(ValidationError, match="title is required"):
        app.create_opportunity()
    deal = new_deal(app, title="Licence")
    with pytest.raises(ValidationError, match="title is required"):
        app.update(deal.id, title="", customer=Individual("p1", "Kari"))
    assert app.get(deal.id).title == "Licence"


def test_a_process_may_require_a_customer(app: SalesFlow) -> None:
    process = one_stage_process("strict", require_customer=True)
    app.define_process(process)
    with pytest.raises(ValidationError, match="requires a customer"):
        app.create_opportunity(title="No one", process="strict")
    assert app.create_opportunity(title="Someone", process="strict", customer=ACME).opportunity


def test_creating_in_a_given_stage(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app, stage="proposal")
    assert (deal.stage, deal.probability) == ("proposal", 50)
    won = new_deal(app, stage="won")
    assert (won.status, won.probability, won.closed_on) == (Status.WON, 100, clock.now().date())
    with pytest.raises(UnknownStage, match="no stage 'nowhere'"):
        new_deal(app, stage="nowhere")


def test_a_probability_given_at_creation_overrides_the_stage(app: SalesFlow) -> None:
    deal = new_deal(app, probability=42)
    assert (deal.probability, deal.probability_override, deal.stage_probability) == (42, 42, 15)
    with pytest.raises(ValidationError, match=r"0\.\.100"):
        new_deal(app, probability=101)


def test_expected_close_must_be_a_date(app: SalesFlow, clock: FixedClock) -> None:
    with pytest.raises(ValidationError, match="expected a date"):
        new_deal(app, expected_close=clock.now())


def test_update_changes_fields_and_records_old_and_new(app: SalesFlow) -> None:
    deal = new_deal(app, title="Old")
    result = app.update(
        deal.id,
        title="New",
        value=Money("2500.50", "USD"),
        expected_close=dt.date(2026, 6, 30),
        related=[Related("contact", "c1", "Ola")],
        team=("ann", "bob"),
        actor="ann",
    )
    updated = result.opportunity
    assert (updated.title, updated.value, updated.team) == (
        "New",
        Money("2500.50", "USD"),
        ("ann", "bob"),
    )
    assert updated.related == (Related("contact", "c1", "Ola"),)
    assert updated.version == deal.version + 1
    (event,) = result.events
    assert event.kind is EventKind.UPDATED
    assert event.actor == "ann"
    assert event.changes["title"] == ("Old", "New")
    assert event.changes["value"] == (Money("1000", "USD"), Money("2500.50", "USD"))
    assert "stage" not in event.changes
    assert result.notices == ("Saved.",)


def test_update_with_nothing_new_records_nothing(app: SalesFlow) -> None:
    deal = new_deal(app, title="Same")
    result = app.update(deal.id, title="Same")
    assert result.events == ()
    assert result.notices == ("Nothing changed.",)
    assert app.get(deal.id).version == deal.version


def test_update_refuses_fields_it_does_not_edit(app: SalesFlow) -> None:
    deal = new_deal(app, title="x")
    with pytest.raises(ValidationError, match="'stage'"):
        app.update(deal.id, stage="won")


def test_annual_value_must_be_in_the_currency_of_the_value(app: SalesFlow) -> None:
    from salesflow.errors import CurrencyMismatch

    deal = new_deal(app, title="x")
    with pytest.raises(CurrencyMismatch, match="annual_value"):
        app.update(deal.id, annual_value=Money("10", "EUR"))


def test_set_probability_overrides_and_none_follows_the_stage_again(app: SalesFlow) -> None:
    deal = new_deal(app, title="x")
    assert app.set_probability(deal.id, 60).opportunity.probability == 60
    result = app.set_probability(deal.id, None)
    assert result.opportunity.probability == 15
    assert result.events[0].kind is EventKind.PROBABILITY_SET
    assert result.events[0].changes["probability"] == (60, 15)


def test_the_probability_of_a_closed_opportunity_is_fixed(app: SalesFlow) -> None:
    deal = new_deal(app, title="x")
    app.mark_won(deal.id)
    with pytest.raises(TransitionNotAllowed, match="fixed by its stage"):
        app.set_probability(deal.id, 50)


def test_get_of_an_unknown_id_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound, match="'missing'"):
        app.get("missing")


def test_line_items_total_and_billables(app: SalesFlow) -> None:
    from salesflow import LineItem

    line = LineItem("Licence", Decimal(3), Money("100", "USD"), discount_percent=Decimal(10))
    assert line.total == Money("270", "USD")
    assert new_deal(app, title="x").billables_total == Money(0, "USD")


def test_customer_must_be_an_individual_or_organization(app: SalesFlow) -> None:
    with pytest.raises(ValidationError, match="Individual or an Organization"):
        app.create_opportunity(title="x", customer="Acme")  # type: ignore[arg-type]
    assert Organization("o", "Org").name == "Org"


def test_an_id_already_taken_is_refused_at_once(make_app: MakeApp) -> None:
    app = make_app(ids=lambda: "same-id", retries=20, backoff=dt.timedelta(seconds=5))
    app.create_opportunity(title="First")

    with pytest.raises(ValidationError, match="already taken"):
        app.create_opportunity(title="Second")

    assert [o.title for o in app.search().items] == ["First"]
