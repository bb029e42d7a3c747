"""The ports salesflow talks to the world through, and their default adapters.

Every port is a small class: pass your own implementation to :class:`~salesflow.SalesFlow`
(subclass it or match its methods), or use the defaults here.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import datetime as dt
import operator
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import attrs

from salesflow.domain import checks
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event
from salesflow.domain.opportunity import Opportunity, OpportunityAction
from salesflow.domain.process import Process
from salesflow.domain.values import ActionKind, ActivityStatus
from salesflow.errors import MissingExchangeRate, ValidationError
from salesflow.messages import Message
from salesflow.queries import (
    Basis,
    ClosedDeal,
    ForecastQuery,
    ForecastTotals,
    Page,
    PipelineTotals,
    Revision,
    SearchQuery,
)

__all__ = [
    "AllowAll",
    "ChangeSet",
    "Clock",
    "Correspondence",
    "ExchangeRates",
    "FixedClock",
    "Invitations",
    "PendingCall",
    "Policy",
    "RecordingCorrespondence",
    "RecordingInvitations",
    "Repository",
    "StaticRates",
    "SystemClock",
    "current_call",
]


# -- time --------------------------------------------------------------------------


class Clock(abc.ABC):
    """Where salesflow gets the time. ``now()`` is always timezone-aware."""

    @abc.abstractmethod
    def now(self) -> dt.datetime: ...


class SystemClock(Clock):
    """The real time, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock(Clock):
    """A clock that stands still until told to move: for tests and replays."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = checks.aware(at, "FixedClock(at)")

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = checks.aware(at, "FixedClock.set(at)")

    def advance(self, delta: dt.timedelta) -> None:
        if not isinstance(delta, dt.timedelta):
            raise ValidationError(f"FixedClock.advance: expected a timedelta, got {delta!r}")
        try:
            moved = self._at + delta
        except OverflowError:
            raise ValidationError(f"FixedClock.advance: {delta} leaves the calendar") from None
        self._at = checks.aware(moved, "FixedClock.advance")


# -- money -------------------------------------------------------------------------


class ExchangeRates(abc.ABC):
    """Rates for reports in one currency: ``rate(base, quote, on)`` converts 1 base."""

    @abc.abstractmethod
    def rate(self, base: str, quote: str, on: dt.date) -> Decimal: ...


#: The range of a static rate: wide enough for any pair of currencies in use.
_RATE_MIN, _RATE_MAX = Decimal("0.000001"), Decimal(1_000_000)


class StaticRates(ExchangeRates):
    """Fixed rates from a mapping ``{(base, quote): rate}``; inverses are derived.

    A rate given for both directions is used as given in each (buying and selling
    rates may differ); a currency's rate to itself is 1, and giving another is a
    ``ValidationError``."""

    def __init__(self, rates: Mapping[tuple[str, str], Decimal | int | str]) -> None:
        if not isinstance(rates, Mapping):
            raise ValidationError(
                f"StaticRates: expected a mapping {{(base, quote): rate}}, got {rates!r}"
            )
        table: dict[tuple[str, str], Decimal] = {}
        for pair, raw in rates.items():
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValidationError(f"StaticRates: expected (base, quote) pairs, got {pair!r}")
            base = checks.currency(pair[0], "StaticRates: a base currency")
            quote = checks.currency(pair[1], "StaticRates: a quote currency")
            where = f"StaticRates {base}/{quote}"
            rate = checks.amount(raw, where)
            if not _RATE_MIN <= rate <= _RATE_MAX:
                raise ValidationError(
                    f"{where}: a rate must be between {_RATE_MIN} and {_RATE_MAX}, got {rate}"
                )
            if base == quote and rate != 1:
                raise ValidationError(f"{where}: a currency's rate to itself is 1, not {rate}")
            table[(base, quote)] = rate
            table.setdefault((quote, base), Decimal(1) / rate)
        self._rates = table

    def rate(self, base: str, quote: str, on: dt.date) -> Decimal:
        if base == quote:
            return Decimal(1)
        try:
            return self._rates[(base, quote)]
        except KeyError:
            raise MissingExchangeRate(
                Message("No exchange rate from {base} to {quote}", base=base, quote=quote)
            ) from None


# -- outbound ----------------------------------------------------------------------


class Correspondence(Protocol):
    """Sends the letter of a LETTER stage action."""

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None: ...


class Invitations(Protocol):
    """Invites an opportunity's customer to an event; False if already invited."""

    def invite(self, event: str, opportunity: Opportunity) -> bool: ...


