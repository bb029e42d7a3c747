"""The contract every repository keeps, as a test suite to subclass.

Each backend subclasses :class:`RepositoryContract` once and says how to build a
repository for a workspace; pytest then runs every contract test against it::

    from salesflow.testing import RepositoryContract

    class TestMyRepository(RepositoryContract):
        def make_repository(self, workspace: str) -> Repository:
            return MyRepository(self.url, workspace=workspace)

Repositories built by one test for different workspaces must share their storage
(one file, one database), so that the isolation tests mean something. Each test uses
workspace names no other test uses, so a shared database needs no cleaning between
tests. Repositories that keep records across restarts also subclass
:class:`DurableRepositoryContract`, which adds reopening and bad-data tests.

The tests are plain ``assert`` statements in ``test_*`` methods: they run under
pytest and need nothing else from it, so this module does not import pytest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

from salesflow.domain.activity import Activity
from salesflow.domain.events import Event, EventKind
from salesflow.domain.opportunity import Opportunity, OpportunityAction
from salesflow.domain.process import Process, Stage, StageAction
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Individual,
    LineItem,
    Money,
    Note,
    Organization,
    Related,
    StageKind,
    Status,
)
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import ChangeSet, Repository
from salesflow.serialization import converter

__all__ = [
    "DurableRepositoryContract",
    "RepositoryContract",
    "make_activity",
    "make_event",
    "make_opportunity",
    "make_process",
]

#: The moment the sample records are made at.
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_CET = dt.timezone(dt.timedelta(hours=1))


def make_opportunity(id: str, *, version: int = 1, **fields: Any) -> Opportunity:
    """A sample opportunity in the standard process' first stage; ``fields`` override."""
    values: dict[str, Any] = {
        "id": id,
        "process": "standard",
        "stage": "lead",
        "stage_probability": 15,
        "value": Money("1000.00", "USD"),
        "created_at": T0,
        "stage_entered_at": T0,
        "title": f"Deal {id}",
        "version": version,
    }
    values.update(fields)
    return Opportunity(**values)


def make_rich_opportunity(id: str) -> Opportunity:
    """An opportunity with every kind of field set."""
    call = StageAction(
        "call",
        "Call the customer",
        ActionKind.CALENDAR,
        auto_create=True,
        due_after=relativedelta(days=2, hour=9),
        track_outcome=True,
    )
    return make_opportunity(
        id,
        customer=Organization("org-1", "Acme GmbH"),
        related=(Related("contact", "p-1", "Pat Doe"), Related("company", "c-9")),
        value=Money("12500.50", "EUR"),
        annual_value=Money("30000", "EUR"),
        probability_override=40,
        status=Status.PAUSED,
        expected_close=dt.date(2026, 6, 30),
        pay_date=dt.date(2026, 7, 31),
        owner="ann",
        team=("ann", "bob"),
        external_ref="CRM-17",
        avatar="https://example.com/acme.png",
        notes=(Note("First call went well", "ann", T0.astimezone(_CET)),),
        line_items=(
            LineItem(
                "Licence",
                Decimal("3"),
                Money("99.90", "EUR"),
                discount_percent=Decimal("12.5"),
                service_code="LIC",
                id="line-1",
            ),
        ),
        actions=(
            OpportunityAction("act-1", "lead", call, activity_id="a-1"),
            OpportunityAction(
                "act-2", "qualification", StageAction("nda", "Sign the NDA"), completed_at=T0
            ),
        ),
    )


def make_activity(
    id: str, *, opportunity_id: str | None = None, version: int = 1, **fields: Any
) -> Activity:
    """A sample planned call due at ``T0``; ``fields`` override."""
    values: dict[str, Any] = {
        "id": id,
        "title": f"Call {id}",
        "due": T0,
        "opportunity_id": opportunity_id,
        "created_at": T0,
        "version": version,
    }
    values.update(fields)
    return Activity(**values)


def make_event(id: str, opportunity_id: str | None, **details: Any) -> Event:
    """A sample ``UPDATED`` event of ``opportunity_id`` with ``details``."""
    return Event(id, EventKind.UPDATED, opportunity_id, T0, "ann", details)


