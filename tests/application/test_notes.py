"""Notes, tickets and tasks on a deal (seed 002), and a customer's deals (seeds 000,
002) -- on every repository."""

from __future__ import annotations

import datetime as dt

import pytest

from salesflow import (
    ActivityKind,
    DealCounts,
    EventKind,
    FixedClock,
    Individual,
    Note,
    Organization,
    Related,
    SalesFlow,
    TicketRef,
)
from salesflow.errors import NotFound, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import ACME, new_deal

# -- notes ------------------------------------------------------------------------------


def test_a_note_has_its_author_time_and_text(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app, title="Acme licence")
    clock.advance(dt.timedelta(minutes=5))

    result = app.add_note(deal.id, "They want <b>two</b> seats", actor="per")

    note = Note(text="They want <b>two</b> seats", author="per", at=clock.now())
    assert result.opportunity.notes == (note,)
    assert app.get(deal.id).notes == (note,)
    (event,) = result.events
    assert event.kind is EventKind.NOTE_ADDED
    assert event.details["note"] == note
    assert result.notices == ("Added a note to 'Acme licence'.",)


def test_notes_keep_their_order_and_an_anonymous_author(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.add_note(deal.id, "first", actor="per")
    app.add_note(deal.id, "second")
    notes = app.get(deal.id).notes
    assert [(n.text, n.author) for n in notes] == [("first", "per"), ("second", None)]


@pytest.mark.parametrize("text", ["", "   ", None, 5, "a\x00b", "x" * 100_001])
def test_a_note_must_be_text_that_is_not_blank(app: SalesFlow, text: object) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match=r"add_note\(text=...\)"):
        app.add_note(deal.id, text)  # type: ignore[arg-type]
    assert app.get(deal.id) == deal


def test_a_note_on_an_unknown_deal_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound):
        app.add_note("missing", "hello")


# -- tickets ----------------------------------------------------------------------------


def test_linking_a_ticket(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")

    result = app.link_ticket(deal.id, "T-17", "Login fails", actor="per")

    assert result.opportunity.tickets == (TicketRef("T-17", "Login fails"),)
    assert app.get(deal.id).tickets == (TicketRef("T-17", "Login fails"),)
    (event,) = result.events
    assert event.kind is EventKind.TICKET_LINKED
    assert event.details["ticket"] == TicketRef("T-17", "Login fails")
    assert result.notices == ("Linked ticket 'T-17' to 'Acme licence'.",)


def test_a_ticket_already_linked_changes_nothing(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")
    app.link_ticket(deal.id, "T-17", "Login fails")
    version = app.get(deal.id).version

    result = app.link_ticket(deal.id, "T-17", "Another title")

    assert result.events == ()
    assert result.notices == ("Ticket 'T-17' is already linked to 'Acme licence'.",)
    assert app.get(deal.id).tickets == (TicketRef("T-17", "Login fails"),)
    assert app.get(deal.id).version == version


@pytest.mark.parametrize(
    ("ticket_id", "title", "argument"),
    [("", "t", "ticket_id"), (None, "t", "ticket_id"), ("T-1", " ", "title"), ("T-1", 4, "title")],
)
def test_ticket_arguments_are_checked(
    app: SalesFlow, ticket_id: object, title: object, argument: str
) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match=rf"link_ticket\({argument}=...\)"):
        app.link_ticket(deal.id, ticket_id, title)  # type: ignore[arg-type]
    assert app.get(deal.id).tickets == ()


def test_tasks_are_activities_of_kind_task(app: SalesFlow) -> None:
    deal = new_deal(app)
    task = app.schedule_activity(
        title="Send the contract",
        due=dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC),
        kind=ActivityKind.TASK,
        opportunity_id=deal.id,
        owner="per",
    )
    assert app.activities(opportunity_id=deal.id, owner="per") == [task]
    assert task.kind is ActivityKind.TASK


# -- a customer's deals ---------------------------------------------------------------


def test_search_by_customer_finds_its_open_and_closed_deals(app: SalesFlow) -> None:
    other = Individual("i-9", "Ida")
    open_one = new_deal(app, title="open")
    won = new_deal(app, title="won")
    lost = new_deal(app, title="lost")
    paused = new_deal(app, title="paused")
    new_deal(app, title="someone else's", customer=other)
    app.mark_won(won.id, cancel_pending=False)
    app.mark_lost(lost.id, cancel_pending=False)
    app.pause(paused.id)

    found = app.search(customer_id=ACME.id, order_by="title")
    assert [o.title for o in found.items] == ["lost", "open", "paused", "won"]
    assert found.total == 4
    assert app.deal_counts(customer_id=ACME.id) == DealCounts(open=1, paused=1, won=1, lost=1)
    assert app.deal_counts(customer_id=ACME.id).total == 4
    assert app.deal_counts(customer_id=other.id) == DealCounts(open=1, paused=0, won=0, lost=0)
    assert open_one.id in [o.id for o in found.items]


def test_a_customer_without_deals_counts_zero(app: SalesFlow) -> None:
    new_deal(app)
    assert app.deal_counts(customer_id="nobody") == DealCounts(0, 0, 0, 0)
    assert app.search(customer_id="nobody").total == 0


def test_search_by_related_record_counts_a_contacts_deals(app: SalesFlow) -> None:
    contact = Related("contact", "c-1", "Carl")
    candidate = Related("candidate", "k-1", "Kim")
    first = new_deal(app, title="first", related=(contact,))
    second = new_deal(app, title="second", related=(contact, candidate))
    new_deal(app, title="third")
    app.mark_lost(second.id, cancel_pending=False)

    found = app.search(related_id="c-1", order_by="title")
    assert [o.id for o in found.items] == [first.id, second.id]
    assert app.deal_counts(related_id="c-1") == DealCounts(open=1, paused=0, won=0, lost=1)
    assert app.deal_counts(related_id="k-1").total == 1
    # relinking follows: the contact leaves the first deal
    app.update(first.id, related=(candidate,))
    assert app.deal_counts(related_id="c-1").total == 1
    assert app.deal_counts(related_id="k-1").total == 2


def test_search_by_customer_follows_a_changed_customer(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.update(deal.id, customer=Organization("o-2", "Beta AS"))
    assert app.search(customer_id=ACME.id).total == 0
    assert [o.id for o in app.search(customer_id="o-2").items] == [deal.id]


def test_deal_counts_takes_exactly_one_record(app: SalesFlow) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        app.deal_counts()
    with pytest.raises(ValidationError, match="exactly one"):
        app.deal_counts(customer_id="a", related_id="b")
    with pytest.raises(ValidationError, match="customer_id"):
        app.deal_counts(customer_id=" ")


def test_deal_counts_are_per_workspace(make_app: MakeApp) -> None:
    first, second = make_app(), make_app()
    new_deal(first)
    assert first.deal_counts(customer_id=ACME.id).open == 1
    assert second.deal_counts(customer_id=ACME.id).total == 0