class Policy(Protocol):
    """Decides whether ``actor`` may run ``command`` (a ``SalesFlow`` method name)."""

    def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool: ...


class RecordingCorrespondence:
    """The default correspondence port: records what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str | None]] = []

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self.sent.append((opportunity.id, action.key, action.spec.template))


class RecordingInvitations:
    """The default invitations port: records invitations, once per event and customer."""

    def __init__(self) -> None:
        self.invited: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        invitee = opportunity.customer.id if opportunity.customer else opportunity.id
        with self._lock:
            if (event, invitee) in self.invited:
                return False
            self.invited.append((event, invitee))
            return True


class AllowAll:
    """The default policy: every actor may run every command."""

    def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool:
        return True


_COUNT = checks.validator(lambda value, where: checks.integer(value, where, 0, 2**63 - 1))


@attrs.frozen
class PendingCall:
    """A LETTER or EVENT call a committed command asked for, kept in the outbox until
    it has been made.

    ``id`` is stable: it is the id of the ``ACTION_PERFORMED`` event that asked for the
    call, the same on every attempt, so a port can use it as an idempotency key (see
    :func:`current_call`). ``opportunity`` is the opportunity as that command left it
    and ``action_id`` names its action; ``queued_at`` is when the command ran (by the
    app's clock), ``attempts`` how often the call has been started, this one included
    (0 while it is only queued), and ``seq`` its place in the outbox's queue, given
    by the repository (0 until stored).
    """

    id: str = attrs.field(validator=checks.validator(checks.name))
    kind: ActionKind = attrs.field(
        validator=checks.validator(checks.instance_of(ActionKind, "an ActionKind"))
    )
    opportunity: Opportunity = attrs.field(
        validator=checks.validator(checks.instance_of(Opportunity, "an Opportunity"))
    )
    action_id: str = attrs.field(validator=checks.validator(checks.name))
    queued_at: dt.datetime = attrs.field(validator=checks.validator(checks.aware))
    attempts: int = attrs.field(default=0, kw_only=True, validator=_COUNT)
    seq: int = attrs.field(default=0, kw_only=True, validator=_COUNT)

    @property
    def action(self) -> OpportunityAction:
        """The action to carry out (``NotFound`` if the opportunity has no such action)."""
        return self.opportunity.require_action(self.action_id)


_CURRENT_CALL: contextvars.ContextVar[PendingCall | None] = contextvars.ContextVar(
    "salesflow_current_call", default=None
)


def current_call() -> PendingCall | None:
    """The outbound call being made, while ``SalesFlow`` is inside a port's ``send`` or
    ``invite``; None anywhere else.

    Delivery is at least once: a process that dies after a port returned but before
    the call was marked made sends it again later. A port that must not act twice
    keeps ``current_call().id`` (the same on every attempt) with what it did -- as the
    idempotency key of a mail or calendar API, or in a table of ids already handled --
    and skips an id it has seen.
    """
    return _CURRENT_CALL.get()


@contextlib.contextmanager
def making(call: PendingCall) -> Iterator[None]:
    """Within the block, :func:`current_call` answers ``call``."""
    token = _CURRENT_CALL.set(call)
    try:
        yield
    finally:
        _CURRENT_CALL.reset(token)


# -- storage -----------------------------------------------------------------------


@attrs.frozen
class ChangeSet:
    """Everything one command writes; a repository commits it whole or not at all.

    Versions carry the optimistic-concurrency check: each opportunity and activity
    written has ``version`` one above the version it was read at (1 for a new record),
    and the repository must refuse the whole change set with ``ConcurrencyError`` when
    the stored version is not ``version - 1``. A new record (version 1) whose id is
    already stored in the workspace is refused with ``ValidationError`` instead: an id
    clash is not a conflict that running the command again would resolve.
    ``deleted_activities`` hold the version read: delete only if it is still stored.
    An activity naming an opportunity that is neither stored nor in the same change
    set is refused with ``StorageError``. The records are written in this order --
    processes, opportunities, activities, deletions, outbox, events -- so a change set
    may create an opportunity and its activities together.

    ``events`` get their positions (see ``Event.position``) when committed: the next
    ones of the workspace, in the change set's order; the positions they carry here
    are ignored. ``outbox`` holds the outbound calls the command asked for, queued in
    the same transaction (their ``seq`` and ``attempts`` are given by the repository);
    a call whose id is already queued is refused with ``ValidationError``.

    ``defined_at`` is when ``processes`` were defined (the command's clock time): the
    repository keeps each definition under it, for :meth:`Repository.process_as_of`.
    """

    opportunities: tuple[Opportunity, ...] = ()
    activities: tuple[Activity, ...] = ()
    deleted_activities: tuple[Activity, ...] = ()
    events: tuple[Event, ...] = ()
    processes: tuple[Process, ...] = ()
    outbox: tuple[PendingCall, ...] = ()
    defined_at: dt.datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.processes and (
            not isinstance(self.defined_at, dt.datetime) or self.defined_at.utcoffset() is None
        ):
            raise ValidationError(
                "ChangeSet: process definitions need defined_at, a timezone-aware datetime, "
                f"not {self.defined_at!r}"
            )

    def __bool__(self) -> bool:
        return bool(
            self.opportunities
            or self.activities
            or self.deleted_activities
            or self.events
            or self.processes
            or self.outbox
        )


class Repository(abc.ABC):
    """Stores processes, opportunities, activities and history of one workspace.

    Reads return what was last committed. ``commit`` writes a :class:`ChangeSet`
    atomically, numbering its events (the change feed, see :meth:`changes`) and
    queueing its outbound calls (the outbox, see :meth:`claim_calls`), and raises
    ``ConcurrencyError`` on a version conflict, ``ValidationError`` for a new record
    whose id is taken and ``StorageError`` for an activity of an opportunity that is
    not stored, changing nothing in each case.
    ``salesflow.testing`` holds the contract suite every implementation must pass.
    """

    workspace: str = "default"

    @abc.abstractmethod
    def processes(self) -> list[Process]:
        """The stored process definitions (those defined with ``define_process``)."""

    @abc.abstractmethod
    def processes_version(self) -> int:
        """A number that changes whenever a commit writes a process definition, in this
        workspace, by any process using the same storage (0 before the first). Reading
        it costs one indexed row, so an app can cache :meth:`processes` and read them
        again only when this number has moved."""

    @abc.abstractmethod
    def process_as_of(self, key: str, at: dt.datetime) -> Process | None:
        """The definition of process ``key`` in effect at ``at`` (inclusive): the one
        written by the latest commit whose ``defined_at`` is not after ``at`` (of two
        at the same moment, the later commit's); None when none was stored by then.
        Reports as of a past moment read the stages as they were defined then."""

    @abc.abstractmethod
    def get_opportunity(self, opportunity_id: str) -> Opportunity | None: ...

    @abc.abstractmethod
    def get_activity(self, activity_id: str) -> Activity | None: ...

    @abc.abstractmethod
    def opportunities(
        self, *, process: str | None = None, stages: Collection[str] | None = None
    ) -> list[Opportunity]:
        """All opportunities (of one process; in one of ``stages``, by stage key), in
        creation order. A lone string in ``stages`` is one stage; an empty collection
        matches nothing."""

    @abc.abstractmethod
    def count_by_stage(self, process: str) -> dict[str, int]:
        """How many opportunities of ``process`` each stage key holds: only the stages
        holding at least one, in key order (a SQL repository counts with ``GROUP BY``
        in the database, without loading an opportunity)."""

    @abc.abstractmethod
    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        """Activities matching every given filter (``due`` within [due_from, due_to]),
        ordered by due time, then id."""

    @abc.abstractmethod
    def history(self, opportunity_id: str) -> list[Event]:
        """The events of one opportunity, oldest first (in commit order)."""

    @abc.abstractmethod
    def changes(self, after: int, limit: int) -> list[Event]:
        """The change feed: the workspace's committed events with ``position > after``,
        at most ``limit`` of them, in position order (read through an index on
        (workspace, position), whatever the size of the store).

        Positions are unique within the workspace and increase in commit order: an
        event committed after another has a higher position, and once an event with
        position ``p`` can be read, no event with a lower position will ever be
        committed. So a reader that asks again with the last position it received
        gets every event once, without skipping one, while other processes commit."""

    @abc.abstractmethod
    def claim_calls(
        self,
        *,
        now: dt.datetime,
        until: dt.datetime,
        limit: int,
        after: int = 0,
        ids: Collection[str] | None = None,
    ) -> list[PendingCall]:
        """Lease up to ``limit`` pending outbound calls to the caller, in queue order:
        those with ``seq > after`` (of ``ids`` only, when given) that no one holds --
        never leased, released, or leased until ``now`` or earlier. Each comes back with
        ``attempts`` one up, leased ``until`` then; while the lease lasts no other
        ``claim_calls`` returns it, in this process or another. The claim is one short
        transaction of its own: no lock is held once it returns."""

    @abc.abstractmethod
    def finish_call(self, call_id: str) -> None:
        """The call has been made: remove it from the outbox (nothing if it is gone)."""

    @abc.abstractmethod
    def release_call(self, call_id: str, error: str) -> None:
        """The call failed: it stays pending, free to be claimed again at once, with
        ``error`` kept as its last error (nothing if it is gone)."""

    @abc.abstractmethod
    def search(self, query: SearchQuery) -> Page:
        """The page of opportunities ``query`` asks for and the number of matches in all,
        as :meth:`SearchQuery.page <salesflow.queries.SearchQuery.page>` defines them:
        computed in the database, decoding only the opportunities of the page."""

    @abc.abstractmethod
    def pipeline_totals(
        self, process: str, *, basis: Basis, owner: str | None = None
    ) -> PipelineTotals:
        """Per stage and currency, the count and exact sums of the process' opportunities
        (of ``owner``), as :func:`salesflow.queries.pipeline_totals` defines them:
        computed in the database."""

    @abc.abstractmethod
    def revision(self, process: str | None, at: dt.datetime) -> Revision:
        """What reports as of ``at`` change in the live ones, for the opportunities of
        ``process`` (of every process when None), as :func:`salesflow.queries.revision`
        defines it: those whose history has events after ``at``, as they stand and as
        they stood at ``at``. A SQL repository finds them by the events' time and
        decodes only the old values of the report fields those events changed."""

    @abc.abstractmethod
    def forecast_totals(self, query: ForecastQuery) -> ForecastTotals:
        """The forecast's figures as they stand, as
        :func:`salesflow.queries.forecast_totals` defines them: computed in the
        database."""

    @abc.abstractmethod
    def closed_deals(
        self, process: str, *, start: dt.date | None, end: dt.date | None
    ) -> list[ClosedDeal]:
        """The closed deals analytics read, as :func:`salesflow.queries.closed_deals`
        defines them, without decoding an opportunity."""

    @abc.abstractmethod
    def stuck(self, process: str, cutoffs: Mapping[str, dt.datetime]) -> list[Opportunity]:
        """The open opportunities of ``process`` in a stage of ``cutoffs`` entered
        before its cutoff, as :func:`salesflow.queries.stuck` defines them: found in the
        database, decoding only those returned."""

    @abc.abstractmethod
    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        """Write ``changes`` whole or not at all; return its events as stored, each
        with its position (in the change set's order). An empty change set writes
        nothing and returns ``()``."""

    def command(self, opportunity_id: str | None) -> contextlib.AbstractContextManager[None]:
        """A block for one command: the reads and the :meth:`commit` this thread makes
        inside it form one write transaction, which holds ``opportunity_id`` (when
        given) so that other writers of that opportunity -- in this process or another
        -- wait until the block ends. Reads inside the block see the latest committed
        state. The block's end makes its commit durable; an exception out of the block
        undoes it. A commit that fails inside the block still changes nothing, and a
        ``command`` opened inside another one on the same thread joins it.

        Slow work (outbound calls, subscribers) belongs after the block: other writers
        wait while it is open. The default does nothing (each commit stays its own
        version-checked transaction); a repository whose writers can take turns
        overrides it.
        """
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""

    @staticmethod
    def _stage_keys(stages: Collection[str] | None) -> tuple[str, ...] | None:
        """``stages`` of :meth:`opportunities` as a tuple of distinct keys in the order
        given (a lone string as one key), or None for no filter."""
        if stages is None:
            return None
        found = (stages,) if isinstance(stages, str) else stages
        if not isinstance(found, Collection):
            raise ValidationError(
                f"opportunities(stages=...): expected a collection of stage keys, got {stages!r}"
            )
        for key in found:
            if not isinstance(key, str):
                raise ValidationError(
                    f"opportunities(stages=...): a stage key must be a string, got {key!r}"
                )
        return tuple(dict.fromkeys(found))


#: The order activities are listed in: by due time, then by id.
_DUE_THEN_ID = operator.attrgetter("due", "id")


def sort_activities(activities: Sequence[Activity]) -> list[Activity]:
    return sorted(activities, key=_DUE_THEN_ID)
