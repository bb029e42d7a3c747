"""The change feed and the outbox, through the application, on every repository."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection

import pytest

from salesflow import (
    EventKind,
    FixedClock,
    InMemoryRepository,
    Money,
    Opportunity,
    OpportunityAction,
    SalesFlow,
    Stage,
    StageKind,
)
from salesflow.domain.process import Process
from salesflow.errors import StorageError, ValidationError
from salesflow.ports import PendingCall, current_call
from tests.application.conftest import MakeApp
from tests.unit.support import action, new_deal, seed003_process


class Post:
    """A correspondence and invitations port that fails while ``down`` and notes the
    call (``current_call()``) of every attempt."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.attempts: list[PendingCall | None] = []
        self.made: list[tuple[str, str]] = []

    def _attempt(self, what: str, key: str) -> None:
        self.attempts.append(current_call())
        if self.down:
            raise RuntimeError(f"{what} down")
        self.made.append((what, key))

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self._attempt("mail server", action.key)

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        self._attempt("calendar", event)
        return True


def _seed003(make_app: MakeApp, post: Post) -> tuple[SalesFlow, str]:
    app = make_app(correspondence=post, invitations=post)
    app.define_process(seed003_process())
    return app, new_deal(app, "seed003").id


# -- the change feed ---------------------------------------------------------------


def test_results_subscribers_history_and_the_feed_agree_on_positions(app: SalesFlow) -> None:
    heard: list[tuple[str, int]] = []
    app.subscribe(lambda event: heard.append((event.id, event.position)))
    created = app.create_opportunity(title="Ferry refit", value=Money("100", "EUR"))
    deal = created.opportunity.id
    moved = app.change_stage(deal, "proposal", cancel_pending=False)
    assert [e.position for e in created.events] == [1]
    assert [e.position for e in moved.events] == list(range(2, 2 + len(moved.events)))
    feed = app.changes()
    assert feed == (*created.events, *moved.events)
    assert [(e.id, e.position) for e in feed] == heard
    assert [(e.id, e.position) for e in app.history(deal)] == heard
    assert [e.id for e in app.changes(after=1)] == [e.id for e in moved.events]
    assert app.changes(after=feed[-1].position) == ()


def test_the_feed_holds_every_kind_of_commit(app: SalesFlow, clock: FixedClock) -> None:
    free = app.schedule_activity(title="Call the bank", due=clock.now() + dt.timedelta(days=1))
    bulk = app.create_opportunities([{"title": "A"}, {"title": "B"}], batch_size=1)
    app.define_process(
        Process(
            "mini",
            "Mini",
            (
                Stage("a", "A", 20),
                Stage("w", "W", 100, StageKind.WON),
                Stage("l", "L", 0, StageKind.LOST),
            ),
        )
    )
    deal = app.create_opportunity(title="C", process="mini", stage="a").opportunity.id
    app.define_process(
        Process(
            "mini",
            "Mini",
            (
                Stage("b", "B", 30),
                Stage("w", "W", 100, StageKind.WON),
                Stage("l", "L", 0, StageKind.LOST),
            ),
        ),
        stage_map={"a": "b"},
    )
    feed = app.changes()
    assert [e.position for e in feed] == list(range(1, len(feed) + 1))
    kinds = [(e.kind, e.opportunity_id) for e in feed]
    assert kinds[0] == (EventKind.ACTIVITY_SCHEDULED, None)
    assert feed[0].details["activity_id"] == free.id
    assert [o for k, o in kinds if k is EventKind.CREATED] == [*bulk.succeeded, deal]
    assert kinds[-1] == (EventKind.STAGE_CHANGED, deal)
    assert feed[-1].details["process_changed"] is True


