"""History, subscribers, the retry loop and search."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import attrs
import pytest

from salesflow import (
    Event,
    EventKind,
    FixedClock,
    Individual,
    InMemoryRepository,
    Money,
    Related,
    SalesFlow,
    Status,
)
from salesflow.errors import ConcurrencyError, NotFound, ValidationError
from salesflow.ports import ChangeSet
from tests.unit.support import new_deal

DAY = dt.timedelta(days=1)


def test_history_is_oldest_first_with_who_and_when(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app, title="x", actor="ann")
    clock.advance(DAY)
    app.change_stage(deal.id, "proposal", actor="bob")
    clock.advance(DAY)
    app.mark_won(deal.id, actor="ann")
    history = app.history(deal.id)
    assert [e.kind for e in history] == [
        EventKind.CREATED,
        EventKind.STAGE_CHANGED,
        EventKind.STAGE_CHANGED,
    ]
    assert [e.actor for e in history] == ["ann", "bob", "ann"]
    assert [e.at for e in history] == [clock.now() - 2 * DAY, clock.now() - DAY, clock.now()]


def test_the_created_event_lists_every_tracked_field(app: SalesFlow) -> None:
    deal = new_deal(app, title="x", owner="ann")
    created = app.history(deal.id)[0]
    assert created.changes["stage"] == (None, "lead")
    assert created.changes["owner"] == (None, "ann")
    assert created.changes["value"] == (None, Money("1000", "USD"))
    assert created.changes["probability"] == (None, 15)


def test_folding_the_changes_rebuilds_the_tracked_state(app: SalesFlow, clock: FixedClock) -> None:
    deal = new_deal(app, title="x")
    app.update(deal.id, value=Money("2000", "USD"), expected_close=dt.date(2026, 5, 1))
    app.set_probability(deal.id, 40)
    app.change_stage(deal.id, "negotiation")
    app.pause(deal.id)
    state: dict[str, object] = {}
    for event in app.history(deal.id):
        state.update({name: new for name, (_old, new) in event.changes.items()})
    assert state == app.get(deal.id).tracked()


def test_history_of_an_unknown_opportunity_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound):
        app.history("nope")


def test_subscribers_hear_each_event_after_commit_in_order(app: SalesFlow) -> None:
    heard: list[tuple[EventKind, int]] = []

    def listener(event: object) -> None:
        from salesflow import Event

        assert isinstance(event, Event)
        assert event.opportunity_id is not None
        heard.append((event.kind, app.get(event.opportunity_id).version))

    app.subscribe(listener)
    deal = new_deal(app, title="x")
    app.mark_won(deal.id)
    assert heard == [(EventKind.CREATED, 1), (EventKind.STAGE_CHANGED, 2)]


def test_subscribers_hear_commits_of_many_threads_in_commit_order(app: SalesFlow) -> None:
    deals = [new_deal(app, title=f"Deal {n}").id for n in range(4)]
    heard: list[int] = []

    def slow_subscriber(event: Event) -> None:
        time.sleep(0.001)  # a subscriber that takes its time, as a real one does
        heard.append(event.position)

    app.subscribe(slow_subscriber)
    refused: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(25):
                deal = deals[(k + i) % len(deals)]
                app.add_note(deal, f"note {k}-{i}")
                app.set_probability(deal, (i * k) % 101)
        except BaseException as error:  # checked below
            refused.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not refused, refused
    assert heard == sorted(heard)  # in commit order
    stored = sorted(e.position for deal in deals for e in app.history(deal))
    assert heard == [p for p in stored if p > stored[len(deals) - 1]]  # each once


def test_a_failing_subscriber_never_undoes_the_command(
    app: SalesFlow, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[EventKind] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    app.subscribe(broken)
    app.subscribe(lambda e: heard.append(e.kind))
    with caplog.at_level(logging.ERROR, logger="salesflow"):
        deal = new_deal(app, title="x")
    assert app.get(deal.id).title == "x"
    assert heard == [EventKind.CREATED]
    assert "listener bug" in caplog.text


def test_unsubscribe_stops_the_events(app: SalesFlow) -> None:
    heard: list[EventKind] = []
    unsubscribe = app.subscribe(lambda e: heard.append(e.kind))
    new_deal(app, title="a")
    unsubscribe()
    new_deal(app, title="b")
    assert heard == [EventKind.CREATED]


class FlakyRepository(InMemoryRepository):
    """Refuses the first ``conflicts`` commits as if another writer had won the race."""

    def __init__(self, conflicts: int) -> None:
        super().__init__()
        self.conflicts = conflicts
        self.attempts = 0

    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        self.attempts += 1
        if self.attempts <= self.conflicts:
            raise ConcurrencyError("someone else wrote first")
        return super().commit(changes)


def test_a_conflict_re_runs_the_command(clock: FixedClock) -> None:
    repository = FlakyRepository(conflicts=3)
    app = SalesFlow(repository, clock=clock, backoff=dt.timedelta(0))
    deal = new_deal(app, title="x")
    assert repository.attempts == 4
    assert [e.kind for e in app.history(deal.id)] == [EventKind.CREATED]


def test_a_conflict_outlasting_the_retry_budget_reaches_the_caller(clock: FixedClock) -> None:
    repository = FlakyRepository(conflicts=10)
    app = SalesFlow(repository, clock=clock, retries=2, backoff=dt.timedelta(0))
    with pytest.raises(ConcurrencyError, match="gave up after 3 attempts"):
        new_deal(app, title="x")
    assert repository.opportunities() == []


def test_a_stale_write_is_a_conflict(app: SalesFlow) -> None:
    deal = new_deal(app, title="x")
    app.update(deal.id, title="y")
    stale = attrs.evolve(deal, title="stale", version=deal.version + 1)
    with pytest.raises(ConcurrencyError, match="version"):
        app.repository.commit(ChangeSet(opportunities=(stale,)))
    assert app.get(deal.id).title == "y"


# -- search -----------------------------------------------------------------------------


def test_search_text_matches_title_description_and_customer(app: SalesFlow) -> None:
    a = new_deal(app, title="Fjord licence")
    b = new_deal(app, title="Other", description="about FJORDS")
    c = new_deal(app, title="Third", customer=Individual("p", "Ola Fjordmann"))
    new_deal(app, title="Unrelated")
    found = app.search(text="fjord", order_by="title")
    assert [o.id for o in found.items] == [a.id, b.id, c.id]
    assert found.total == 3


def test_search_filters_order_and_pages(app: SalesFlow, clock: FixedClock) -> None:
    early = new_deal(app, title="Early", expected_close=dt.date(2026, 3, 1), owner="ann")
    late = new_deal(
        app,
        title="Late",
        expected_close=dt.date(2026, 9, 1),
        related=(Related("contact", "c9", "Kari"),),
    )
    none = new_deal(app, title="Undated", owner="ann")
    app.mark_won(none.id)
    assert [o.id for o in app.search().items] == [early.id, late.id, none.id]
    assert [o.id for o in app.search(order_by="-expected_close").items] == [
        late.id,
        early.id,
        none.id,
    ]
    assert [o.id for o in app.search(owner="ann").items] == [early.id, none.id]
    assert [o.id for o in app.search(statuses=[Status.WON]).items] == [none.id]
    assert [o.id for o in app.search(related_id="c9").items] == [late.id]
    assert [o.id for o in app.search(overdue=True).items] == [early.id]
    assert [o.id for o in app.search(close_from=dt.date(2026, 4, 1)).items] == [late.id]
    page = app.search(limit=1, offset=1)
    assert ([o.id for o in page.items], page.total) == ([late.id], 3)
    with pytest.raises(ValidationError, match="cannot order by"):
        app.search(order_by="colour")


def test_search_orders_by_stage_in_process_order_not_by_key(app: SalesFlow) -> None:
    # by key: lead < negotiation < proposal < qualification; in the process it is
    # lead, qualification, proposal, negotiation
    deals = {stage: new_deal(app, title=stage) for stage in ("negotiation", "lead", "proposal")}
    for stage, deal in deals.items():
        if stage != "lead":
            app.change_stage(deal.id, stage)
    app.change_stage(new_deal(app, title="qualification").id, "qualification")

    ordered = [o.stage for o in app.search(order_by="stage").items]
    backwards = [o.stage for o in app.search(order_by="-stage").items]

    assert ordered == ["lead", "qualification", "proposal", "negotiation"]
    assert backwards == ordered[::-1]
