"""``InMemoryRepository``: the default repository, for tests and short-lived apps."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import attrs

from salesflow import queries
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event, Packed, packed, unpacked
from salesflow.domain.opportunity import Opportunity
from salesflow.domain.process import Process
from salesflow.domain.values import ActivityStatus, Status
from salesflow.errors import ConcurrencyError, StorageError, ValidationError
from salesflow.ports import ChangeSet, PendingCall, Repository, sort_activities
from salesflow.queries import (
    Basis,
    ClosedDeal,
    ForecastQuery,
    ForecastTotals,
    Page,
    PipelineTotals,
    Revision,
    SearchQuery,
    StageTotal,
)

__all__ = ["InMemoryRepository"]

V = TypeVar("V", Opportunity, Activity)


class _Gone:
    """Marks an activity deleted by the change set being checked."""


_GONE: Final = _Gone()


class InMemoryRepository(Repository):
    """Keeps everything in dictionaries; thread-safe; nothing survives the process.

    Stored values are immutable, so reads hand out the stored objects themselves,
    except events: the history is held packed (see
    :func:`~salesflow.domain.events.packed`), and each read builds its events anew.
    Activities are also indexed by opportunity, so that the activities of one
    opportunity are found without looking at any other.
    """

    def __init__(self, *, workspace: str = "default") -> None:
        self.workspace = workspace
        self._lock = threading.RLock()
        self._processes: dict[str, Process] = {}
        #: Every definition of each process as committed: (defined_at, process).
        self._definitions: dict[str, list[tuple[dt.datetime, Process]]] = {}
        self._opportunities: dict[str, Opportunity] = {}
        self._activities: dict[str, Activity] = {}
        #: opportunity id -> the ids of the activities naming it (a tuple: the fewest
        #: bytes, and one opportunity has few activities).
        self._activities_of: dict[str, tuple[str, ...]] = {}
        #: opportunity id -> the positions of its events, in order.
        self._history: dict[str, array[int]] = {}
        #: Every committed event of the workspace, packed; position n is at index n - 1.
        self._feed: list[Packed] = []
        #: The outbox: each pending call by id, and when its lease ends (None: free).
        self._calls: dict[str, PendingCall] = {}
        self._leases: dict[str, dt.datetime | None] = {}
        self._errors: dict[str, str] = {}
        self._call_seq = 0
        #: Counts the commits that wrote a process definition.
        self._processes_version = 0
        #: While a command block is open (by the thread holding the lock): how to undo
        #: the commits made in it, latest last.
        self._undo: list[Callable[[], None]] | None = None

    def command(self, opportunity_id: str | None) -> contextlib.AbstractContextManager[None]:
        """Holds the lock for the block: other threads' reads and writes wait. A commit
        in the block is undone if the block ends with an exception."""
        return _Block(self)

    def processes(self) -> list[Process]:
        with self._lock:
            return list(self._processes.values())

    def processes_version(self) -> int:
        with self._lock:
            return self._processes_version

    def process_as_of(self, key: str, at: dt.datetime) -> Process | None:
        with self._lock:
            definitions = self._definitions.get(key, ())
        found: tuple[dt.datetime, Process] | None = None
        for defined_at, process in definitions:  # commit order: the later wins a tie
            if defined_at <= at and (found is None or defined_at >= found[0]):
                found = (defined_at, process)
        return None if found is None else found[1]

    def get_opportunity(self, opportunity_id: str) -> Opportunity | None:
        with self._lock:
            return self._opportunities.get(opportunity_id)

    def get_activity(self, activity_id: str) -> Activity | None:
        with self._lock:
            return self._activities.get(activity_id)

    def opportunities(
        self, *, process: str | None = None, stages: Collection[str] | None = None
    ) -> list[Opportunity]:
        keys = self._stage_keys(stages)
        wanted = None if keys is None else frozenset(keys)
        with self._lock:
            return [
                o
                for o in self._opportunities.values()
                if (process is None or o.process == process)
                and (wanted is None or o.stage in wanted)
            ]

    def count_by_stage(self, process: str) -> dict[str, int]:
        with self._lock:
            counts = Counter(o.stage for o in self._opportunities.values() if o.process == process)
        return dict(sorted(counts.items()))

    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        with self._lock:
            candidates: Iterable[Activity] = (
                self._activities.values()
                if opportunity_id is None
                else [self._activities[i] for i in self._activities_of.get(opportunity_id, ())]
            )
            found = (
                list(candidates)
                if status is None and owner is None and due_from is None and due_to is None
                else [
                    a
                    for a in candidates
                    if (status is None or a.status is status)
                    and (owner is None or a.owner == owner)
                    and (due_from is None or a.due >= due_from)
                    and (due_to is None or a.due <= due_to)
                ]
            )
        return sort_activities(found)

    def history(self, opportunity_id: str) -> list[Event]:
        with self._lock:
            return self._events_of(opportunity_id)

    def _events_of(self, opportunity_id: str) -> list[Event]:
        """The history of one opportunity (called with the lock held)."""
        feed = self._feed
        return [unpacked(feed[p - 1], p) for p in self._history.get(opportunity_id, ())]

    def changes(self, after: int, limit: int) -> list[Event]:
        with self._lock:
            feed = self._feed
            return [unpacked(feed[i], i + 1) for i in range(after, min(after + limit, len(feed)))]

    def claim_calls(
        self,
        *,
        now: dt.datetime,
        until: dt.datetime,
        limit: int,
        after: int = 0,
        ids: Collection[str] | None = None,
    ) -> list[PendingCall]:
        wanted = None if ids is None else frozenset(ids)
        claimed: list[PendingCall] = []
        with self._lock:
            for call in sorted(self._calls.values(), key=lambda c: c.seq):
                if len(claimed) >= limit:
                    break
                lease = self._leases[call.id]
                if (
                    call.seq <= after
                    or (wanted is not None and call.id not in wanted)
                    or (lease is not None and lease > now)
                ):
                    continue
                taken = attrs.evolve(call, attempts=call.attempts + 1)
                self._calls[call.id] = taken
                self._leases[call.id] = until
                claimed.append(taken)
        return claimed

    def finish_call(self, call_id: str) -> None:
        with self._lock:
            self._calls.pop(call_id, None)
            self._leases.pop(call_id, None)
            self._errors.pop(call_id, None)

    def release_call(self, call_id: str, error: str) -> None:
        with self._lock:
            if call_id in self._calls:
                self._leases[call_id] = None
                self._errors[call_id] = error

    def search(self, query: SearchQuery) -> Page:
        with self._lock:
            return query.page(self._opportunities.values())

    def pipeline_totals(
        self, process: str, *, basis: Basis, owner: str | None = None
    ) -> PipelineTotals:
        with self._lock:
            members = [o for o in self._opportunities.values() if o.process == process]
        return _pipeline_totals(members, basis=basis, owner=owner)

    def revision(self, process: str | None, at: dt.datetime) -> Revision:
        with self._lock:
            histories = []
            feed = self._feed
            for o in self._opportunities.values():
                if process is not None and o.process != process:
                    continue
                positions = self._history.get(o.id, ())
                if any(feed[p - 1][_AT] > at for p in positions):
                    histories.append((o, tuple(self._events_of(o.id))))
        return queries.revision(histories, at)

    def forecast_totals(self, query: ForecastQuery) -> ForecastTotals:
        with self._lock:
            members = list(self._opportunities.values())
        return queries.forecast_totals(members, query)

    def closed_deals(
        self, process: str, *, start: dt.date | None, end: dt.date | None
    ) -> list[ClosedDeal]:
        with self._lock:
            return queries.closed_deals(
                self._opportunities.values(),
                self._events_of,
                process=process,
                start=start,
                end=end,
            )

    def stuck(self, process: str, cutoffs: Mapping[str, dt.datetime]) -> list[Opportunity]:
        with self._lock:
            return queries.stuck(self._opportunities.values(), process=process, cutoffs=cutoffs)

    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        """Check every write in the order the SQL repositories make them -- processes,
        opportunities, activities, deletions -- each against what the writes before it
        left, then apply them all; so the first broken rule is the one they report."""
        with self._lock:
            opportunities: dict[str, Opportunity] = {}
            activities: dict[str, Activity | _Gone] = {}
            for opportunity in changes.opportunities:
                _check_version(
                    _current(opportunities, self._opportunities, opportunity.id), opportunity
                )
                opportunities[opportunity.id] = opportunity
            for activity in changes.activities:
                _check_version(_current(activities, self._activities, activity.id), activity)
                named = activity.opportunity_id
                if (
                    named is not None
                    and named not in opportunities
                    and named not in self._opportunities
                ):
                    raise StorageError(
                        f"Activity {activity.id!r} names opportunity {named!r}, "
                        f"which is not stored in workspace {self.workspace!r}"
                    )
                activities[activity.id] = activity
            for activity in changes.deleted_activities:
                current = _current(activities, self._activities, activity.id)
                found = current.version if current is not None else 0
                if found != activity.version:
                    raise ConcurrencyError(
                        f"Activity {activity.id!r} is stored at version {found}, so it cannot "
                        f"be deleted from version {activity.version}, a stale read"
                    )
                activities[activity.id] = _GONE
            for call in changes.outbox:
                if call.id in self._calls:
                    raise ValidationError(f"Outbound call {call.id!r}: the id is already taken")
            # Every rule holds: apply the change set.
            if self._undo is not None:
                self._undo.append(self._undoing(changes, opportunities, activities))
            if changes.processes:
                for process in changes.processes:
                    self._processes[process.key] = process
                    assert changes.defined_at is not None  # a ChangeSet checks it
                    self._definitions.setdefault(process.key, []).append(
                        (changes.defined_at, process)
                    )
                self._processes_version += 1
            self._opportunities.update(opportunities)
            for activity_id, final in activities.items():
                self._put_activity(activity_id, None if isinstance(final, _Gone) else final)
            for call in changes.outbox:
                self._call_seq += 1
                self._calls[call.id] = attrs.evolve(call, attempts=0, seq=self._call_seq)
                self._leases[call.id] = None
            feed, history = self._feed, self._history
            stored = []
            for event in changes.events:
                feed.append(packed(event))
                position = len(feed)
                stored.append(event.numbered(position))
                if event.opportunity_id is not None:
                    positions = history.get(event.opportunity_id)
                    if positions is None:
                        positions = history[event.opportunity_id] = array("q")
                    positions.append(position)
            return tuple(stored)

    def _undoing(
        self,
        changes: ChangeSet,
        opportunities: Mapping[str, Opportunity],
        activities: Mapping[str, Activity | _Gone],
    ) -> Callable[[], None]:
        """What puts back the state before ``changes`` (called with the lock held)."""
        processes: dict[str, Process | None] = {}
        for process in changes.processes:
            processes[process.key] = self._processes.get(process.key)
        definitions = {key: len(self._definitions.get(key, ())) for key in processes}
        version = self._processes_version
        stored = self._opportunities.get
        old_opportunities = {i: stored(i) for i in opportunities}
        old_activities = {i: self._activities.get(i) for i in activities}
        lengths: dict[str, int] = {}
        for event in changes.events:
            id_ = event.opportunity_id
            if id_ is not None and id_ not in lengths:
                lengths[id_] = len(self._history.get(id_, ()))
        feed = len(self._feed)
        calls = [call.id for call in changes.outbox]

        def undo() -> None:
            for key, process in processes.items():
                if process is None:
                    self._processes.pop(key, None)
                else:
                    self._processes[key] = process
            for key, length in definitions.items():
                del self._definitions[key][length:]
            self._processes_version = version
            for id_, opportunity in old_opportunities.items():
                if opportunity is None:
                    self._opportunities.pop(id_, None)
                else:
                    self._opportunities[id_] = opportunity
            for id_, activity in old_activities.items():
                self._put_activity(id_, activity)
            for id_, length in lengths.items():
                if length:
                    del self._history[id_][length:]
                else:
                    self._history.pop(id_, None)
            # Nothing committed after this one while the block held the lock, so its
            # positions are the last ones, and they are handed out again.
            del self._feed[feed:]
            for id_ in calls:
                self._calls.pop(id_, None)
                self._leases.pop(id_, None)

        return undo

    def _put_activity(self, activity_id: str, activity: Activity | None) -> None:
        """Store (or, given None, remove) one activity, keeping the index in step."""
        previous = self._activities.pop(activity_id, None)
        before = previous.opportunity_id if previous is not None else None
        after = activity.opportunity_id if activity is not None else None
        if before is not None and before != after:
            listed = tuple(i for i in self._activities_of[before] if i != activity_id)
            if listed:
                self._activities_of[before] = listed
            else:
                del self._activities_of[before]
        if activity is None:
            return
        self._activities[activity.id] = activity
        if after is not None and after != before:
            self._activities_of[after] = (*self._activities_of.get(after, ()), activity.id)


#: Where a packed event holds its time (see :func:`~salesflow.domain.events.packed`).
_AT: Final = 3


class _Block:
    """A command block of an :class:`InMemoryRepository` (see ``command``)."""

    __slots__ = ("_joined", "_repository")

    def __init__(self, repository: InMemoryRepository) -> None:
        self._repository = repository
        self._joined = False

    def __enter__(self) -> None:
        repository = self._repository
        repository._lock.acquire()
        if repository._undo is not None:  # nested: join the open block
            self._joined = True
        else:
            repository._undo = []

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> None:
        repository = self._repository
        try:
            if not self._joined:
                undos, repository._undo = repository._undo, None
                if kind is not None and undos:
                    for undo in reversed(undos):
                        undo()
        finally:
            repository._lock.release()


def _current(staged: Mapping[str, V | _Gone], stored: Mapping[str, V], id_: str) -> V | None:
    """The record ``id_`` as the writes checked so far leave it (None: not there)."""
    if id_ in staged:
        found = staged[id_]
        return None if isinstance(found, _Gone) else found
    return stored.get(id_)


def _check_version(stored: V | None, new: V) -> None:
    """``new`` must be one version above ``stored``; version 1 needs a free id."""
    kind = type(new).__name__
    if new.version == 1 and stored is not None:
        raise ValidationError(f"{kind} {new.id!r}: the id is already taken")
    expected = new.version - 1
    found = stored.version if stored is not None else 0
    if found != expected:
        raise ConcurrencyError(
            f"{kind} {new.id!r} is stored at version {found}, so version {new.version} "
            "cannot be written (it must be one above the stored version; 1 for a new record)"
        )


def _pipeline_totals(
    opportunities: Iterable[Opportunity], *, basis: Basis, owner: str | None
) -> PipelineTotals:
    """What :func:`salesflow.queries.pipeline_totals` gives for these opportunities, in
    one pass that adds up the amounts of each stage, currency and probability, and
    multiplies by each probability once per group rather than once per deal: the same
    exact sums, since every amount and probability is exact."""
    groups: dict[tuple[str, str, int], list[Any]] = {}
    paused = 0
    annual = basis == "annual_value"
    on_hold = Status.PAUSED
    for o in opportunities:
        if owner is not None and o.owner != owner:
            continue
        if o.status is on_hold:
            paused += 1
            continue
        money = o.annual_value if annual and o.annual_value else o.value
        probability = o.probability_override
        if probability is None:
            probability = o.stage_probability
        key = (o.stage, money.currency.code, probability)
        group = groups.get(key)
        if group is None:
            groups[key] = [1, Decimal(0) + money.amount]
        else:
            group[0] += 1
            group[1] += money.amount
    sums: dict[tuple[str, str], list[Any]] = {}
    for (stage, code, probability), (count, amount) in groups.items():
        row = sums.setdefault((stage, str(code)), [0, Decimal(0), Decimal(0)])
        row[0] += count
        row[1] += amount
        row[2] += amount * probability
    return PipelineTotals(
        rows=tuple(
            StageTotal(stage, currency, count, amount, weighted / 100)
            for (stage, currency), (count, amount, weighted) in sorted(sums.items())
        ),
        paused=paused,
    )
