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
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

from salesflow import queries
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
from salesflow.ports import ChangeSet, PendingCall, Repository
from salesflow.queries import (
    GROUPINGS,
    ORDERINGS,
    Basis,
    ClosedDeal,
    DealState,
    ForecastQuery,
    ForecastTotals,
    Page,
    PipelineTotals,
    Revision,
    SearchQuery,
    StageTotal,
    pipeline_totals,
)
from salesflow.serialization import converter

__all__ = [
    "DurableRepositoryContract",
    "RepositoryContract",
    "make_activity",
    "make_call",
    "make_event",
    "make_opportunity",
    "make_process",
]

#: The moment the sample records are made at.
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
_CET = dt.timezone(dt.timedelta(hours=1))
#: A moment after every sample record.
_LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


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


def make_call(id: str, opportunity: Opportunity, **fields: Any) -> PendingCall:
    """A sample LETTER call queued at ``T0`` for ``opportunity``'s first action (or an
    action named ``letter``); ``fields`` override."""
    action_id = opportunity.actions[0].id if opportunity.actions else "letter"
    values: dict[str, Any] = {
        "id": id,
        "kind": ActionKind.LETTER,
        "opportunity": opportunity,
        "action_id": action_id,
        "queued_at": T0,
    }
    values.update(fields)
    return PendingCall(**values)


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


_PROCESS_STAGES = {
    "standard": ("lead", "qualification", "proposal", "negotiation", "won", "lost"),
    "simple": ("lead", "pitching", "quoting", "closing", "won", "lost"),
}

#: Where ``order_by="stage"`` puts the stages of the query tests' processes; the
#: process "custom" has no place for "lead", "proposal", "won" or "pitching".
_STAGE_ORDER: dict[tuple[str, str], int] = {
    **{(p, s): i for p, stages in _PROCESS_STAGES.items() for i, s in enumerate(stages)},
    ("custom", "gone"): 0,
}


def _query_strategies() -> tuple[Any, Any, Any]:
    """Hypothesis strategies for the query property: opportunities drawn from small
    pools (so that filters, ties and empty values meet), search queries and pipeline
    questions. Imported lazily: hypothesis is needed only to run the contract."""
    from hypothesis import strategies as st

    def sometimes(strategy: Any) -> Any:
        # None three times in four, so that queries combine a few filters and match.
        return st.tuples(st.integers(0, 3), strategy).map(lambda t: t[1] if t[0] == 0 else None)

    today = T0.date()
    text = st.text(st.sampled_from("aAbß%_'\\ sSİiﬁ"), max_size=5)
    names = text.filter(lambda t: bool(t.strip()))
    owners = st.sampled_from(("ann", "Ann", "bob", "a_n"))
    ids = st.sampled_from(
        [
            "o-1",
            "o-10",
            "o-2",
            "O-3",
            "a",
            "b",
            "é",
            "o_1",
            "o%1",
            "zz",
            "ä-1",
            "Z",
            "o-9",
            "o'9",
            "o\\9",
        ]
    )
    processes = st.sampled_from(("standard", "simple", "custom"))
    stages = st.sampled_from(("lead", "proposal", "won", "pitching", "gone"))
    customer_ids = st.sampled_from(("c-1", "c-2", "C-1"))
    related_ids = st.sampled_from(("p-1", "p-2", "c-1"))
    days = st.integers(-3, 3).map(lambda n: today + dt.timedelta(days=n))
    amounts = st.one_of(
        st.sampled_from(("0", "1", "1.5", "1.50", "0.000001", "999999999999999.999999")).map(
            Decimal
        ),
        st.integers(0, 6).flatmap(
            lambda places: st.decimals(
                min_value=0, max_value=10**15 - 1, places=places, allow_nan=False
            )
        ),
    )
    money = st.builds(Money, amounts, st.sampled_from(("USD", "EUR")))
    moments = st.sampled_from(
        (T0, T0.astimezone(_CET), T0 + dt.timedelta(microseconds=1), T0 - dt.timedelta(days=400))
    )
    customers = (
        st.none()
        | st.builds(Individual, customer_ids, names)
        | st.builds(Organization, customer_ids, names)
    )
    opportunities = st.builds(
        Opportunity,
        id=ids,
        process=processes,
        stage=stages,
        stage_probability=st.integers(0, 100),
        value=money,
        created_at=moments,
        stage_entered_at=st.just(T0),
        title=st.none() | names,
        description=text,
        customer=customers,
        related=st.lists(st.builds(Related, st.just("contact"), related_ids, text), max_size=2).map(
            tuple
        ),
        annual_value=st.none() | money,
        probability_override=st.none() | st.integers(0, 100),
        status=st.sampled_from(Status),
        expected_close=st.none() | days,
        owner=st.none() | owners,
        version=st.just(1),
    )
    queries = st.builds(
        SearchQuery,
        today=st.just(today),
        text=sometimes(text),
        process=sometimes(processes),
        stages=sometimes(st.frozensets(stages, max_size=3)),
        statuses=sometimes(st.frozensets(st.sampled_from(Status), max_size=3)),
        owner=sometimes(owners),
        customer_id=sometimes(customer_ids),
        related_id=sometimes(related_ids),
        close_from=sometimes(days),
        close_to=sometimes(days),
        overdue=sometimes(st.booleans()),
        order_by=st.sampled_from((*ORDERINGS, *(f"-{key}" for key in ORDERINGS))),
        limit=st.integers(0, 8),
        offset=st.integers(0, 6),
        stage_order=st.just(_STAGE_ORDER),
    )
    pipelines = st.tuples(processes, st.sampled_from(("value", "annual_value")), st.none() | owners)
    return opportunities, queries, pipelines


def _report_strategies() -> tuple[Any, Any, Any, Any, Any]:
    """Hypothesis strategies for the reports' property: deals with their histories
    drawn from small pools (so that moments, days, stages and owners meet), and the
    reports' questions. Imported lazily, like :func:`_query_strategies`."""
    from hypothesis import strategies as st

    hour = dt.timedelta(hours=1)
    moments = st.sampled_from(
        (
            *(T0 + n * hour for n in range(-3, 4)),
            T0.astimezone(_CET),
            T0 + dt.timedelta(microseconds=1),
        )
    )
    days = st.integers(-2, 2).map(lambda n: T0.date() + dt.timedelta(days=n))
    stages = st.sampled_from(("lead", "proposal", "won"))
    owners = st.none() | st.sampled_from(("ann", "bob"))
    amounts = st.sampled_from(("0", "1", "2.50", "0.000001", "999999999999999.999999"))
    money = st.builds(Money, amounts.map(Decimal), st.sampled_from(("USD", "EUR", "GBP")))
    olds = {
        "stage": stages,
        "status": st.sampled_from(Status),
        "owner": owners,
        "value": money,
        "annual_value": st.none() | money,
        "probability": st.integers(0, 100),
        "expected_close": st.none() | days,
        "closed_on": st.none() | days,
        "title": st.just("Old title"),
    }
    changes = st.fixed_dictionaries(
        {}, optional={name: old.map(lambda v: (v, v)) for name, old in olds.items()}
    )

    @st.composite
    def events(draw: Any, opportunity_id: str, number: int) -> Event:
        kind = draw(
            st.sampled_from(
                (
                    EventKind.CREATED,
                    EventKind.UPDATED,
                    EventKind.STAGE_CHANGED,
                    EventKind.NOTE_ADDED,
                )
            )
        )
        details: dict[str, Any] = {"changes": draw(changes)}
        if kind is EventKind.CREATED:
            details["stage"] = draw(stages)
        elif kind is EventKind.STAGE_CHANGED:
            details.update({"from": draw(stages), "to": draw(stages)})
        return _event(
            f"e-{opportunity_id}-{number}", opportunity_id, kind, draw(moments), **details
        )

    @st.composite
    def deals(draw: Any, opportunity_id: str) -> tuple[Opportunity, list[Event]]:
        opportunity = make_opportunity(
            opportunity_id,
            process=draw(st.sampled_from(("standard", "simple"))),
            stage=draw(stages),
            stage_probability=draw(st.integers(0, 100)),
            status=draw(st.sampled_from(Status)),
            owner=draw(owners),
            value=draw(money),
            annual_value=draw(st.none() | money),
            probability_override=draw(st.none() | st.integers(0, 100)),
            expected_close=draw(st.none() | days),
            closed_on=draw(st.none() | days),
            loss_reason=draw(st.none() | st.just("price")),
            created_at=draw(moments),
            stage_entered_at=draw(moments),
        )
        count = draw(st.integers(0, 4))
        return opportunity, [draw(events(opportunity_id, n)) for n in range(count)]

    stores = st.integers(0, 7).flatmap(
        lambda n: st.tuples(*(deals(f"d-{i}") for i in range(n))).map(list)
    )
    processes = st.sampled_from(("standard", "simple"))
    forecasts = st.builds(
        ForecastQuery,
        start=days,
        end=days,
        process=st.none() | processes,
        owner=owners,
        group_by=st.sampled_from((None, *GROUPINGS)),
        deals=st.booleans(),
    )
    bounds = st.tuples(st.none() | days, st.none() | days)
    cutoffs = st.dictionaries(stages, moments, max_size=3)
    return stores, moments, forecasts, bounds, cutoffs


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


