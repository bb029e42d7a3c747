"""The rules of assignment, billables, invoices and the team policy, on the domain
objects alone (no application, no repository), with properties that must always
hold."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow import (
    Event,
    EventKind,
    InvoiceDraft,
    LineItem,
    Money,
    Opportunity,
    Status,
    TeamPolicy,
    TicketRef,
    initials,
)
from salesflow.domain import checks
from salesflow.domain.deal import Deal
from salesflow.domain.events import contributors
from salesflow.domain.values import minor_digits, round_money
from salesflow.errors import (
    AlreadyAssigned,
    CurrencyMismatch,
    NotFound,
    SalesflowError,
    ValidationError,
)
from salesflow.policies import MANAGER_COMMANDS
from salesflow.processes import STANDARD
from salesflow.serialization import from_json, to_json
from tests.strategies import CURRENCIES, decimals, names, text
from tests.unit.support import ACME

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def opportunity(**fields: Any) -> Opportunity:
    values: dict[str, Any] = {
        "id": "o-1",
        "process": "standard",
        "stage": "lead",
        "stage_probability": 15,
        "value": Money("1000", "USD"),
        "created_at": NOW,
        "stage_entered_at": NOW,
        "title": "Acme licence",
        "customer": ACME,
    }
    values.update(fields)
    return Opportunity(**values)


def deal(held: Opportunity, actor: str | None = "per") -> Deal:
    counter = iter(range(1, 1000))
    return Deal(
        process=STANDARD,
        opportunity=held,
        activities=(),
        now=NOW,
        timezone=dt.UTC,
        actor=actor,
        new_id=lambda: f"id-{next(counter)}",
    )


# -- assignment -------------------------------------------------------------------------


@given(owner=st.none() | st.sampled_from(["olga", "per"]), actor=st.sampled_from(["olga", "per"]))
def test_a_claim_succeeds_exactly_when_unowned_or_already_the_actors(
    owner: str | None, actor: str
) -> None:
    held = opportunity(owner=owner)
    if owner in (None, actor):
        assert held.claimed_by(actor).owner == actor
    else:
        with pytest.raises(AlreadyAssigned):
            held.claimed_by(actor)


def test_assignment_events_carry_from_and_to_and_read_only_details() -> None:
    working = deal(opportunity(owner="olga"), actor="mona")
    working.assign("per")
    working.unassign()
    working.opportunity = attrs.evolve(working.opp)  # as loaded again
    claimer = deal(working.opp, actor="kari")
    claimer.claim()
    events = [*working.events, *claimer.events]
    assert [(e.kind, e.details["from"], e.details["to"]) for e in events] == [
        (EventKind.ASSIGNED, "olga", "per"),
        (EventKind.UNASSIGNED, "per", None),
        (EventKind.CLAIMED, None, "kari"),
    ]
    for event in events:
        with pytest.raises(TypeError):
            event.details["to"] = "someone"  # type: ignore[index]
        with pytest.raises(TypeError):
            event.details["changes"]["owner"] = ("x", "y")


def test_a_deal_without_actor_cannot_claim() -> None:
    with pytest.raises(ValidationError, match="actor"):
        deal(opportunity(), actor=None).claim()


def _event(actor: str | None, **changes: tuple[Any, Any]) -> Event:
    return Event(
        id="e", kind=EventKind.UPDATED, opportunity_id="o", at=NOW, actor=actor,
        details={"changes": changes},
    )  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.none() | st.sampled_from(["a", "b", "c"]),
            st.none() | st.sampled_from(["b", "d"]),
            st.lists(st.sampled_from(["e", "a"]), max_size=2),
        ),
        max_size=6,
    )
)
def test_contributors_name_every_actor_owner_and_member_once_in_order(
    steps: list[tuple[str | None, str | None, list[str]]],
) -> None:
    history = [
        _event(actor, owner=(None, owner), team=((), tuple(team))) for actor, owner, team in steps
    ]
    expected: list[str] = []
    for actor, owner, team in steps:
        for person in (actor, owner, *team):
            if person is not None and person not in expected:
                expected.append(person)
    assert contributors(history) == tuple(expected)


# -- billables --------------------------------------------------------------------------

#: Line items small enough to be billed (their figures within the storable bounds).
small = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)


def lines(currency: str) -> st.SearchStrategy[LineItem]:
    return st.builds(
        LineItem,
        text,
        small,
        st.builds(Money, small, st.just(currency)),
        discount_percent=st.integers(0, 100).map(Decimal),
    )


@given(st.sampled_from(CURRENCIES).flatmap(lambda c: st.lists(lines(c), min_size=1, max_size=6)))
def test_billables_are_rounded_once_per_line_and_the_invoice_adds_up(
    items: list[LineItem],
) -> None:
    currency = items[0].currency
    working = deal(opportunity(value=Money(0, currency)))
    for item in items:
        working.add_line_item(item)
    held = working.opp
    exact = sum((i.total.amount for i in items), Decimal(0))
    assert held.billables_total == Money(
        sum((round_money(i.total).amount for i in items), Decimal(0)), currency
    )
    unit = Decimal(1).scaleb(-minor_digits(currency))
    assert abs(held.billables_total.amount - exact) <= len(items) * unit / 2
    draft = working.invoice("INV-1", issued=dt.date(2026, 3, 2), due_in=dt.timedelta(days=14))
    assert draft.total == held.billables_total
    assert draft.subtotal.amount - draft.discount.amount == draft.total.amount
    assert all(line.amount.amount <= line.subtotal.amount for line in draft.lines)
    assert [line.line_id for line in draft.lines] == [i.id for i in held.line_items]
    assert len({i.id for i in held.line_items}) == len(items)


steps = st.one_of(
    st.tuples(st.just("add"), lines("EUR")), st.tuples(st.just("remove"), st.integers(0, 5))
)


@given(st.lists(steps, max_size=8))
def test_a_value_that_follows_its_billables_always_equals_their_total(
    steps: list[tuple[str, Any]],
) -> None:
    working = deal(opportunity(value=Money("5", "EUR")))
    working.update({"value_from_billables": True})
    assert working.opp.value == Money(0, "EUR")
    for step, argument in steps:
        before = working.opp.value
        if step == "add":
            working.add_line_item(argument)
        elif working.opp.line_items:
            items = working.opp.line_items
            working.remove_line_item(items[argument % len(items)].id or "")
        else:
            continue
        assert working.opp.value == working.opp.billables_total
        if working.opp.value != before:
            assert working.events[-1].changes["value"] == (before, working.opp.value)


def test_a_line_in_another_currency_is_a_currency_mismatch() -> None:
    with pytest.raises(CurrencyMismatch, match="EUR"):
        opportunity().with_line_item(LineItem("x", 1, Money(1, "EUR"), id="l"))


def test_a_line_too_large_to_store_is_refused() -> None:
    huge = LineItem("x", Decimal(10) ** 9, Money(Decimal(10) ** 9, "USD"), id="l")
    with pytest.raises(ValidationError, match="quantity x unit price"):
        opportunity().with_line_item(huge)


def test_removing_an_unknown_line_is_not_found() -> None:
    with pytest.raises(NotFound, match="'nope'"):
        opportunity().without_line_item("nope")


def test_an_invoice_needs_a_due_date_not_before_its_issue() -> None:
    held = opportunity(line_items=(LineItem("x", 1, Money(1, "USD"), id="l"),))
    with pytest.raises(ValidationError, match="before"):
        held.invoice_draft("1", issued=dt.date(2026, 3, 2), due=dt.date(2026, 3, 1))


def test_an_invoice_draft_is_frozen_and_needs_lines() -> None:
    held = opportunity(line_items=(LineItem("x", 1, Money(1, "USD"), id="l"),))
    draft = held.invoice_draft("1", issued=dt.date(2026, 3, 2), due=dt.date(2026, 3, 2))
    with pytest.raises(AttributeError):
        draft.number = "2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        draft.total.amount = Decimal(5)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="at least one line"):
        attrs.evolve(draft, lines=())
    assert isinstance(draft, InvoiceDraft)


def test_a_linked_ticket_is_kept_once() -> None:
    held = opportunity().with_ticket(TicketRef("T-1", "Bug"))
    assert held.with_ticket(TicketRef("T-1", "Other")) is held
    assert held.tickets == (TicketRef("T-1", "Bug"),)


# -- the card ---------------------------------------------------------------------------


@given(text)
def test_initials_are_at_most_two_capitals_of_the_words(name: str) -> None:
    found = initials(name)
    assert len(found) <= 2
    assert found == found.upper()
    words = [w for w in name.split() if any(c.isalnum() for c in w)]
    assert len(found) == min(2, len(words))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Acme Corp", "AC"), ("Nordic Freight AS", "NF"), ("olga", "O"), ("  ", ""), ("- x", "X")],
)
def test_initials_of_some_names(name: str, expected: str) -> None:
    assert initials(name) == expected


# -- the team policy --------------------------------------------------------------------

commands = st.sampled_from(
    sorted(
        {*MANAGER_COMMANDS, "claim", "unassign", "add_note", "change_stage", "invoice", "update"}
    )
)
people = st.sampled_from(["mona", "olga", "per", "sam"])


@given(
    actor=st.none() | people,
    command=commands,
    owner=st.none() | people,
    team=st.lists(people, max_size=2, unique=True),
    on_deal=st.booleans(),
    team_may_change=st.booleans(),
)
def test_the_team_policy(  # noqa: PLR0917 - one argument per drawn value
    actor: str | None,
    command: str,
    owner: str | None,
    team: list[str],
    on_deal: bool,
    team_may_change: bool,
) -> None:
    policy = TeamPolicy("mona", team_may_change=team_may_change)
    held = opportunity(owner=owner, team=tuple(team)) if on_deal else None
    allowed = policy.allows(actor, command, held)
    if actor is None:
        assert not allowed
    elif actor == "mona":
        assert allowed
    elif command in MANAGER_COMMANDS:
        assert not allowed
    elif command in ("claim", "add_note") or held is None:
        assert allowed
    elif command == "unassign":
        assert allowed == (owner == actor)
    else:
        assert allowed == (owner == actor or (team_may_change and actor in team))


@given(names, st.sampled_from(sorted(Status, key=lambda s: s.value)))
def test_a_note_is_recorded_with_its_author(author: str, status: Status) -> None:
    working = deal(opportunity(status=status), actor=author)
    working.add_note("text as given <b>")
    (note,) = working.opp.notes
    assert (note.text, note.author, note.at) == ("text as given <b>", author, NOW)
    assert working.events[0].details["note"] == note


@given(decimals, decimals)
def test_any_line_item_either_adds_or_is_refused_with_a_salesflow_error(
    quantity: Decimal, price: Decimal
) -> None:
    held = opportunity()
    item = LineItem("x", quantity, Money(price, "USD"), id="l")
    try:
        added = held.with_line_item(item)
    except SalesflowError:
        return
    checks.money(added.billables_total, "total")


def test_an_opportunity_stored_before_tickets_and_the_billables_flag_reads_back() -> None:
    held = opportunity(owner="olga")
    data = json.loads(to_json(held))
    del data["tickets"], data["value_from_billables"]
    loaded = from_json(json.dumps(data), Opportunity)
    assert loaded == held
    assert (loaded.tickets, loaded.value_from_billables) == ((), False)