def make_process(key: str, name: str = "Sample process") -> Process:
    """A small valid process."""
    return Process(
        key,
        name,
        (
            Stage("new", "New", 10, actions=(StageAction("intro", "Introduce us"),)),
            Stage("offer", "Offer", 60, rot_after=dt.timedelta(days=14), requires=("customer",)),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        currency="EUR",
        cancel_pending=CancelPolicy.CANCEL,
        loss_reasons=("price", "timing"),
    )


@contextlib.contextmanager
def _raises(kind: type[BaseException], *fragments: str) -> Iterator[None]:
    """Like ``pytest.raises``: the block must raise ``kind`` whose message holds every
    fragment."""
    try:
        yield
    except kind as error:
        message = str(error)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} is not in the message {message!r}"
    else:
        raise AssertionError(f"{kind.__name__} was not raised")


class RepositoryContract:
    """The tests every :class:`~salesflow.ports.Repository` must pass.

    Subclass it as ``Test<Backend>`` and implement :meth:`make_repository`.
    """

    def make_repository(self, workspace: str) -> Repository:
        """A repository of ``workspace``, on the storage every call of this test shares."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------

    def repository(self, workspace: str = "main") -> Repository:
        """A repository of a workspace unique to this test (closed after it)."""
        if not hasattr(self, "_opened"):
            self._opened: list[Repository] = []
            self._run = uuid.uuid4().hex[:12]
        repository = self.make_repository(f"t{self._run}-{workspace}")
        self._opened.append(repository)
        return repository

    def teardown_method(self, method: object = None) -> None:
        for repository in getattr(self, "_opened", ()):
            repository.close()

    @staticmethod
    def snapshot(repository: Repository, opportunity_ids: tuple[str, ...] = ()) -> Any:
        """Everything a repository shows, to compare before and after a failed commit."""
        return (
            repository.processes(),
            repository.opportunities(),
            repository.activities(),
            [repository.history(i) for i in opportunity_ids],
        )

    # -- round trips -----------------------------------------------------------

    def test_a_new_repository_is_empty(self) -> None:
        repository = self.repository()
        assert repository.processes() == []
        assert repository.opportunities() == []
        assert repository.activities() == []
        assert repository.get_opportunity("o-1") is None
        assert repository.get_activity("a-1") is None
        assert repository.history("o-1") == []

    def test_an_empty_change_set_changes_nothing(self) -> None:
        repository = self.repository()
        repository.commit(ChangeSet())
        assert self.snapshot(repository) == ([], [], [], [])

    def test_opportunities_come_back_equal(self) -> None:
        repository = self.repository()
        rich = make_rich_opportunity("o-rich")
        plain = make_opportunity("o-plain", customer=Individual("p-1", "Pat Doe"))
        repository.commit(ChangeSet(opportunities=(rich, plain)))
        assert repository.get_opportunity("o-rich") == rich
        assert repository.get_opportunity("o-plain") == plain
        assert repository.opportunities() == [rich, plain]
        stored = repository.get_opportunity("o-rich")
        assert stored is not None
        assert stored.notes[0].at.utcoffset() == dt.timedelta(hours=1)
        assert isinstance(stored.customer, Organization)

    def test_activities_come_back_equal(self) -> None:
        repository = self.repository()
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        activity = make_activity(
            "a-1",
            opportunity_id="o-1",
            kind=ActivityKind.MEETING,
            due=T0.astimezone(_CET),
            stage="lead",
            action_id="act-1",
            owner="bob",
            status=ActivityStatus.DONE,
            outcome="Interested",
            track_outcome=True,
            done_at=T0 + dt.timedelta(hours=2),
        )
        loose = make_activity("a-2", title="Tidy the desk", kind=ActivityKind.TASK)
        repository.commit(ChangeSet(activities=(activity, loose)))
        assert repository.get_activity("a-1") == activity
        assert repository.get_activity("a-2") == loose
        stored = repository.get_activity("a-1")
        assert stored is not None
        assert stored.due.utcoffset() == dt.timedelta(hours=1)

    def test_events_come_back_with_their_details_and_types(self) -> None:
        repository = self.repository()
        details = {
            "changes": {
                "stage": ("lead", "proposal"),
                "value": (Money("1", "USD"), Money("2.50", "USD")),
                "customer": (None, Individual("p-1", "Pat")),
                "expected_close": (None, dt.date(2026, 5, 1)),
                "status": (Status.OPEN, Status.WON),
                "team": ((), ("ann",)),
            },
            "from": "lead",
            "count": 3,
            "flag": True,
            "amount": Decimal("0.10"),
            "due": T0.astimezone(_CET),
            "kinds": [StageKind.OPEN, ActivityKind.CALL],
            "nested": {"ids": ("a", "b"), "none": None},
        }
        event = make_event("e-1", "o-1", **details)
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),), events=(event,)))
        [stored] = repository.history("o-1")
        assert stored == event
        changes = stored.details["changes"]
        assert type(changes["team"]) is tuple
        assert type(changes["team"][1]) is tuple
        assert stored.details["kinds"] == (StageKind.OPEN, ActivityKind.CALL)  # frozen
        assert type(stored.details["nested"]["ids"]) is tuple
        assert type(stored.details["amount"]) is Decimal
        assert type(stored.details["flag"]) is bool
        assert type(changes["expected_close"][1]) is dt.date

    def test_processes_are_replaced_by_key_and_keep_their_place(self) -> None:
        repository = self.repository()
        first, second = make_process("first"), make_process("second")
        repository.commit(ChangeSet(processes=(first, second)))
        assert repository.processes() == [first, second]
        renamed = attrs.evolve(first, name="First, renamed")
        repository.commit(ChangeSet(processes=(renamed,)))
        assert repository.processes() == [renamed, second]

    # -- versions --------------------------------------------------------------

    def test_updates_go_one_version_at_a_time(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        activity = make_activity("a-1", opportunity_id="o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,), activities=(activity,)))
        moved = attrs.evolve(opportunity, stage="proposal", version=2)
        done = attrs.evolve(activity, status=ActivityStatus.DONE, version=2)
        repository.commit(ChangeSet(opportunities=(moved,), activities=(done,)))
        assert repository.get_opportunity("o-1") == moved
        assert repository.get_activity("a-1") == done
        assert repository.opportunities() == [moved]

    def test_a_stale_opportunity_is_a_conflict_and_changes_nothing(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        repository.commit(ChangeSet(opportunities=(attrs.evolve(opportunity, version=2),)))
        before = self.snapshot(repository, ("o-1",))
        stale = attrs.evolve(opportunity, title="Lost update", version=2)
        with _raises(ConcurrencyError, "o-1"):
            repository.commit(
                ChangeSet(
                    opportunities=(stale,),
                    activities=(make_activity("a-new", opportunity_id="o-1"),),
                    events=(make_event("e-1", "o-1"),),
                    processes=(make_process("p-new"),),
                )
            )
        assert self.snapshot(repository, ("o-1",)) == before

    def test_a_version_that_skips_ahead_is_a_conflict(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        with _raises(ConcurrencyError, "o-1"):
            repository.commit(ChangeSet(opportunities=(attrs.evolve(opportunity, version=3),)))
        assert repository.get_opportunity("o-1") == opportunity

    def test_updating_a_record_that_is_not_stored_is_a_conflict(self) -> None:
        repository = self.repository()
        with _raises(ConcurrencyError, "o-ghost"):
            repository.commit(ChangeSet(opportunities=(make_opportunity("o-ghost", version=2),)))
        with _raises(ConcurrencyError, "a-ghost"):
            repository.commit(ChangeSet(activities=(make_activity("a-ghost", version=4),)))
        assert repository.opportunities() == []
        assert repository.activities() == []

    def test_a_stale_activity_is_a_conflict_and_changes_nothing(self) -> None:
        repository = self.repository()
        activity = make_activity("a-1")
        repository.commit(ChangeSet(activities=(activity,)))
        repository.commit(ChangeSet(activities=(attrs.evolve(activity, owner="ann", version=2),)))
        before = self.snapshot(repository, ("o-2",))
        with _raises(ConcurrencyError, "a-1"):
            repository.commit(
                ChangeSet(
                    opportunities=(make_opportunity("o-2"),),
                    activities=(attrs.evolve(activity, owner="bob", version=2),),
                    events=(make_event("e-1", "o-2"),),
                )
            )
        assert self.snapshot(repository, ("o-2",)) == before

    def test_deleting_an_activity_needs_its_current_version(self) -> None:
        repository = self.repository()
        activity = make_activity("a-1")
        keep = make_activity("a-2")
        repository.commit(ChangeSet(activities=(activity, keep)))
        updated = attrs.evolve(activity, title="Renamed", version=2)
        repository.commit(ChangeSet(activities=(updated,)))
        before = self.snapshot(repository)
        with _raises(ConcurrencyError, "a-1"):
            repository.commit(
                ChangeSet(
                    deleted_activities=(activity,),
                    activities=(attrs.evolve(keep, owner="ann", version=2),),
                )
            )
        assert self.snapshot(repository) == before
        repository.commit(ChangeSet(deleted_activities=(updated,)))
        assert repository.get_activity("a-1") is None
        assert repository.activities() == [keep]

    def test_deleting_an_activity_that_is_gone_is_a_conflict(self) -> None:
        repository = self.repository()
        activity = make_activity("a-1")
        repository.commit(ChangeSet(activities=(activity,)))
        repository.commit(ChangeSet(deleted_activities=(activity,)))
        with _raises(ConcurrencyError, "a-1"):
            repository.commit(ChangeSet(deleted_activities=(activity,)))

    def test_a_new_record_whose_id_is_taken_is_refused_at_once(self) -> None:
        # An id clash is not a conflict that running the command again would resolve.
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        activity = make_activity("a-1")
        repository.commit(ChangeSet(opportunities=(opportunity,), activities=(activity,)))
        repository.commit(ChangeSet(opportunities=(attrs.evolve(opportunity, version=2),)))
        before = self.snapshot(repository, ("o-1", "o-2"))
        with _raises(ValidationError, "Opportunity 'o-1': the id is already taken"):
            repository.commit(
                ChangeSet(
                    opportunities=(make_opportunity("o-1", title="Duplicate"),),
                    events=(make_event("e-1", "o-1"),),
                )
            )
        with _raises(ValidationError, "Activity 'a-1': the id is already taken"):
            repository.commit(
                ChangeSet(
                    opportunities=(make_opportunity("o-2"),),
                    activities=(make_activity("a-1", title="Duplicate"),),
                    events=(make_event("e-2", "o-2"),),
                    processes=(make_process("p-new"),),
                )
            )
        assert self.snapshot(repository, ("o-1", "o-2")) == before
        assert repository.get_opportunity("o-2") is None

    def test_one_id_for_two_new_records_of_a_change_set_is_refused(self) -> None:
        repository = self.repository()
        with _raises(ValidationError, "Opportunity 'o-1': the id is already taken"):
            repository.commit(
                ChangeSet(
                    opportunities=(make_opportunity("o-1"), make_opportunity("o-1", title="Twin"))
                )
            )
        with _raises(ValidationError, "Activity 'a-1': the id is already taken"):
            repository.commit(ChangeSet(activities=(make_activity("a-1"), make_activity("a-1"))))
        assert self.snapshot(repository) == ([], [], [], [])

    def test_a_change_set_may_create_a_record_and_update_it(self) -> None:
        repository = self.repository()
        created = make_opportunity("o-1")
        moved = attrs.evolve(created, stage="proposal", version=2)
        activity = make_activity("a-1", opportunity_id="o-1")
        done = attrs.evolve(activity, status=ActivityStatus.DONE, version=2)
        repository.commit(ChangeSet(opportunities=(created, moved), activities=(activity, done)))
        assert repository.opportunities() == [moved]
        assert repository.activities(opportunity_id="o-1") == [done]

    def test_the_id_of_a_deleted_activity_is_taken_by_nothing(self) -> None:
        repository = self.repository()
        activity = make_activity("a-1")
        repository.commit(ChangeSet(activities=(activity,)))
        repository.commit(ChangeSet(deleted_activities=(activity,)))
        again = make_activity("a-1", title="Again")
        repository.commit(ChangeSet(activities=(again,)))
        assert repository.activities() == [again]

    # -- activities and their opportunities ------------------------------------

    def test_an_activity_of_an_opportunity_not_stored_is_refused(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        activity = make_activity("a-1", opportunity_id="o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,), activities=(activity,)))
        before = self.snapshot(repository, ("o-1", "o-2", "o-missing"))
        with _raises(StorageError, "Activity 'a-2'", "opportunity 'o-missing'", "not stored"):
            repository.commit(
                ChangeSet(
                    opportunities=(
                        make_opportunity("o-2"),
                        attrs.evolve(opportunity, title="Changed", version=2),
                    ),
                    activities=(
                        make_activity("a-ok", opportunity_id="o-2"),
                        make_activity("a-2", opportunity_id="o-missing"),
                    ),
                    events=(make_event("e-1", "o-missing"), make_event("e-2", "o-1")),
                    processes=(make_process("p-new"),),
                )
            )
        with _raises(StorageError, "Activity 'a-1'", "opportunity 'o-missing'"):
            repository.commit(
                ChangeSet(
                    activities=(attrs.evolve(activity, opportunity_id="o-missing", version=2),)
                )
            )
        assert self.snapshot(repository, ("o-1", "o-2", "o-missing")) == before
        assert repository.get_activity("a-ok") is None

    def test_an_activity_may_come_with_its_opportunity(self) -> None:
        repository = self.repository()
        activity = make_activity("a-1", opportunity_id="o-1")
        repository.commit(
            ChangeSet(activities=(activity,), opportunities=(make_opportunity("o-1"),))
        )
        assert repository.activities(opportunity_id="o-1") == [activity]

    def test_an_activity_cannot_name_another_workspaces_opportunity(self) -> None:
        a = self.repository("a")
        b = self.repository("b")
        a.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        with _raises(StorageError, "Activity 'a-1'", "opportunity 'o-1'"):
            b.commit(ChangeSet(activities=(make_activity("a-1", opportunity_id="o-1"),)))
        assert b.activities() == []
        assert a.activities() == []

    def test_activities_of_an_opportunity_follow_moves_and_deletions(self) -> None:
        repository = self.repository()
        repository.commit(
            ChangeSet(opportunities=(make_opportunity("o-1"), make_opportunity("o-2")))
        )
        hour = dt.timedelta(hours=1)
        late = make_activity("a-late", opportunity_id="o-1", due=T0 + hour)
        early = make_activity("a-early", opportunity_id="o-1", due=T0 - hour)
        tie = make_activity("a-tie", opportunity_id="o-1", due=T0)
        loose = make_activity("a-loose")
        repository.commit(ChangeSet(activities=(late, early, tie, loose)))
        assert repository.activities(opportunity_id="o-1") == [early, tie, late]
        moved = attrs.evolve(tie, opportunity_id="o-2", version=2)
        attached = attrs.evolve(loose, opportunity_id="o-2", due=T0 - hour, version=2)
        detached = attrs.evolve(late, opportunity_id=None, version=2)
        repository.commit(
            ChangeSet(activities=(moved, attached, detached), deleted_activities=(early,))
        )
        assert repository.activities(opportunity_id="o-1") == []
        assert repository.activities(opportunity_id="o-2") == [attached, moved]
        assert repository.activities(opportunity_id="o-2", due_from=T0) == [moved]
        assert repository.activities() == [attached, moved, detached]

    def test_one_bad_record_writes_none_of_the_good_ones(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        before = self.snapshot(repository, ("o-1", "o-2"))
        good_then_bad = ChangeSet(
            opportunities=(
                make_opportunity("o-2"),
                attrs.evolve(opportunity, title="Good update", version=2),
                make_opportunity("o-3"),
            ),
            activities=(make_activity("a-1", opportunity_id="o-2"), make_activity("a-2")),
            events=(make_event("e-1", "o-2"), make_event("e-2", "o-1")),
            processes=(make_process("p-1"),),
            deleted_activities=(make_activity("a-missing"),),
        )
        with _raises(ConcurrencyError, "a-missing"):
            repository.commit(good_then_bad)
        assert self.snapshot(repository, ("o-1", "o-2")) == before
        assert repository.get_opportunity("o-3") is None

    # -- queries ---------------------------------------------------------------

    def test_history_is_in_commit_order_per_opportunity(self) -> None:
        repository = self.repository()
        repository.commit(
            ChangeSet(
                opportunities=(make_opportunity("o-1"), make_opportunity("o-2")),
                events=(make_event("e-1", "o-1"), make_event("e-2", "o-2", n=1)),
            )
        )
        later = [
            Event(f"e-{i}", EventKind.NOTE_ADDED, "o-1", T0 - dt.timedelta(days=i), None, {"n": i})
            for i in range(3, 8)
        ]
        for event in later:  # each one stamped earlier than the one before it
            repository.commit(ChangeSet(events=(event, make_event(f"x-{event.id}", "o-2"))))
        repository.commit(ChangeSet(events=(make_event("loose", None),)))
        assert [e.id for e in repository.history("o-1")] == ["e-1", *(e.id for e in later)]
        assert repository.history("o-2")[0] == make_event("e-2", "o-2", n=1)
        assert len(repository.history("o-2")) == 6
        assert repository.history("o-3") == []

    def test_opportunities_filter_by_process_in_creation_order(self) -> None:
        repository = self.repository()
        a = make_opportunity("o-c", process="standard")
        b = make_opportunity("o-a", process="simple")
        c = make_opportunity("o-b", process="standard")
        repository.commit(ChangeSet(opportunities=(a, b)))
        repository.commit(ChangeSet(opportunities=(c,)))
        a2 = attrs.evolve(a, stage="won", version=2)
        repository.commit(ChangeSet(opportunities=(a2,)))
        assert repository.opportunities() == [a2, b, c]
        assert repository.opportunities(process="standard") == [a2, c]
        assert repository.opportunities(process="simple") == [b]
        assert repository.opportunities(process="other") == []

    def test_opportunities_filter_by_stage_in_creation_order(self) -> None:
        repository = self.repository()
        a = make_opportunity("o-c", stage="proposal")
        b = make_opportunity("o-a", process="simple", stage="proposal")
        c = make_opportunity("o-b")
        d = make_opportunity("o-d", stage="won")
        repository.commit(ChangeSet(opportunities=(a, b, c, d)))
        c2 = attrs.evolve(c, stage="proposal", version=2)
        repository.commit(ChangeSet(opportunities=(c2,)))
        assert repository.opportunities(stages=["proposal"]) == [a, b, c2]
        assert repository.opportunities(process="standard", stages=("proposal",)) == [a, c2]
        assert repository.opportunities(process="standard", stages={"won", "proposal"}) == [
            a,
            c2,
            d,
        ]
        assert repository.opportunities(stages="won") == [d]  # a lone key is one stage
        assert repository.opportunities(stages=["lead"]) == []
        assert repository.opportunities(stages=[]) == []
        assert repository.opportunities(process="simple", stages=frozenset()) == []
        assert repository.opportunities(stages=["won", "won"]) == [d]
        assert repository.opportunities(stages=None) == [a, b, c2, d]
        with _raises(ValidationError, "stages", "42"):
            repository.opportunities(stages=["won", 42])  # type: ignore[list-item]

    def test_count_by_stage_counts_the_occupied_stages_of_one_process(self) -> None:
        repository = self.repository()
        assert repository.count_by_stage("standard") == {}
        repository.commit(
            ChangeSet(
                opportunities=(
                    make_opportunity("o-1"),
                    make_opportunity("o-2", stage="proposal"),
                    make_opportunity("o-3", stage="proposal"),
                    make_opportunity("o-4", stage="won", status=Status.WON),
                    make_opportunity("o-5", stage="proposal", status=Status.PAUSED),
                    make_opportunity("o-6", process="simple", stage="proposal"),
                )
            )
        )
        counts = repository.count_by_stage("standard")
        assert counts == {"lead": 1, "proposal": 3, "won": 1}
        assert list(counts) == ["lead", "proposal", "won"]
        assert all(type(n) is int for n in counts.values())
        assert repository.count_by_stage("simple") == {"proposal": 1}
        assert repository.count_by_stage("other") == {}
        lead = repository.get_opportunity("o-1")
        assert lead is not None
        repository.commit(ChangeSet(opportunities=(attrs.evolve(lead, stage="won", version=2),)))
        assert repository.count_by_stage("standard") == {"proposal": 3, "won": 2}

    def test_activities_filter_and_sort_by_due_then_id(self) -> None:
        repository = self.repository()
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        hour = dt.timedelta(hours=1)
        # ``late`` is stated in CET but is the latest moment: order is by instant.
        late = make_activity("a-late", due=(T0 + 3 * hour).astimezone(_CET), owner="ann")
        first = make_activity("a-first", opportunity_id="o-1", due=T0 - hour, owner="bob")
        tie_b = make_activity("b-tie", opportunity_id="o-1", due=T0, owner="ann")
        tie_a = make_activity(
            "a-tie", due=T0.astimezone(_CET), owner="ann", status=ActivityStatus.DONE
        )
        repository.commit(ChangeSet(activities=(late, first, tie_b, tie_a)))
        assert repository.activities() == [first, tie_a, tie_b, late]
        assert repository.activities(opportunity_id="o-1") == [first, tie_b]
        assert repository.activities(status=ActivityStatus.DONE) == [tie_a]
        assert repository.activities(status=ActivityStatus.CANCELLED) == []
        assert repository.activities(owner="ann") == [tie_a, tie_b, late]
        assert repository.activities(due_from=T0) == [tie_a, tie_b, late]
        assert repository.activities(due_to=T0) == [first, tie_a, tie_b]
        assert repository.activities(due_from=T0.astimezone(_CET), due_to=T0) == [tie_a, tie_b]
        assert repository.activities(
            opportunity_id="o-1", owner="ann", status=ActivityStatus.PLANNED, due_from=T0
        ) == [tie_b]
        assert repository.activities(due_from=T0 + 4 * hour) == []

    # -- workspaces ------------------------------------------------------------

    def test_a_workspace_never_sees_another(self) -> None:
        a = self.repository("a")
        b = self.repository("b")
        a.commit(
            ChangeSet(
                opportunities=(make_opportunity("o-1"),),
                activities=(make_activity("a-1", opportunity_id="o-1"),),
                events=(make_event("e-1", "o-1"),),
                processes=(make_process("p-1"),),
            )
        )
        assert b.get_opportunity("o-1") is None
        assert b.get_activity("a-1") is None
        assert b.history("o-1") == []
        assert b.opportunities() == []
        assert b.opportunities(process="standard") == []
        assert b.opportunities(stages=["lead"]) == []
        assert b.count_by_stage("standard") == {}
        assert b.activities() == []
        assert b.activities(opportunity_id="o-1") == []
        assert b.processes() == []

    def test_a_workspace_cannot_write_another_ones_records(self) -> None:
        a = self.repository("a")
        b = self.repository("b")
        opportunity = make_opportunity("o-1")
        activity = make_activity("a-1", opportunity_id="o-1")
        a.commit(
            ChangeSet(
                opportunities=(opportunity,),
                activities=(activity,),
                events=(make_event("e-1", "o-1"),),
                processes=(make_process("p-1"),),
            )
        )
        before = self.snapshot(a, ("o-1",))
        with _raises(ConcurrencyError, "o-1"):
            b.commit(
                ChangeSet(opportunities=(attrs.evolve(opportunity, title="Hijack", version=2),))
            )
        with _raises(ConcurrencyError, "a-1"):
            b.commit(ChangeSet(activities=(attrs.evolve(activity, owner="eve", version=2),)))
        with _raises(ConcurrencyError, "a-1"):
            b.commit(ChangeSet(deleted_activities=(activity,)))
        assert self.snapshot(a, ("o-1",)) == before
        # The same ids are free to use in another workspace, and stay apart.
        theirs = make_opportunity("o-1", title="B's own deal")
        b.commit(
            ChangeSet(
                opportunities=(theirs,),
                events=(make_event("e-1", "o-1", side="b"),),
                processes=(make_process("p-1", "B's process"),),
            )
        )
        assert self.snapshot(a, ("o-1",)) == before
        assert b.get_opportunity("o-1") == theirs
        assert [e.details for e in b.history("o-1")] == [{"side": "b"}]
        assert [p.name for p in b.processes()] == ["B's process"]

    # -- threads ---------------------------------------------------------------

    def test_threads_sharing_a_repository_lose_no_update(self) -> None:
        repository = self.repository()
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        threads, rounds = 4, 10
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for n in range(rounds):
                    _bump(repository, "o-1", f"w{worker}-{n}")
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        started = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
        assert errors == []
        final = repository.get_opportunity("o-1")
        assert final is not None
        assert final.version == 1 + threads * rounds
        marks = sorted(e.details["mark"] for e in repository.history("o-1"))
        assert marks == sorted(f"w{w}-{n}" for w in range(threads) for n in range(rounds))


def _bump(repository: Repository, opportunity_id: str, mark: str) -> None:
    """Read, change and commit one opportunity, retrying after conflicts."""
    while True:
        current = repository.get_opportunity(opportunity_id)
        assert current is not None
        changed = attrs.evolve(current, description=mark, version=current.version + 1)
        try:
            repository.commit(
                ChangeSet(
                    opportunities=(changed,), events=(make_event(mark, current.id, mark=mark),)
                )
            )
        except ConcurrencyError:
            continue
        return


class DurableRepositoryContract(RepositoryContract):
    """The extra tests of repositories that keep their records across restarts.

    Implement :meth:`overwrite_stored_data` too: it stands for a person editing the
    database by hand.
    """

    def overwrite_stored_data(self, table: str, workspace: str, key: str, data: str) -> None:
        """Replace the stored JSON of one record of ``table`` ("opportunities",
        "activities", "events", "processes"): ``key`` is its id (its key for
        processes)."""
        raise NotImplementedError

    def test_records_survive_closing_and_reopening(self) -> None:
        first = self.repository("kept")
        workspace = first.workspace
        opportunity = make_rich_opportunity("o-1")
        activity = make_activity("a-1", opportunity_id="o-1")
        event = make_event("e-1", "o-1", changes={"title": (None, "Deal")})
        process = make_process("p-1")
        first.commit(
            ChangeSet(
                opportunities=(opportunity,),
                activities=(activity,),
                events=(event,),
                processes=(process,),
            )
        )
        first.close()
        again = self.make_repository(workspace)
        self._opened.append(again)
        assert again.get_opportunity("o-1") == opportunity
        assert again.get_activity("a-1") == activity
        assert again.history("o-1") == [event]
        assert again.processes() == [process]

    def test_bad_stored_data_is_a_storage_error_naming_the_record(self) -> None:
        repository = self.repository()
        ws = repository.workspace
        opportunity = make_opportunity("o-bad")
        repository.commit(
            ChangeSet(
                opportunities=(opportunity, make_opportunity("o-ok")),
                activities=(make_activity("a-bad"),),
                events=(make_event("e-bad", "o-ok"),),
                processes=(make_process("p-bad"),),
            )
        )
        without_value = converter.unstructure(opportunity)
        del without_value["value"]
        self.overwrite_stored_data("opportunities", ws, "o-bad", json.dumps(without_value))
        with _raises(StorageError, "opportunity 'o-bad'", "value"):
            repository.get_opportunity("o-bad")
        with _raises(StorageError, "opportunity 'o-bad'"):
            repository.opportunities()
        assert repository.get_opportunity("o-ok") == make_opportunity("o-ok")

        self.overwrite_stored_data("activities", ws, "a-bad", '"nonsense"')
        with _raises(StorageError, "activity 'a-bad'"):
            repository.get_activity("a-bad")
        with _raises(StorageError, "activity 'a-bad'"):
            repository.activities()

        event = converter.unstructure(make_event("e-bad", "o-ok"))
        event["details"] = {"changes": [1, 2]}  # untagged: not what salesflow writes
        self.overwrite_stored_data("events", ws, "e-bad", json.dumps(event))
        with _raises(StorageError, "event 'e-bad'", "tagged value"):
            repository.history("o-ok")

        process = converter.unstructure(make_process("p-bad"))
        process["stages"][0]["probability"] = 250  # breaks the Stage's own rule
        self.overwrite_stored_data("processes", ws, "p-bad", json.dumps(process))
        with _raises(StorageError, "process 'p-bad'", "probability"):
            repository.processes()

    def test_a_row_whose_data_disagrees_with_its_version_is_refused(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        data = converter.unstructure(attrs.evolve(opportunity, version=7))
        self.overwrite_stored_data("opportunities", repository.workspace, "o-1", json.dumps(data))
        with _raises(StorageError, "opportunity 'o-1'", "version 7"):
            repository.get_opportunity("o-1")