def _event(
    id: str, opportunity_id: str | None, kind: EventKind, at: dt.datetime, **details: Any
) -> Event:
    """An event of ``kind`` recorded at ``at`` with ``details``."""
    return Event(id, kind, opportunity_id, at, "ann", details)


def _created(id: str, opportunity: Opportunity, at: dt.datetime | None = None) -> Event:
    """The ``CREATED`` event of ``opportunity`` (at its creation unless told), with the
    changes a command records: every report field from None."""
    changes = {
        "stage": (None, opportunity.stage),
        "status": (None, opportunity.status),
        "owner": (None, opportunity.owner),
        "value": (None, opportunity.value),
        "probability": (None, opportunity.probability),
    }
    return _event(
        id,
        opportunity.id,
        EventKind.CREATED,
        opportunity.created_at if at is None else at,
        stage=opportunity.stage,
        changes=changes,
    )


def _moved(id: str, opportunity_id: str, at: dt.datetime, source: str, target: str) -> Event:
    """A ``STAGE_CHANGED`` event from ``source`` to ``target`` at ``at``."""
    return _event(
        id,
        opportunity_id,
        EventKind.STAGE_CHANGED,
        at,
        changes={"stage": (source, target)},
        **{"from": source, "to": target},
    )


class _Records:
    """Opportunities and events committed to one repository, kept beside it: what the
    definitions in :mod:`salesflow.queries` are applied to, to check its answers."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.opportunities: dict[str, Opportunity] = {}
        self.histories: dict[str, list[Event]] = {}

    def commit(self, *records: Opportunity | Event) -> None:
        opportunities = tuple(r for r in records if isinstance(r, Opportunity))
        events = tuple(r for r in records if isinstance(r, Event))
        self.repository.commit(ChangeSet(opportunities=opportunities, events=events))
        for opportunity in opportunities:
            self.opportunities[opportunity.id] = opportunity
        for event in events:
            if event.opportunity_id is not None:
                self.histories.setdefault(event.opportunity_id, []).append(event)

    def history(self, opportunity_id: str) -> list[Event]:
        return self.histories.get(opportunity_id, [])

    def revision(self, process: str | None, at: dt.datetime) -> Revision:
        """The revision the definition gives, its states ordered by id."""
        found = queries.revision(
            (
                (o, tuple(self.history(o.id)))
                for o in self.opportunities.values()
                if process is None or o.process == process
            ),
            at,
        )
        return _by_id(found)

    def forecast_totals(self, query: ForecastQuery) -> ForecastTotals:
        return queries.forecast_totals(self.opportunities.values(), query)

    def closed_deals(
        self, process: str, *, start: dt.date | None, end: dt.date | None
    ) -> list[ClosedDeal]:
        return queries.closed_deals(
            self.opportunities.values(), self.history, process=process, start=start, end=end
        )

    def stuck(self, process: str, cutoffs: dict[str, dt.datetime]) -> list[Opportunity]:
        return queries.stuck(self.opportunities.values(), process=process, cutoffs=cutoffs)


def _by_id(revision: Revision) -> Revision:
    """``revision`` with its states ordered by id (the port leaves their order open)."""
    return Revision(
        tuple(sorted(revision.now, key=lambda s: s.id)),
        tuple(sorted(revision.then, key=lambda s: s.id)),
    )


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
            repository.process_as_of("p-new", _LATER),
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
        assert self.snapshot(repository) == ([], None, [], [], [])

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
        repository.commit(ChangeSet(processes=(first, second), defined_at=T0))
        assert repository.processes() == [first, second]
        renamed = attrs.evolve(first, name="First, renamed")
        repository.commit(ChangeSet(processes=(renamed,), defined_at=T0))
        assert repository.processes() == [renamed, second]

    def test_each_definition_of_a_process_is_kept_with_when_it_was_defined(self) -> None:
        repository = self.repository()
        first = make_process("p-1")
        renamed = attrs.evolve(first, name="Renamed")
        again = attrs.evolve(first, name="Renamed again")
        hour = dt.timedelta(hours=1)
        repository.commit(ChangeSet(processes=(first,), defined_at=T0))
        repository.commit(ChangeSet(processes=(renamed,), defined_at=T0 + hour))
        repository.commit(ChangeSet(processes=(again,), defined_at=T0 + hour))
        assert repository.process_as_of("p-1", T0 - dt.timedelta(microseconds=1)) is None
        assert repository.process_as_of("p-1", T0) == first
        assert repository.process_as_of("p-1", T0 + hour / 2) == first
        # Two definitions at one moment: the later commit's is the one in effect.
        assert repository.process_as_of("p-1", T0 + hour) == again
        assert repository.process_as_of("p-1", _LATER.astimezone(_CET)) == again
        assert repository.process_as_of("p-2", _LATER) is None
        assert repository.processes() == [again]

    def test_a_definition_made_with_a_clock_set_back_is_in_effect_from_its_moment(
        self,
    ) -> None:
        repository = self.repository()
        later, earlier = make_process("p-1"), make_process("p-1", "Defined second")
        repository.commit(ChangeSet(processes=(later,), defined_at=T0 + dt.timedelta(days=2)))
        repository.commit(ChangeSet(processes=(earlier,), defined_at=T0))
        assert repository.process_as_of("p-1", T0 + dt.timedelta(days=1)) == earlier
        assert repository.process_as_of("p-1", T0 + dt.timedelta(days=3)) == later
        assert repository.processes() == [earlier]

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
                    defined_at=T0,
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
                    defined_at=T0,
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
        assert self.snapshot(repository) == ([], None, [], [], [])

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
                    defined_at=T0,
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
            defined_at=T0,
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

    # -- the change feed -------------------------------------------------------

    def test_commit_numbers_the_events_in_commit_order(self) -> None:
        repository = self.repository()
        first = repository.commit(
            ChangeSet(
                opportunities=(make_opportunity("o-1"),),
                events=(make_event("e-1", "o-1"), make_event("e-2", None)),
            )
        )
        assert [(e.id, e.position) for e in first] == [("e-1", 1), ("e-2", 2)]
        assert first[0] == make_event("e-1", "o-1")  # the same event, now numbered
        assert repository.commit(ChangeSet(opportunities=(make_opportunity("o-2"),))) == ()
        later = repository.commit(ChangeSet(events=(make_event("e-3", "o-2", n=3),)))
        assert [(e.id, e.position) for e in later] == [("e-3", 3)]
        feed = repository.changes(0, 100)
        assert [(e.id, e.position) for e in feed] == [("e-1", 1), ("e-2", 2), ("e-3", 3)]
        assert feed == [*first, *later]
        assert feed[2].details == {"n": 3}
        assert [e.position for e in repository.history("o-1")] == [1]

    def test_changes_pages_from_a_position(self) -> None:
        repository = self.repository()
        for n in range(1, 8):
            repository.commit(ChangeSet(events=(make_event(f"e-{n}", None, n=n),)))
        assert [e.position for e in repository.changes(2, 3)] == [3, 4, 5]
        assert [e.id for e in repository.changes(5, 100)] == ["e-6", "e-7"]
        assert repository.changes(7, 100) == []
        assert repository.changes(1000, 1) == []
        seen: list[int] = []
        cursor = 0
        while page := repository.changes(cursor, 2):
            seen.extend(e.position for e in page)
            cursor = page[-1].position
        assert seen == list(range(1, 8))

    def test_each_workspace_numbers_its_own_feed(self) -> None:
        a, b = self.repository("a"), self.repository("b")
        a.commit(ChangeSet(events=(make_event("a-1", None), make_event("a-2", None))))
        b.commit(ChangeSet(events=(make_event("b-1", None),)))
        a.commit(ChangeSet(events=(make_event("a-3", None),)))
        assert [(e.id, e.position) for e in a.changes(0, 10)] == [
            ("a-1", 1),
            ("a-2", 2),
            ("a-3", 3),
        ]
        assert [(e.id, e.position) for e in b.changes(0, 10)] == [("b-1", 1)]

    def test_a_refused_or_undone_commit_leaves_no_gap_in_the_feed(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(
            ChangeSet(opportunities=(opportunity,), events=(make_event("e-1", "o-1"),))
        )
        with _raises(ConcurrencyError):
            repository.commit(
                ChangeSet(
                    opportunities=(attrs.evolve(opportunity, version=3),),
                    events=(make_event("stale", "o-1"),),
                )
            )
        with contextlib.suppress(RuntimeError), repository.command("o-1"):
            repository.commit(ChangeSet(events=(make_event("undone", "o-1"),)))
            raise RuntimeError("the command fails after its commit")
        (event,) = repository.commit(ChangeSet(events=(make_event("e-2", "o-1"),)))
        assert event.position == 2
        assert [(e.id, e.position) for e in repository.changes(0, 10)] == [("e-1", 1), ("e-2", 2)]

    def test_a_reader_polling_while_threads_commit_sees_every_event_once(self) -> None:
        repository = self.repository()
        threads, rounds = 4, 10
        done = threading.Event()
        errors: list[BaseException] = []
        seen: list[int] = []

        def write(worker: int) -> None:
            try:
                for n in range(rounds):
                    repository.commit(
                        ChangeSet(
                            events=(
                                make_event(f"w{worker}-{n}", None),
                                make_event(f"w{worker}-{n}b", None),
                            )
                        )
                    )
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        def read() -> None:
            try:
                cursor = 0
                while True:
                    finished = done.is_set()
                    page = repository.changes(cursor, 7)
                    seen.extend(e.position for e in page)
                    if page:
                        cursor = page[-1].position
                    elif finished:
                        return
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        reader.join()
        assert errors == []
        everything = repository.changes(0, 1000)
        assert seen == [e.position for e in everything] == list(range(1, 2 * threads * rounds + 1))
        # The two events of one commit sit side by side.
        for first, second in zip(everything[::2], everything[1::2], strict=True):
            assert second.id == first.id + "b"

    # -- the outbox ------------------------------------------------------------

    def test_a_queued_call_comes_back_whole_when_claimed(self) -> None:
        repository = self.repository()
        opportunity = make_rich_opportunity("o-1")
        call = make_call("c-1", opportunity, action_id="act-2")
        repository.commit(ChangeSet(opportunities=(opportunity,), outbox=(call,)))
        (claimed,) = repository.claim_calls(now=T0, until=T0 + dt.timedelta(minutes=5), limit=10)
        assert claimed.attempts == 1
        assert claimed.seq > 0
        assert attrs.evolve(claimed, attempts=0, seq=0) == call
        assert claimed.opportunity == opportunity
        assert claimed.action.key == "nda"

    def test_a_claimed_call_is_leased_until_it_is_made(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(
            ChangeSet(opportunities=(opportunity,), outbox=(make_call("c-1", opportunity),))
        )
        until = T0 + dt.timedelta(minutes=5)
        assert [c.id for c in repository.claim_calls(now=T0, until=until, limit=10)] == ["c-1"]
        # Leased: no one else gets it until the lease has run out.
        assert repository.claim_calls(now=T0, until=until, limit=10) == []
        assert (
            repository.claim_calls(now=until - dt.timedelta(seconds=1), until=until, limit=10) == []
        )
        (again,) = repository.claim_calls(
            now=until, until=until + dt.timedelta(minutes=5), limit=10
        )
        assert again.attempts == 2
        repository.finish_call("c-1")
        assert repository.claim_calls(now=until + dt.timedelta(days=1), until=until, limit=10) == []
        repository.finish_call("c-1")  # already gone: nothing happens

    def test_a_released_call_is_free_at_once(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(
            ChangeSet(opportunities=(opportunity,), outbox=(make_call("c-1", opportunity),))
        )
        until = T0 + dt.timedelta(minutes=5)
        repository.claim_calls(now=T0, until=until, limit=1)
        repository.release_call("c-1", "RuntimeError: mail server down")
        (again,) = repository.claim_calls(now=T0, until=until, limit=1)
        assert (again.id, again.attempts) == ("c-1", 2)
        repository.release_call("c-missing", "nothing")  # gone: nothing happens

    def test_calls_are_claimed_in_queue_order_after_a_cursor_or_by_id(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(
            ChangeSet(
                opportunities=(opportunity,),
                outbox=(make_call("c-b", opportunity), make_call("c-a", opportunity)),
            )
        )
        repository.commit(ChangeSet(outbox=(make_call("c-c", opportunity),)))
        until = T0 + dt.timedelta(minutes=5)
        first = repository.claim_calls(now=T0, until=until, limit=1)
        assert [c.id for c in first] == ["c-b"]
        repository.release_call("c-b", "failed")
        rest = repository.claim_calls(now=T0, until=until, limit=10, after=first[0].seq)
        assert [c.id for c in rest] == ["c-a", "c-c"]
        assert rest[0].seq < rest[1].seq
        repository.release_call("c-c", "failed")
        assert [
            c.id for c in repository.claim_calls(now=T0, until=until, limit=10, ids=["c-c", "c-x"])
        ] == ["c-c"]
        assert repository.claim_calls(now=T0, until=until, limit=10, ids=[]) == []
        assert repository.claim_calls(now=T0, until=until, limit=0) == []

    def test_the_outbox_commits_and_undoes_with_its_change_set(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        with _raises(StorageError, "o-missing"):
            repository.commit(
                ChangeSet(
                    activities=(make_activity("a-1", opportunity_id="o-missing"),),
                    outbox=(make_call("c-1", opportunity),),
                )
            )
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        with contextlib.suppress(RuntimeError), repository.command("o-1"):
            repository.commit(ChangeSet(outbox=(make_call("c-2", opportunity),)))
            raise RuntimeError("the command fails after its commit")
        until = T0 + dt.timedelta(minutes=5)
        assert repository.claim_calls(now=T0, until=until, limit=10) == []
        repository.commit(ChangeSet(outbox=(make_call("c-3", opportunity),)))
        with _raises(ValidationError, "c-3"):
            repository.commit(ChangeSet(outbox=(make_call("c-3", opportunity),)))
        assert [c.id for c in repository.claim_calls(now=T0, until=until, limit=10)] == ["c-3"]

    def test_a_workspace_claims_only_its_own_calls(self) -> None:
        a, b = self.repository("a"), self.repository("b")
        opportunity = make_opportunity("o-1")
        a.commit(ChangeSet(opportunities=(opportunity,), outbox=(make_call("c-1", opportunity),)))
        until = T0 + dt.timedelta(minutes=5)
        assert b.claim_calls(now=T0, until=until, limit=10) == []
        b.finish_call("c-1")
        assert [c.id for c in a.claim_calls(now=T0, until=until, limit=10)] == ["c-1"]

    def test_threads_claiming_at_once_each_get_a_call_once(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        calls = tuple(make_call(f"c-{n:02}", opportunity) for n in range(30))
        repository.commit(ChangeSet(opportunities=(opportunity,), outbox=calls))
        until = T0 + dt.timedelta(minutes=5)
        taken: list[str] = []
        errors: list[BaseException] = []

        def claim() -> None:
            try:
                while batch := repository.claim_calls(now=T0, until=until, limit=3):
                    taken.extend(c.id for c in batch)
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(taken) == [c.id for c in calls]

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

    # -- the query side: search and pipeline -----------------------------------

    def test_search_and_pipeline_totals_agree_with_the_reference(self) -> None:
        # Random opportunities and random queries: every answer must be the one
        # ``SearchQuery.page`` and ``pipeline_totals`` give over the same opportunities.
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        opportunities, queries, pipelines = _query_strategies()
        examples = iter(range(10**6))

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(
            stored=st.lists(opportunities, max_size=14, unique_by=lambda o: o.id),
            previous=st.lists(opportunities, min_size=14, max_size=14),
            asked=st.lists(queries, min_size=1, max_size=4),
            summed=st.lists(pipelines, min_size=1, max_size=3),
        )
        def check(
            stored: list[Opportunity],
            previous: list[Opportunity],
            asked: list[SearchQuery],
            summed: list[tuple[str, Basis, str | None]],
        ) -> None:
            # Half the opportunities are created as they are; the others are created
            # as something else and updated to what they are, so that the columns and
            # related ids an update writes are what the queries read too.
            half = len(stored) // 2
            final = [*stored[:half], *(attrs.evolve(o, version=2) for o in stored[half:])]
            earlier = [
                attrs.evolve(p, id=o.id) for p, o in zip(previous, stored[half:], strict=False)
            ]
            repository = self.repository(f"q{next(examples)}")
            try:
                if stored:
                    repository.commit(ChangeSet(opportunities=(*stored[:half], *earlier)))
                    repository.commit(ChangeSet(opportunities=tuple(final[half:])))
                for query in asked:
                    assert repository.search(query) == query.page(final), query
                for process, basis, owner in summed:
                    members = [o for o in final if o.process == process]
                    expected = pipeline_totals(members, basis=basis, owner=owner)
                    found = repository.pipeline_totals(process, basis=basis, owner=owner)
                    assert found == expected, (process, basis, owner)
            finally:
                repository.close()

        check()

    def test_search_text_matches_literally_and_ignores_case(self) -> None:
        repository = self.repository()
        stored = [
            make_opportunity("o-percent", title="100% sure"),
            make_opportunity("o-percentless", title="100 percent sure"),
            make_opportunity("o-underscore", title="a_b"),
            make_opportunity("o-axb", title="axb"),
            make_opportunity("o-quote", title="O'Brien's deal"),
            make_opportunity("o-backslash", title="C:\\deals\\new"),
            make_opportunity("o-street", title="Big", description="Hauptstraße 5"),
            make_opportunity("o-customer", title=None, customer=Organization("c-1", "ACME Ltd")),
            make_opportunity("o-plain", title="Plain", description="nothing special"),
        ]
        repository.commit(ChangeSet(opportunities=tuple(stored)))
        expectations = {
            "%": ["o-percent"],
            "0% s": ["o-percent"],
            "_": ["o-underscore"],
            "a_b": ["o-underscore"],
            "'": ["o-quote"],
            "o'brien": ["o-quote"],
            "\\": ["o-backslash"],
            "\\DEALS\\": ["o-backslash"],
            "STRASSE": ["o-street"],
            "acme": ["o-customer"],
            "big hauptstr": ["o-street"],  # title, a blank, then the description
            "%%": [],
            "a%b": [],
            "x": ["o-axb"],
        }
        for text, ids in expectations.items():
            query = SearchQuery(today=T0.date(), text=text, order_by="title")
            page = repository.search(query)
            assert sorted(o.id for o in page.items) == sorted(ids), text
            assert page.total == len(ids)
            assert page == query.page(stored), text

    def test_search_follows_related_ids_through_updates(self) -> None:
        repository = self.repository()
        first = make_opportunity(
            "o-1", related=(Related("contact", "p-1"), Related("company", "c-1"))
        )
        second = make_opportunity("o-2", related=(Related("contact", "p-1"),))
        repository.commit(ChangeSet(opportunities=(first, second)))

        def found(related_id: str) -> list[str]:
            query = SearchQuery(today=T0.date(), related_id=related_id)
            return [o.id for o in repository.search(query).items]

        assert found("p-1") == ["o-1", "o-2"]
        assert found("c-1") == ["o-1"]
        assert found("c") == []
        moved = attrs.evolve(first, related=(Related("contact", "p-2"),), version=2)
        repository.commit(ChangeSet(opportunities=(moved,)))
        assert found("p-1") == ["o-2"]
        assert found("c-1") == []
        assert found("p-2") == ["o-1"]
        other = self.repository("other")
        assert other.search(SearchQuery(today=T0.date(), related_id="p-1")) == Page((), 0)

    def test_search_pages_count_every_match(self) -> None:
        repository = self.repository()
        stored = [
            make_opportunity(f"o-{i}", expected_close=dt.date(2026, 4, 1 + i % 5))
            for i in range(12)
        ]
        repository.commit(ChangeSet(opportunities=tuple(stored)))
        for limit, offset in ((5, 0), (5, 10), (5, 12), (5, 40), (0, 0), (0, 3), (12, 0)):
            query = SearchQuery(today=T0.date(), limit=limit, offset=offset)
            page = repository.search(query)
            assert page == query.page(stored), (limit, offset)
            assert page.total == 12

    def test_pipeline_sums_stay_exact_beyond_64_bit_integers(self) -> None:
        repository = self.repository()
        largest = Money("999999999999999.999999", "USD")
        stored = [
            make_opportunity(
                f"o-{i:03d}",
                value=largest,
                annual_value=largest if i % 2 else None,
                probability_override=100 - i % 3,
                stage="proposal" if i % 4 else "lead",
            )
            for i in range(120)
        ]
        stored.append(make_opportunity("o-small", value=Money("0.000001", "USD")))
        repository.commit(ChangeSet(opportunities=tuple(stored)))
        for basis in ("value", "annual_value"):
            expected = pipeline_totals(stored, basis=basis)
            found = repository.pipeline_totals("standard", basis=basis)
            assert found == expected
            assert sum(row.amount for row in found.rows) == sum(
                (o.value.amount for o in stored), Decimal(0)
            )

    def test_pipeline_totals_leave_paused_deals_out_and_count_them(self) -> None:
        repository = self.repository()
        stored = [
            make_opportunity("o-1", value=Money("10.50", "EUR"), owner="ann"),
            make_opportunity("o-2", value=Money("0.25", "EUR"), probability_override=40),
            make_opportunity("o-3", value=Money("7", "USD"), owner="ann"),
            make_opportunity("o-4", stage="proposal", status=Status.PAUSED, owner="ann"),
            make_opportunity("o-5", process="simple", value=Money("99", "EUR")),
            make_opportunity(
                "o-6",
                stage="won",
                stage_probability=100,
                status=Status.WON,
                value=Money("5", "EUR"),
                annual_value=Money("60", "GBP"),
            ),
            make_opportunity("o-7", annual_value=Money("0", "EUR"), value=Money("3", "EUR")),
        ]
        repository.commit(ChangeSet(opportunities=tuple(stored)))
        standard = [o for o in stored if o.process == "standard"]
        totals = repository.pipeline_totals("standard", basis="value")
        assert totals == pipeline_totals(standard, basis="value")
        assert totals.paused == 1
        # 10.50 x 15% + 0.25 x 40% + 3 x 15%
        assert totals.rows[0] == StageTotal("lead", "EUR", 3, Decimal("13.75"), Decimal("2.125"))
        assert [(r.stage, r.currency) for r in totals.rows] == [
            ("lead", "EUR"),
            ("lead", "USD"),
            ("won", "EUR"),
        ]
        annual = repository.pipeline_totals("standard", basis="annual_value")
        assert annual == pipeline_totals(standard, basis="annual_value")
        assert ("won", "GBP") in [(r.stage, r.currency) for r in annual.rows]
        mine = repository.pipeline_totals("standard", basis="value", owner="ann")
        assert mine == pipeline_totals(standard, basis="value", owner="ann")
        assert mine.paused == 1
        assert repository.pipeline_totals("none", basis="value") == PipelineTotals((), 0)

    # -- the query side: reports -----------------------------------------------

    def test_the_reports_of_an_empty_store_are_empty(self) -> None:
        repository = self.repository()
        assert repository.revision(None, T0) == Revision()
        assert repository.revision("standard", T0 - dt.timedelta(days=1000)) == Revision()
        for group_by in (None, *GROUPINGS):
            query = ForecastQuery(
                start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1), group_by=group_by, deals=True
            )
            assert repository.forecast_totals(query) == ForecastTotals(())
        assert repository.closed_deals("standard", start=None, end=None) == []
        assert repository.stuck("standard", {"lead": T0 + dt.timedelta(days=1000)}) == []
        assert repository.stuck("standard", {}) == []

    def test_revision_agrees_with_the_definition(self) -> None:
        hour, day, tick = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(microseconds=1)
        at = T0
        repository = self.repository()
        records = _Records(repository)
        # Created after the moment: in ``now`` only.
        late = make_opportunity("r-late", created_at=at + hour, stage_entered_at=at + hour)
        records.commit(late, _created("e-late", late))
        # Changed after the moment, twice over for the value: it stood as the first
        # later change found it, in another currency, without owner or annual value.
        changed = make_opportunity(
            "r-changed",
            stage="proposal",
            stage_probability=60,
            value=Money("2000", "EUR"),
            owner="ann",
            annual_value=Money("24000", "EUR"),
            expected_close=dt.date(2026, 5, 31),
            status=Status.PAUSED,
            created_at=at - day,
            stage_entered_at=at + hour,
        )
        first = make_opportunity("r-changed", created_at=at - day, stage_entered_at=at - day)
        records.commit(changed, _created("e-changed-0", first))
        records.commit(
            _event("e-changed-1", "r-changed", EventKind.UPDATED, at - hour, changes={}),
            _event(
                "e-changed-2",
                "r-changed",
                EventKind.UPDATED,
                at + tick,
                changes={
                    "value": (Money("1000.00", "USD"), Money("1500", "EUR")),
                    "owner": (None, "ann"),
                    "title": ("Deal r-changed", "Renamed"),
                },
            ),
        )
        records.commit(
            _event(
                "e-changed-3",
                "r-changed",
                EventKind.STAGE_CHANGED,
                (at + hour).astimezone(_CET),
                changes={
                    "stage": ("lead", "proposal"),
                    "probability": (15, 60),
                    "value": (Money("1500", "EUR"), Money("2000", "EUR")),
                },
                **{"from": "lead", "to": "proposal"},
            ),
            _event(
                "e-changed-4",
                "r-changed",
                EventKind.UPDATED,
                at + 2 * hour,
                changes={
                    "annual_value": (None, Money("24000", "EUR")),
                    "expected_close": (None, dt.date(2026, 5, 31)),
                    "status": (Status.OPEN, Status.PAUSED),
                },
            ),
        )
        # Won after the moment: it was open, with an annual value in a third currency.
        won = make_opportunity(
            "r-won",
            stage="won",
            stage_probability=100,
            status=Status.WON,
            closed_on=dt.date(2026, 3, 2),
            owner="bob",
            created_at=at - day,
        )
        records.commit(
            won,
            _created("e-won-0", make_opportunity("r-won", created_at=at - day)),
            _event(
                "e-won-1",
                "r-won",
                EventKind.STAGE_CHANGED,
                at + hour,
                changes={
                    "stage": ("negotiation", "won"),
                    "probability": (80, 100),
                    "status": (Status.OPEN, Status.WON),
                    "closed_on": (None, dt.date(2026, 3, 2)),
                    "annual_value": (Money("5", "GBP"), None),
                },
                **{"from": "negotiation", "to": "won"},
            ),
        )
        # An event exactly at the moment (in two time zones) is not after it.
        for id_, moment in (("r-at", at), ("r-at-cet", at.astimezone(_CET))):
            opportunity = make_opportunity(id_, created_at=at - day, owner="ann")
            records.commit(
                opportunity,
                _created(f"e-{id_}-0", opportunity),
                _event(
                    f"e-{id_}-1",
                    id_,
                    EventKind.UPDATED,
                    moment,
                    changes={"owner": (None, "ann")},
                ),
            )
        # Changed before the moment only, or never recorded: as it stands.
        before = make_opportunity("r-before", created_at=at - day, owner="bob")
        records.commit(
            before,
            _created("e-before-0", before),
            _event("e-before-1", "r-before", EventKind.UPDATED, at - tick, changes={}),
        )
        records.commit(make_opportunity("r-silent", created_at=at - day))
        # After the moment, but changing no report field.
        noted = make_opportunity("r-noted", created_at=at - day)
        records.commit(
            noted,
            _created("e-noted-0", noted),
            _event("e-noted-1", "r-noted", EventKind.NOTE_ADDED, at + hour, note="Called"),
            _event(
                "e-noted-2",
                "r-noted",
                EventKind.UPDATED,
                at + hour,
                changes={"title": ("Deal r-noted", "Deal")},
            ),
        )
        # Another process, and an event of no opportunity.
        simple = make_opportunity(
            "r-simple", process="simple", stage="pitching", created_at=at - day
        )
        records.commit(
            simple,
            _created("e-simple-0", simple),
            _event(
                "e-simple-1",
                "r-simple",
                EventKind.STAGE_CHANGED,
                at + day,
                changes={"stage": ("lead", "pitching")},
                **{"from": "lead", "to": "pitching"},
            ),
            _event("e-nobody", None, EventKind.UPDATED, at + hour, changes={}),
        )
        # Another workspace, with the same ids and later events of its own.
        other = _Records(self.repository("other"))
        for id_ in ("r-silent", "r-before", "r-other"):
            opportunity = make_opportunity(id_, value=Money("7", "CHF"), created_at=at - day)
            other.commit(
                opportunity,
                _event(
                    f"e-{id_}",
                    id_,
                    EventKind.UPDATED,
                    at + hour,
                    changes={"value": (Money("8", "CHF"), Money("7", "CHF"))},
                ),
            )

        found = repository.revision(None, at)
        assert sorted(s.id for s in found.now) == [
            "r-changed",
            "r-late",
            "r-noted",
            "r-simple",
            "r-won",
        ]
        then = {s.id: s for s in found.then}
        assert sorted(then) == ["r-changed", "r-noted", "r-simple", "r-won"]
        assert then["r-changed"] == DealState(
            id="r-changed",
            process="standard",
            stage="lead",
            status=Status.OPEN,
            owner=None,
            currency="USD",
            value=Decimal("1000.00"),
            annual_value=None,
            annual_currency=None,
            probability=15,
            expected_close=None,
            closed_on=None,
            created_at=at - day,
        )
        assert (then["r-won"].annual_value, then["r-won"].annual_currency) == (Decimal(5), "GBP")
        assert (then["r-won"].status, then["r-won"].closed_on) == (Status.OPEN, None)
        assert then["r-noted"] == queries.state_of(noted)
        moments = (at, at.astimezone(_CET), at - tick, at + hour, at + 3 * hour, at - 2 * day)
        for process in (None, "standard", "simple", "missing"):
            for moment in moments:
                assert _by_id(repository.revision(process, moment)) == records.revision(
                    process, moment
                ), (process, moment)
        assert _by_id(other.repository.revision(None, at)) == other.revision(None, at)
        assert {s.id for s in other.repository.revision(None, at).now} == {
            "r-silent",
            "r-before",
            "r-other",
        }

    def test_forecast_totals_agree_with_the_definition(self) -> None:
        start, end = dt.date(2026, 4, 1), dt.date(2026, 5, 31)
        before, after = start - dt.timedelta(days=1), end + dt.timedelta(days=1)
        repository = self.repository()
        records = _Records(repository)
        won: dict[str, Any] = {"stage": "won", "stage_probability": 100, "status": Status.WON}
        lost: dict[str, Any] = {"stage": "lost", "stage_probability": 0, "status": Status.LOST}
        records.commit(
            # Open deals on the period's first and last days, in several currencies.
            make_opportunity("f-01", expected_close=start, owner="ann", probability_override=40),
            make_opportunity(
                "f-02",
                expected_close=end,
                stage="proposal",
                stage_probability=60,
                value=Money("250.50", "EUR"),
            ),
            make_opportunity(
                "f-03", expected_close=dt.date(2026, 4, 15), owner="ann", value=Money("3", "EUR")
            ),
            make_opportunity(
                "f-04",
                expected_close=dt.date(2026, 5, 2),
                owner="bob",
                value=Money("0.000001", "GBP"),
                annual_value=Money("99", "GBP"),
            ),
            # Open deals outside the period, without a date, or paused.
            make_opportunity("f-05", expected_close=before, owner="ann"),
            make_opportunity("f-06", expected_close=after),
            make_opportunity("f-07", expected_close=None, owner="ann"),
            make_opportunity("f-08", expected_close=start, status=Status.PAUSED, owner="ann"),
            # Won deals count by their closing day, whatever their expected close.
            make_opportunity("f-09", closed_on=start, expected_close=after, owner="ann", **won),
            make_opportunity(
                "f-10", closed_on=end, value=Money("12.5", "GBP"), expected_close=start, **won
            ),
            make_opportunity("f-11", closed_on=after, expected_close=start, **won),
            make_opportunity("f-12", closed_on=None, expected_close=start, **won),
            make_opportunity("f-13", closed_on=start, expected_close=start, owner="ann", **lost),
            # Another process.
            make_opportunity(
                "f-14",
                process="simple",
                stage="pitching",
                expected_close=start,
                owner="ann",
                value=Money("70", "EUR"),
            ),
            make_opportunity(
                "f-15", process="simple", closed_on=end, owner="bob", value=Money("9", "EUR"), **won
            ),
        )
        other = self.repository("other")
        other.commit(
            ChangeSet(
                opportunities=(
                    make_opportunity("f-01", expected_close=start, value=Money("5", "CHF")),
                    make_opportunity("f-99", closed_on=end, owner="ann", **won),
                )
            )
        )
        everything = ForecastQuery(start=start, end=end, deals=True)
        totals = repository.forecast_totals(everything)
        assert [(r.currency, r.count, r.won_count) for r in totals.rows] == [
            ("EUR", 3, 1),
            ("GBP", 1, 1),
            ("USD", 1, 1),
        ]
        assert ("USD", Decimal("1000.00"), 40) in totals.deals
        assert ("EUR", Decimal("250.50"), 60) in totals.deals
        for group_by in (None, *GROUPINGS):
            for process in (None, "standard", "simple", "missing"):
                for owner in (None, "ann", "bob"):
                    for deals in (False, True):
                        query = ForecastQuery(
                            start=start,
                            end=end,
                            process=process,
                            owner=owner,
                            group_by=group_by,
                            deals=deals,
                        )
                        found = repository.forecast_totals(query)
                        assert found == records.forecast_totals(query), query
        for first, last in ((start, start), (end, end), (before, before), (end, start)):
            for group_by in (None, "month"):
                query = ForecastQuery(start=first, end=last, group_by=group_by, deals=True)
                assert repository.forecast_totals(query) == records.forecast_totals(query), query
        assert repository.forecast_totals(ForecastQuery(start=end, end=start)) == ForecastTotals(())

    def test_closed_deals_agree_with_the_definition(self) -> None:
        start, end = dt.date(2026, 4, 1), dt.date(2026, 4, 30)
        day = dt.timedelta(days=1)
        repository = self.repository()
        records = _Records(repository)
        won: dict[str, Any] = {"stage": "won", "stage_probability": 100, "status": Status.WON}
        lost: dict[str, Any] = {"stage": "lost", "stage_probability": 0, "status": Status.LOST}
        # Won on the first day, through two stages: the path leaves other events out
        # and keeps each entry's moment whatever its time zone.
        first = make_opportunity(
            "c-won", closed_on=start, value=Money("1200.50", "EUR"), loss_reason="price", **won
        )
        records.commit(
            first,
            _created("e-1", make_opportunity("c-won")),
            _event("e-2", "c-won", EventKind.UPDATED, T0 + day, changes={}),
            _moved("e-3", "c-won", (T0 + 2 * day).astimezone(_CET), "lead", "proposal"),
            _event("e-4", "c-won", EventKind.NOTE_ADDED, T0 + 3 * day, note="Signed"),
        )
        records.commit(_moved("e-5", "c-won", T0 + 4 * day, "proposal", "won"))
        # Lost on the last day, with and without a reason.
        for id_, reason in (("c-lost", "price"), ("c-lost-silent", None)):
            opportunity = make_opportunity(
                id_,
                closed_on=end,
                loss_reason=reason,
                owner=None,
                value=Money("3", "GBP"),
                **lost,
            )
            records.commit(
                opportunity,
                _created(f"e-{id_}-1", make_opportunity(id_)),
                _moved(f"e-{id_}-2", id_, T0 + day, "lead", "lost"),
            )
        # Closed outside the period, without a closing day, or not closed at all.
        records.commit(
            make_opportunity("c-early", closed_on=start - day, **won),
            make_opportunity("c-late", closed_on=end + day, **lost),
            make_opportunity("c-undated", closed_on=None, **won),
            make_opportunity("c-open", closed_on=start),
            make_opportunity("c-paused", closed_on=start, status=Status.PAUSED),
            _created("e-early", make_opportunity("c-early")),
            _created("e-undated", make_opportunity("c-undated")),
        )
        # Won without any history; won in another process.
        records.commit(
            make_opportunity("c-bare", closed_on=end, **won),
            make_opportunity("c-simple", process="simple", closed_on=start, **won),
            _created("e-simple", make_opportunity("c-simple", process="simple")),
        )
        # Another workspace: the same id with another history.
        other = _Records(self.repository("other"))
        stranger = make_opportunity("c-won", closed_on=start, **lost)
        other.commit(
            stranger,
            _created("e-1", stranger),
            _moved("e-9", "c-won", T0, "lead", "negotiation"),
            make_opportunity("c-stranger", closed_on=start, **won),
        )

        found = repository.closed_deals("standard", start=start, end=end)
        assert [d.id for d in found] == ["c-bare", "c-lost", "c-lost-silent", "c-won"]
        assert found[3] == ClosedDeal(
            id="c-won",
            won=True,
            currency="EUR",
            value=Decimal("1200.50"),
            created_at=T0,
            closed_on=start,
            loss_reason=None,
            path=((T0, "lead"), (T0 + 2 * day, "proposal"), (T0 + 4 * day, "won")),
        )
        assert (found[1].won, found[1].loss_reason, found[2].loss_reason) == (False, "price", None)
        assert found[0].path == ()
        bounds = (
            (None, None),
            (start, None),
            (None, end),
            (start, end),
            (start, start),
            (end, end),
            (end, start),
            (start - day, None),
            (None, start - day),
        )
        for process in ("standard", "simple", "missing"):
            for low, high in bounds:
                assert repository.closed_deals(
                    process, start=low, end=high
                ) == records.closed_deals(process, start=low, end=high), (process, low, high)
        assert "c-undated" not in [
            d.id for d in repository.closed_deals("standard", start=None, end=None)
        ]
        assert other.repository.closed_deals(
            "standard", start=None, end=None
        ) == other.closed_deals("standard", start=None, end=None)

    def test_stuck_agrees_with_the_definition(self) -> None:
        hour, day, tick = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(microseconds=1)
        repository = self.repository()
        records = _Records(repository)

        def entered(id_: str, at: dt.datetime, stage: str = "lead", **fields: Any) -> None:
            # An opportunity created a week before ``at`` and moved into ``stage`` then.
            created = T0 - 7 * day
            opportunity = make_opportunity(
                id_, stage=stage, created_at=created, stage_entered_at=at, **fields
            )
            records.commit(
                opportunity,
                _created(f"e-{id_}-1", make_opportunity(id_, created_at=created)),
                _moved(f"e-{id_}-2", id_, at, "lead", stage),
            )

        entered("s-old", T0 - day)
        entered("s-tie-b", T0 - 2 * day)
        entered("s-tie-a", T0 - 2 * day, owner="ann")
        entered("s-just-before", T0 - tick)
        entered("s-at-cutoff", T0)
        entered("s-cet", (T0 - hour).astimezone(_CET))
        entered("s-proposal", T0 + hour / 2, "proposal")
        entered("s-proposal-late", T0 + hour, "proposal")
        entered("s-negotiation", T0 - 5 * day, "negotiation")
        entered("s-paused", T0 - day, status=Status.PAUSED)
        entered("s-won", T0 - day, "won", status=Status.WON, closed_on=T0.date())
        entered("s-simple", T0 - day, process="simple")
        # No history at all: the stage was entered when the opportunity says.
        records.commit(make_opportunity("s-bare", stage_entered_at=T0 - 3 * day))
        other = _Records(self.repository("other"))
        other.commit(make_opportunity("s-stranger", stage_entered_at=T0 - 9 * day))

        cutoffs = {"lead": T0, "proposal": T0 + hour, "won": T0 + day}
        found = repository.stuck("standard", cutoffs)
        assert [o.id for o in found] == [
            "s-bare",
            "s-tie-a",
            "s-tie-b",
            "s-old",
            "s-cet",
            "s-just-before",
            "s-proposal",
        ]
        assert found[1] == records.opportunities["s-tie-a"]
        variants: list[dict[str, dt.datetime]] = [
            {},
            {"lead": T0},
            {"lead": T0.astimezone(_CET)},
            cutoffs,
            {"proposal": T0 + hour + tick, "negotiation": T0},
            {"missing": T0 + 100 * day},
            {"lead": T0 - 10 * day, "won": T0 + 100 * day},
        ]
        for process in ("standard", "simple", "missing"):
            for variant in variants:
                assert repository.stuck(process, variant) == records.stuck(process, variant), (
                    process,
                    variant,
                )
        assert other.repository.stuck("standard", cutoffs) == other.stuck("standard", cutoffs)
        assert [o.id for o in other.repository.stuck("standard", cutoffs)] == ["s-stranger"]

    def test_the_reports_agree_with_their_definitions_on_any_store(self) -> None:
        # Random deals with random histories: every report's answer must be the one
        # its definition in ``salesflow.queries`` gives over the same records.
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        stores, moments, forecasts, bounds, cutoffs = _report_strategies()
        examples = iter(range(10**6))
        processes = ("standard", "simple")

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(
            store=stores,
            ats=st.lists(moments, min_size=1, max_size=2),
            asked=st.lists(forecasts, min_size=1, max_size=3),
            periods=st.lists(bounds, min_size=1, max_size=2),
            limits=st.lists(cutoffs, min_size=1, max_size=2),
        )
        def check(
            store: list[tuple[Opportunity, list[Event]]],
            ats: list[dt.datetime],
            asked: list[ForecastQuery],
            periods: list[tuple[dt.date | None, dt.date | None]],
            limits: list[dict[str, dt.datetime]],
        ) -> None:
            repository = self.repository(f"r{next(examples)}")
            records = _Records(repository)
            try:
                # The deals in one commit with the first event of each history, the
                # rest of the histories in a second one.
                if store:
                    records.commit(*(o for o, _ in store), *(h[0] for _, h in store if h))
                    records.commit(*(e for _, h in store for e in h[1:]))
                for at in ats:
                    for process in (None, *processes):
                        found = _by_id(repository.revision(process, at))
                        assert found == records.revision(process, at), (process, at)
                for query in asked:
                    assert repository.forecast_totals(query) == records.forecast_totals(query)
                for process in processes:
                    for start, end in periods:
                        found_deals = repository.closed_deals(process, start=start, end=end)
                        expected = records.closed_deals(process, start=start, end=end)
                        assert found_deals == expected, (process, start, end)
                    for limit in limits:
                        assert repository.stuck(process, limit) == records.stuck(process, limit)
            finally:
                repository.close()

        check()

    # -- the version of the processes ------------------------------------------

    def test_the_processes_version_moves_with_each_process_write(self) -> None:
        repository = self.repository()
        other = self.repository("other")
        start = repository.processes_version()
        assert isinstance(start, int)
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))
        assert repository.processes_version() == start
        repository.commit(ChangeSet(processes=(make_process("p-1"),), defined_at=T0))
        second = repository.processes_version()
        assert second != start
        repository.commit(ChangeSet(processes=(make_process("p-1", "Renamed"),), defined_at=T0))
        third = repository.processes_version()
        assert third not in (start, second)
        with _raises(ConcurrencyError, "o-ghost"):
            repository.commit(
                ChangeSet(
                    processes=(make_process("p-2"),),
                    defined_at=T0,
                    opportunities=(make_opportunity("o-ghost", version=5),),
                )
            )
        assert repository.processes_version() == third
        assert other.processes_version() == start

    # -- large change sets -----------------------------------------------------

    def test_a_large_change_set_of_new_records_commits_whole(self) -> None:
        repository = self.repository()
        count = 300
        opportunities = tuple(
            make_opportunity(f"o-{i:04d}", related=(Related("contact", f"p-{i % 7}"),))
            for i in range(count)
        )
        activities = tuple(
            make_activity(f"a-{i:04d}", opportunity_id=f"o-{i:04d}") for i in range(count)
        )
        events = tuple(make_event(f"e-{i:04d}", f"o-{i:04d}", n=i) for i in range(count))
        repository.commit(
            ChangeSet(opportunities=opportunities, activities=activities, events=events)
        )
        assert repository.opportunities() == list(opportunities)
        assert repository.activities(opportunity_id="o-0123") == [activities[123]]
        assert repository.history("o-0299") == [events[299]]
        page = repository.search(SearchQuery(today=T0.date(), related_id="p-3", limit=1000))
        assert [o.id for o in page.items] == [o.id for o in opportunities[3::7]]

        before = self.snapshot(repository, ("o-0007", "n-0"))
        newcomers = tuple(make_opportunity(f"n-{i}") for i in range(40))
        with _raises(ValidationError, "Opportunity 'o-0007': the id is already taken"):
            repository.commit(
                ChangeSet(
                    opportunities=(*newcomers[:20], make_opportunity("o-0007"), *newcomers[20:]),
                    events=tuple(make_event(f"x-{i}", f"n-{i}") for i in range(40)),
                )
            )
        with _raises(ValidationError, "Opportunity 'n-3': the id is already taken"):
            repository.commit(ChangeSet(opportunities=(*newcomers, newcomers[3])))
        with _raises(ValidationError, "Activity 'a-0042': the id is already taken"):
            repository.commit(
                ChangeSet(
                    opportunities=newcomers,
                    activities=(
                        make_activity("b-1", opportunity_id="n-1"),
                        make_activity("a-0042", opportunity_id="n-2"),
                        make_activity("b-3", opportunity_id="o-missing"),
                    ),
                )
            )
        with _raises(StorageError, "Activity 'b-3'", "opportunity 'o-missing'", "not stored"):
            repository.commit(
                ChangeSet(
                    opportunities=newcomers,
                    activities=(
                        make_activity("b-1", opportunity_id="n-1"),
                        make_activity("b-2", opportunity_id="o-0001"),
                        make_activity("b-3", opportunity_id="o-missing"),
                        make_activity("a-0042", opportunity_id="n-2"),
                    ),
                )
            )
        assert self.snapshot(repository, ("o-0007", "n-0")) == before

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
                defined_at=T0,
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
                defined_at=T0,
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
                defined_at=T0,
            )
        )
        assert self.snapshot(a, ("o-1",)) == before
        assert b.get_opportunity("o-1") == theirs
        assert [e.details for e in b.history("o-1")] == [{"side": "b"}]
        assert [p.name for p in b.processes()] == ["B's process"]

    # -- command blocks --------------------------------------------------------

    def test_reads_in_a_command_see_the_last_commit_and_other_writers_wait(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        elsewhere = attrs.evolve(opportunity, description="elsewhere", version=2)
        _in_thread(lambda: repository.commit(ChangeSet(opportunities=(elsewhere,))))
        inside = threading.Event()
        outcome: list[object] = []

        def late_writer() -> None:
            inside.wait(10)
            stale = attrs.evolve(elsewhere, description="late", version=3)
            try:  # waits for the block; then its read is stale
                repository.commit(ChangeSet(opportunities=(stale,)))
            except ConcurrencyError as error:
                outcome.append(error)
            else:
                outcome.append("committed")

        writer = threading.Thread(target=late_writer)
        writer.start()
        try:
            with repository.command("o-1"):
                assert repository.get_opportunity("o-1") == elsewhere
                inside.set()
                time.sleep(0.2)  # the late writer is waiting meanwhile
                mine = attrs.evolve(elsewhere, description="mine", version=3)
                repository.commit(
                    ChangeSet(opportunities=(mine,), events=(make_event("e-1", "o-1"),))
                )
                assert repository.get_opportunity("o-1") == mine
        finally:
            inside.set()
            writer.join()
        assert len(outcome) == 1
        assert isinstance(outcome[0], ConcurrencyError), outcome
        assert repository.get_opportunity("o-1") == mine
        assert [e.id for e in repository.history("o-1")] == ["e-1"]

    def test_an_error_in_a_command_undoes_its_commit(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        before = self.snapshot(repository, ("o-1",))
        moved = attrs.evolve(opportunity, stage="proposal", version=2)
        with contextlib.suppress(RuntimeError), repository.command("o-1"):
            repository.commit(
                ChangeSet(
                    opportunities=(moved,),
                    activities=(make_activity("a-1", opportunity_id="o-1"),),
                    events=(make_event("e-1", "o-1"),),
                    processes=(make_process("p-new"),),
                    defined_at=T0,
                )
            )
            assert repository.get_opportunity("o-1") == moved
            raise RuntimeError("the command fails after its commit")
        assert self.snapshot(repository, ("o-1",)) == before
        assert repository.get_activity("a-1") is None
        repository.commit(ChangeSet(opportunities=(moved,)))  # version 2 is free again
        assert repository.get_opportunity("o-1") == moved

    def test_a_failed_commit_in_a_command_changes_nothing_and_the_block_goes_on(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        moved = attrs.evolve(opportunity, stage="proposal", version=2)
        with repository.command("o-1"), repository.command("o-1"):  # the inner one joins
            with _raises(StorageError, "o-missing"):
                repository.commit(
                    ChangeSet(
                        opportunities=(moved,),
                        activities=(make_activity("a-1", opportunity_id="o-missing"),),
                        events=(make_event("e-bad", "o-1"),),
                    )
                )
            assert repository.get_opportunity("o-1") == opportunity
            repository.commit(ChangeSet(opportunities=(moved,), events=(make_event("e-1", "o-1"),)))
        assert repository.get_opportunity("o-1") == moved
        assert repository.get_activity("a-1") is None
        assert [e.id for e in repository.history("o-1")] == ["e-1"]

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


def _in_thread(work: Callable[[], object]) -> None:
    """Run ``work`` in a thread of its own (its own connection) and wait for it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # re-raised by the caller's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


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
                defined_at=T0,
            )
        )
        first.close()
        again = self.make_repository(workspace)
        self._opened.append(again)
        assert again.get_opportunity("o-1") == opportunity
        assert again.get_activity("a-1") == activity
        assert again.history("o-1") == [event]
        assert again.processes() == [process]

    def test_the_feed_and_pending_calls_survive_reopening(self) -> None:
        first = self.repository("kept-feed")
        workspace = first.workspace
        opportunity = make_rich_opportunity("o-1")
        first.commit(
            ChangeSet(
                opportunities=(opportunity,),
                events=(make_event("e-1", "o-1"),),
                outbox=(make_call("c-1", opportunity),),
            )
        )
        first.claim_calls(now=T0, until=T0 + dt.timedelta(minutes=5), limit=10)
        first.close()
        again = self.make_repository(workspace)
        self._opened.append(again)
        (event,) = again.commit(ChangeSet(events=(make_event("e-2", "o-1"),)))
        assert event.position == 2
        assert [e.position for e in again.changes(0, 10)] == [1, 2]
        # Still leased by the process that closed; free once the lease has run out.
        assert again.claim_calls(now=T0, until=T0, limit=10) == []
        (call,) = again.claim_calls(now=T0 + dt.timedelta(minutes=5), until=T0, limit=10)
        assert (call.id, call.attempts, call.opportunity) == ("c-1", 2, opportunity)

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
                defined_at=T0,
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

    def test_search_and_pipeline_decode_no_opportunity_outside_the_page(self) -> None:
        # Unreadable data outside the page goes unnoticed: only the page is decoded,
        # and the pipeline reads columns alone.
        repository = self.repository()
        stored = [
            make_opportunity(
                f"o-{i}", expected_close=dt.date(2026, 4, 1 + i), owner="ann" if i % 2 else "bob"
            )
            for i in range(6)
        ]
        repository.commit(ChangeSet(opportunities=tuple(stored)))
        for id_ in ("o-2", "o-3", "o-4", "o-5"):
            self.overwrite_stored_data(
                "opportunities", repository.workspace, id_, '"not an opportunity"'
            )
        with _raises(StorageError, "opportunity 'o-2'"):
            repository.opportunities()  # the data really cannot be read
        today = T0.date()
        assert repository.search(SearchQuery(today=today, limit=2)) == Page(
            (stored[0], stored[1]), 6
        )
        assert repository.search(SearchQuery(today=today, owner="ann", limit=1)) == Page(
            (stored[1],), 3
        )
        assert repository.search(
            SearchQuery(today=today, order_by="-expected_close", offset=4)
        ) == Page((stored[1], stored[0]), 6)
        assert repository.search(SearchQuery(today=today, text="DEAL O-0")) == Page((stored[0],), 1)
        assert repository.search(SearchQuery(today=today, limit=0)) == Page((), 6)
        for basis in ("value", "annual_value"):
            assert repository.pipeline_totals(
                "standard", basis=basis, owner="ann"
            ) == pipeline_totals(stored, basis=basis, owner="ann")
        with _raises(StorageError, "opportunity 'o-5'"):
            repository.search(SearchQuery(today=today, order_by="-expected_close", limit=1))

    def test_the_reports_decode_no_opportunity_they_do_not_return(self) -> None:
        # Revision, forecast and analytics read columns and events; stuck reads when
        # each candidate entered its stage and decodes only the deals it returns.
        day = dt.timedelta(days=1)
        repository = self.repository()
        records = _Records(repository)
        won: dict[str, Any] = {"stage": "won", "stage_probability": 100, "status": Status.WON}
        stored = [
            make_opportunity("o-stuck", stage_entered_at=T0 - day, expected_close=T0.date()),
            make_opportunity("o-fresh", stage_entered_at=T0 + day, expected_close=T0.date()),
            make_opportunity("o-won", closed_on=T0.date(), owner="ann", **won),
            make_opportunity("o-simple", process="simple", stage_entered_at=T0 - day),
        ]
        records.commit(
            *stored,
            _created("e-1", stored[2]),
            _moved("e-2", "o-won", T0 + day, "lead", "won"),
        )
        records.commit(
            _event("e-3", "o-fresh", EventKind.UPDATED, T0 + day, changes={"owner": (None, "ann")})
        )
        ws = repository.workspace
        for opportunity in stored[1:]:
            broken = converter.unstructure(opportunity)
            del broken["value"]  # undecodable, though its stage_entered_at still reads
            self.overwrite_stored_data("opportunities", ws, opportunity.id, json.dumps(broken))
        with _raises(StorageError, "opportunity 'o-fresh'"):
            repository.opportunities()  # the data really cannot be read
        assert repository.stuck("standard", {"lead": T0}) == [stored[0]]
        assert repository.stuck("simple", {"pitching": T0}) == []
        assert _by_id(repository.revision(None, T0)) == records.revision(None, T0)
        query = ForecastQuery(start=T0.date(), end=T0.date(), group_by="owner", deals=True)
        assert repository.forecast_totals(query) == records.forecast_totals(query)
        found = repository.closed_deals("standard", start=None, end=None)
        assert found == records.closed_deals("standard", start=None, end=None)
        assert [d.id for d in found] == ["o-won"]
        # A deal the answer needs is decoded, and bad data there is reported.
        self.overwrite_stored_data("opportunities", ws, "o-stuck", '"not an opportunity"')
        with _raises(StorageError, "opportunity 'o-stuck'"):
            repository.stuck("standard", {"lead": T0})

    def test_a_row_whose_data_disagrees_with_its_version_is_refused(self) -> None:
        repository = self.repository()
        opportunity = make_opportunity("o-1")
        repository.commit(ChangeSet(opportunities=(opportunity,)))
        data = converter.unstructure(attrs.evolve(opportunity, version=7))
        self.overwrite_stored_data("opportunities", repository.workspace, "o-1", json.dumps(data))
        with _raises(StorageError, "opportunity 'o-1'", "version 7"):
            repository.get_opportunity("o-1")