def test_changes_pages_by_limit(app: SalesFlow) -> None:
    for n in range(5):
        app.create_opportunity(title=f"Deal {n}")
    assert [e.position for e in app.changes(limit=2)] == [1, 2]
    assert [e.position for e in app.changes(2, limit=2)] == [3, 4]
    assert [e.position for e in app.changes(4)] == [5]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"after": -1}, "changes(after=...)"),
        ({"after": "3"}, "changes(after=...)"),
        ({"after": True}, "changes(after=...)"),
        ({"after": 1.0}, "changes(after=...)"),
        ({"after": 2**63}, "changes(after=...)"),
        ({"limit": 0}, "changes(limit=...)"),
        ({"limit": 10_001}, "changes(limit=...)"),
        ({"limit": None}, "changes(limit=...)"),
    ],
)
def test_changes_checks_its_arguments(
    app: SalesFlow, arguments: dict[str, object], named: str
) -> None:
    with pytest.raises(ValidationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        app.changes(**arguments)  # type: ignore[arg-type]


# -- the outbox --------------------------------------------------------------------


def test_a_call_made_at_once_leaves_nothing_pending(make_app: MakeApp) -> None:
    post = Post()
    app, deal = _seed003(make_app, post)
    letter = action(app, deal, "brochure")
    result = app.perform_action(deal, letter.id)
    assert result.notices[-1] == "Sent 'Send the brochure'."
    assert post.made == [("mail server", "brochure")]
    (call,) = post.attempts
    assert call is not None
    performed = next(e for e in result.events if e.kind is EventKind.ACTION_PERFORMED)
    assert (call.id, call.action_id, call.attempts) == (performed.id, letter.id, 1)
    assert call.opportunity == result.opportunity
    assert app.deliver_pending() == 0
    assert post.made == [("mail server", "brochure")]
    assert current_call() is None  # only while a port is being called


def test_a_port_that_raises_leaves_the_call_pending_for_deliver_pending(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    post = Post(down=True)
    app, deal = _seed003(make_app, post)
    app.change_stage(deal, "meeting", cancel_pending=False)
    with caplog.at_level(logging.ERROR, logger="salesflow"):
        result = app.perform_action(deal, action(app, deal, "seminar").id)
    # The command stands.
    assert action(app, deal, "seminar").completed
    assert result.events[-1].kind is EventKind.ACTION_COMPLETED
    assert result.notices[-1] == (
        "'Invite to the seminar' could not be sent: calendar down. "
        "It is pending and will be sent by deliver_pending()."
    )
    assert "calendar down" in caplog.text
    assert post.made == []
    # Still down: tried once per run, still pending.
    assert app.deliver_pending() == 0
    post.down = False
    assert app.deliver_pending() == 1
    assert post.made == [("calendar", "Spring seminar")]
    assert app.deliver_pending() == 0
    # Every attempt was the same call, under the same id.
    ids = {c.id for c in post.attempts if c is not None}
    assert len(post.attempts) == 3
    assert ids == {result.events[0].id}
    assert [c.attempts for c in post.attempts if c is not None] == [1, 2, 3]


def test_deliver_pending_makes_calls_oldest_first_up_to_its_limit(make_app: MakeApp) -> None:
    post = Post(down=True)
    app = make_app(correspondence=post, invitations=post)
    app.define_process(seed003_process())
    deals = [new_deal(app, "seed003", title=f"Deal {n}").id for n in range(3)]
    for deal in deals:
        app.perform_action(deal, action(app, deal, "brochure").id)
    post.down = False
    post.attempts.clear()
    assert app.deliver_pending(limit=2) == 2
    assert [c.opportunity.id for c in post.attempts if c is not None] == deals[:2]
    assert app.deliver_pending(limit=0) == 0
    assert app.deliver_pending(limit=5) == 1
    assert [c.opportunity.id for c in post.attempts if c is not None] == deals


@pytest.mark.parametrize("limit", [-1, "2", 2.0, True])
def test_deliver_pending_checks_its_limit(app: SalesFlow, limit: object) -> None:
    with pytest.raises(ValidationError, match=r"deliver_pending\(limit=\.\.\.\)"):
        app.deliver_pending(limit=limit)  # type: ignore[arg-type]


def test_a_call_claimed_by_a_process_that_died_waits_for_its_lease(
    make_app: MakeApp, clock: FixedClock
) -> None:
    post = Post(down=True)
    app, deal = _seed003(make_app, post)
    app.perform_action(deal, action(app, deal, "brochure").id)
    # Another process claims the call and dies before making it.
    now = clock.now()
    (claimed,) = app.repository.claim_calls(now=now, until=now + app.call_lease, limit=10)
    post.down = False
    assert app.deliver_pending() == 0
    clock.advance(app.call_lease - dt.timedelta(seconds=1))
    assert app.deliver_pending() == 0
    clock.advance(dt.timedelta(seconds=1))
    assert app.deliver_pending() == 1
    assert post.made == [("mail server", "brochure")]
    assert post.attempts[-1] is not None
    assert (post.attempts[-1].id, post.attempts[-1].attempts) == (claimed.id, 3)


def test_a_letter_goes_out_with_the_deal_as_its_command_left_it(make_app: MakeApp) -> None:
    post = Post(down=True)
    app, deal = _seed003(make_app, post)
    result = app.perform_action(deal, action(app, deal, "brochure").id)
    app.update(deal, title="Renamed later")
    post.down = False
    assert app.deliver_pending() == 1
    call = post.attempts[-1]
    assert call is not None
    assert call.opportunity == result.opportunity
    assert call.opportunity.title != "Renamed later"


class Contended(InMemoryRepository):
    """Between a command's commit and its claim, another process takes the calls (or,
    with ``broken``, the claim fails)."""

    def __init__(self, *, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken

    def claim_calls(
        self,
        *,
        now: dt.datetime,
        until: dt.datetime,
        limit: int,
        after: int = 0,
        ids: Collection[str] | None = None,
    ) -> list[PendingCall]:
        if ids is not None and self.broken:
            raise StorageError("the disk is gone")
        if ids is not None:  # the other process' claim
            super().claim_calls(now=now, until=until, limit=limit, after=after)
        return super().claim_calls(now=now, until=until, limit=limit, after=after, ids=ids)


def test_a_call_another_process_took_first_is_left_to_it(clock: FixedClock) -> None:
    post = Post()
    app = SalesFlow(Contended(), clock=clock, correspondence=post, invitations=post)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003").id
    result = app.perform_action(deal, action(app, deal, "brochure").id)
    assert result.notices[-1] == "'Send the brochure' is being sent by another process."
    assert post.attempts == []
    clock.advance(app.call_lease)  # that process died: its lease runs out
    assert app.deliver_pending() == 1
    assert post.made == [("mail server", "brochure")]


def test_a_claim_that_fails_after_the_commit_leaves_the_call_pending(clock: FixedClock) -> None:
    post = Post()
    repository = Contended(broken=True)
    app = SalesFlow(repository, clock=clock, correspondence=post, invitations=post)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003").id
    result = app.perform_action(deal, action(app, deal, "brochure").id)
    assert action(app, deal, "brochure").completed
    assert result.notices[-1] == (
        "'Send the brochure' could not be sent: the disk is gone. "
        "It is pending and will be sent by deliver_pending()."
    )
    assert app.deliver_pending() == 1
    assert post.made == [("mail server", "brochure")]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("call_lease", "x"), ("call_lease", dt.timedelta(0)), ("call_batch", 0), ("call_batch", 2.5)],
)
def test_bad_delivery_settings_are_refused(app: SalesFlow, setting: str, value: object) -> None:
    setattr(app, setting, value)
    with pytest.raises(ValidationError, match=f"SalesFlow.{setting}"):
        app.deliver_pending()
