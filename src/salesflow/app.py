"""``SalesFlow``: the application every caller talks to.

Every command has the same four steps:

1. check its arguments (nothing happens for a call that is refused here);
2. load the records it concerns and ask the policy;
3. ask the domain -- a :class:`~salesflow.domain.deal.Deal` or the stage-change
   planner -- and commit what changed in one step (a version conflict runs steps 2 and
   3 again, with backoff);
4. after the commit: make the outbound calls the command asked for, once, and tell the
   subscribers what happened, in commit order.

The rules themselves live in the domain; this module holds none of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum
import functools
import itertools
import logging
import os
import random
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from moneyed import Money

from salesflow import locale as catalogs
from salesflow import processes as builtin
from salesflow import queries, reporting
from salesflow._announcements import Announcements
from salesflow._outbox import Outbox, queued
from salesflow.domain import checks
from salesflow.domain.activity import Activity, ActivityIndicator, indicator
from salesflow.domain.deal import Deal
from salesflow.domain.events import POSITION_MAX, Event
from salesflow.domain.events import contributors as worked_on
from salesflow.domain.opportunity import (
    EDITABLE_FIELDS,
    Opportunity,
    OpportunityAction,
    clean_fields,
)
from salesflow.domain.planner import StageChangePlan
from salesflow.domain.process import Process, Stage, StageAction
from salesflow.domain.replacement import plan_replacement, reweighted_stages
from salesflow.domain.values import (
    ActivityKind,
    ActivityStatus,
    Customer,
    DealCounts,
    InvoiceDraft,
    LineItem,
    Related,
    StageKind,
    Status,
    TicketRef,
)
from salesflow.errors import (
    ConcurrencyError,
    LockTimeout,
    MissingExchangeRate,
    NotFound,
    PermissionDenied,
    SalesflowError,
    ValidationError,
)
from salesflow.memory import InMemoryRepository
from salesflow.messages import Catalog, Message
from salesflow.ports import (
    AllowAll,
    ChangeSet,
    Clock,
    Correspondence,
    ExchangeRates,
    Invitations,
    Policy,
    RecordingCorrespondence,
    RecordingInvitations,
    Repository,
    SystemClock,
)
from salesflow.queries import GROUPINGS, ORDERINGS, Basis, ForecastQuery, Page, SearchQuery
from salesflow.reporting import Analytics, Forecast, Pipeline, ProbabilitySource
from salesflow.results import BulkResult, Result
from salesflow.unit_of_work import UnitOfWork

__all__ = ["MAX_SIMULATIONS", "ActivityIndicator", "BulkResult", "Result", "SalesFlow"]

#: The most outcomes ``forecast(simulations=...)`` draws.
MAX_SIMULATIONS = 100_000
#: The processes every app has, by key, until ``define_process`` replaces them.
_BUILT_IN: Mapping[str, Process] = types.MappingProxyType(
    {p.key: p for p in (builtin.STANDARD, builtin.SIMPLE)}
)

log = logging.getLogger("salesflow")
T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


@attrs.frozen
class _Creation:
    """A checked ``create_opportunity``: what the deal is asked to create."""

    process: Process
    start: Stage
    opportunity_id: str
    fields: Mapping[str, Any]
    loss_reason: str | None

    def carry_out(self, deal: Deal) -> None:
        deal.create(self.opportunity_id, self.start, self.fields, loss_reason=self.loss_reason)


#: The keyword arguments an item of ``create_opportunities`` may hold.
_CREATION_ARGUMENTS = frozenset(
    {
        "title",
        "process",
        "stage",
        "customer",
        "value",
        "annual_value",
        "probability",
        "expected_close",
        "owner",
        "description",
        "external_ref",
        "related",
        "loss_reason",
    }
)


def _port(value: object, method: str, where: str) -> Any:
    if not callable(getattr(value, method, None)):
        raise ValidationError(f"SalesFlow({where}=...): expected an object with {method}()")
    return value


C = TypeVar("C", bound=type)


def _speaking(cls: C) -> C:
    """The one place where errors leave a ``SalesFlow``: each public method of the
    class, wrapped so that the errors it raises -- and the errors a ``BulkResult`` it
    returns holds -- have their messages in the app's locale (``_translate``)."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def public(self: SalesFlow, /, *args: Any, **kwargs: Any) -> Any:
            try:
                returned = method(self, *args, **kwargs)
            except SalesflowError as error:
                self._translate(error)
                raise
            if isinstance(returned, BulkResult):
                for failure in returned.failed.values():
                    self._translate(failure)
            return returned

        return public

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and isinstance(member, types.FunctionType):
            setattr(cls, name, wrap(member))
    return cls


@_speaking
class SalesFlow:
    """The opportunities module: processes, opportunities, stages, actions, activities.

    All collaborators are ports with defaults: an in-memory repository, the system
    clock, UTC, no exchange rates, recording correspondence and invitations, and a
    policy that allows everything. ``retries`` bounds how often a command is re-run
    after a version conflict before ``ConcurrencyError`` reaches the caller.

    ``locale`` (``"nb_NO"``, ``"nb"``, ``"en_US"``...) is the language of the
    ``Result.notices`` and of the messages of the errors this app raises; None (the
    default) keeps the English texts. A locale without a catalog shipped in
    ``salesflow.locale`` gets English; one that names no language is a
    ``ValidationError``.
    """

    def __init__(
        self,
        repository: Repository | None = None,
        *,
        clock: Clock | None = None,
        timezone: dt.tzinfo | str = dt.UTC,
        rates: ExchangeRates | None = None,
        correspondence: Correspondence | None = None,
        invitations: Invitations | None = None,
        policy: Policy | None = None,
        ids: Callable[[], str] | None = None,
        retries: int = 20,
        backoff: dt.timedelta = dt.timedelta(milliseconds=2),
        locale: str | None = None,
    ) -> None:
        if repository is not None and not isinstance(repository, Repository):
            raise ValidationError(
                f"SalesFlow(repository=...): expected a Repository, got {repository!r}"
            )
        if ids is not None and not callable(ids):
            raise ValidationError(f"SalesFlow(ids=...): expected a function, got {ids!r}")
        if not isinstance(backoff, dt.timedelta) or backoff < dt.timedelta(0):
            raise ValidationError(
                f"SalesFlow(backoff=...): expected a timedelta of zero or more, got {backoff!r}"
            )
        if isinstance(clock, type | dt.date):
            raise ValidationError(
                f"SalesFlow(clock=...): expected a Clock (FixedClock(at) for a fixed "
                f"moment), got {clock!r}"
            )
        self.repository = repository if repository is not None else InMemoryRepository()
        self.clock: Clock = _port(clock, "now", "clock") if clock is not None else SystemClock()
        self.timezone = checks.timezone(timezone, "SalesFlow(timezone=...)")
        self.rates = _port(rates, "rate", "rates") if rates is not None else None
        self.correspondence: Correspondence = (
            _port(correspondence, "send", "correspondence")
            if correspondence is not None
            else RecordingCorrespondence()
        )
        self.invitations: Invitations = (
            _port(invitations, "invite", "invitations")
            if invitations is not None
            else RecordingInvitations()
        )
        self.policy: Policy = (
            _port(policy, "allows", "policy") if policy is not None else AllowAll()
        )
        #: The host app's id factory (None: uuid4 hex, made here; see ``_new_id``).
        self._ids = ids
        self._retries = checks.integer(retries, "SalesFlow(retries=...)", 0, 1000)
        self._backoff = backoff.total_seconds()
        self._announcements = Announcements()
        self._outbox = Outbox(self.repository, self.correspondence, self.invitations)
        self._processes: tuple[int, Mapping[str, Process]] | None = None
        #: The locale of notices and error messages (None: English, as written).
        self.locale = (
            catalogs.locale_name(locale, "SalesFlow(locale=...)") if locale is not None else None
        )
        self._catalog: Catalog | None = (
            catalogs.translation(self.locale) if self.locale is not None else None
        )

    # -- speaking the caller's language ----------------------------------------

    def _say(self, message: Message) -> str:
        """A notice in this app's locale."""
        return message.render(self._catalog)

    def _translate(self, error: SalesflowError) -> None:
        """Put the message of an error that leaves this app into its locale: the same
        error object, with its English text replaced. Errors raised with plain text,
        and errors already translated (by a public call made inside another), stay
        as they are."""
        if self._catalog is None or error.message is None or error.locale is not None:
            return
        error.args = (error.message.render(self._catalog), *error.args[1:])
        error.locale = self.locale

    # -- the command loop ------------------------------------------------------

    def _new_id(self) -> str:
        """A new id: the host app's factory's, checked, or a uuid4 hex (which is always a
        valid id, so it is not checked)."""
        if self._ids is None:
            return _uuid4_hex()
        return checks.name(_call(self._ids, "SalesFlow(ids=...)"), "SalesFlow(ids=...)(): a new id")

    def _now(self) -> dt.datetime:
        return checks.aware(_call(self.clock.now, "Clock.now()"), "Clock.now()")

    def _today(self) -> dt.date:
        return self._now().astimezone(self.timezone).date()

    def _deal(
        self,
        *,
        opportunity_id: str | None = None,
        activity_id: str | None = None,
        process: Process | None = None,
        actor: str | None = None,
    ) -> tuple[Deal, UnitOfWork]:
        """Load what a command works on: an opportunity with its activities (found
        directly or through one of its activities), or a free-standing activity."""
        activities: list[Activity] = []
        if activity_id is not None:
            activity = self.repository.get_activity(activity_id)
            if activity is None:
                raise NotFound(Message("Activity {id!r} does not exist", id=activity_id))
            opportunity_id = activity.opportunity_id
            activities = [activity]
        opportunity = None
        if opportunity_id is not None:
            # The id was checked at the boundary, and a stored opportunity's process key
            # is a valid name: neither is checked again.
            opportunity = self._stored_opportunity(opportunity_id)
            process = self._defined_process(opportunity.process)
            activities = self.repository.activities(opportunity_id=opportunity_id)
        deal = Deal(
            process=process,
            opportunity=opportunity,
            activities=activities,
            now=self._now(),
            timezone=self.timezone,
            actor=actor,
            new_id=self._new_id,
        )
        return deal, UnitOfWork(opportunity, activities)

    def _allow(self, actor: str | None, command: str, opportunity: Opportunity | None) -> None:
        """Ask the policy; a refusal -- or a policy that fails, which refuses -- raises
        ``PermissionDenied``."""
        try:
            allowed = self.policy.allows(actor, command, opportunity)
        except SalesflowError:
            raise
        except Exception as error:
            log.exception("salesflow policy %r failed on %s", self.policy, command)
            raise PermissionDenied(
                Message(
                    "{who} may not {command} on {target}: the policy failed ({error})",
                    **_refused(actor, command, opportunity),
                    error=f"{type(error).__name__}: {error}",
                )
            ) from error
        if allowed is True:  # only a plain True allows: anything else refuses
            return
        if allowed is False:
            raise PermissionDenied(
                Message(
                    "{who} may not {command} on {target}", **_refused(actor, command, opportunity)
                )
            )
        raise PermissionDenied(
            Message(
                "{who} may not {command} on {target}: the policy answered {answer!r}, not True",
                **_refused(actor, command, opportunity),
                answer=allowed,
            )
        )

    def _commit(
        self,
        command: str,
        attempt: Callable[[], tuple[ChangeSet, T]],
        opportunity_id: str | None = None,
    ) -> tuple[T, tuple[Event, ...]]:
        """Run ``attempt`` (load, decide, return what to commit) and commit its change
        set, all in one ``repository.command`` block holding ``opportunity_id``, so
        that other writers of it wait their turn; after a conflict that remains run it
        again on fresh records, with jittered exponential backoff, ``retries`` times at
        most. A ``LockTimeout`` (a lock wait that already lasted the repository's
        timeout) is not run again. Returns ``attempt``'s value and the committed
        events, with positions."""
        tries = 0
        while True:
            place = None
            try:
                with self.repository.command(opportunity_id):
                    changes, value = attempt()
                    stored = _stored(self.repository.commit(changes), changes) if changes else ()
                    if stored and self._announcements.listening:
                        # In the queue while this commit still holds its turn.
                        place = self._announcements.reserve()
            except BaseException as error:
                if place is not None:  # rolled back: nothing to tell
                    self._announcements.settle(place, ())
                if not isinstance(error, ConcurrencyError) or isinstance(error, LockTimeout):
                    raise  # a lock wait that outlasted its timeout is not run again
                conflict = error
                if tries >= self._retries:
                    raise ConcurrencyError(
                        f"{command}: gave up after {tries + 1} attempts: {conflict}"
                    ) from conflict
                delay = self._backoff * (2 ** min(tries, 8))
                time.sleep(random.uniform(delay / 2, delay))
                tries += 1
                continue
            if place is not None:
                self._announcements.settle(place, stored)
            return value, stored

    def _run(
        self,
        command: str,
        actor: object,
        body: Callable[[Deal], object],
        *,
        opportunity_id: str | None = None,
        activity_id: str | None = None,
        process: Process | None = None,
    ) -> Result:
        """One command: load, ask the policy, let ``body`` change the deal, commit; then
        the outbound calls and the subscribers."""
        who = checks.optional_person(actor, f"{command}(actor=...)")

        def attempt() -> tuple[ChangeSet, tuple[Deal, ChangeSet]]:
            deal, unit = self._deal(
                opportunity_id=opportunity_id,
                activity_id=activity_id,
                process=process,
                actor=who,
            )
            self._allow(who, command, deal.opportunity)
            body(deal)
            changes = unit.change_set(deal)
            if deal.outbox:
                changes = attrs.evolve(changes, outbox=queued(deal, changes))
            return changes, (deal, changes)

        held = opportunity_id
        if held is None and activity_id is not None:
            # Hold the activity's opportunity (the commit still checks it did not move).
            found = self.repository.get_activity(activity_id)
            held = found.opportunity_id if found is not None else None
        (deal, changes), events = self._commit(command, attempt, held)
        committed = {a.id: a for a in changes.activities}
        notices = [
            *deal.notices,
            *self._outbox.call_out(changes.outbox, now=self._now, lease=self._lease),
        ]
        self._announcements.announce()
        return Result(
            opportunity=changes.opportunities[0] if changes.opportunities else deal.opportunity,
            events=events,
            notices=tuple(self._say(notice) for notice in notices),
            created=tuple(committed[i] for i in deal.created if i in committed),
            cancelled=tuple(committed[i] for i in deal.cancelled if i in committed),
        )

    #: How long a process that claimed an outbound call has to make it before another
    #: ``deliver_pending`` may take it over (and make it again).
    call_lease: dt.timedelta = dt.timedelta(minutes=5)
    #: How many outbound calls ``deliver_pending`` claims at a time.
    call_batch: int = 20

    def _lease(self) -> dt.timedelta:
        lease = self.call_lease
        if not isinstance(lease, dt.timedelta) or not (
            dt.timedelta(0) < lease <= dt.timedelta(days=366)
        ):
            raise ValidationError(
                f"SalesFlow.call_lease: expected a timedelta above zero and at most a "
                f"year, got {lease!r}"
            )
        return lease

    def subscribe(self, handler: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``handler`` with every event after its command commits; returns a function
        that unsubscribes it."""
        if not callable(handler):
            raise ValidationError(f"subscribe: expected a function, got {handler!r}")
        return self._announcements.subscribe(handler)

    def changes(self, after: int = 0, *, limit: int = 1000) -> tuple[Event, ...]:
        """The change feed: the workspace's committed events with ``position > after``,
        oldest first, at most ``limit`` (1..10000) of them.

        Positions are unique and increase in commit order, so a reader that asks again
        with the position of the last event it received gets every event exactly once
        and never skips one, even while other processes commit (see docs/feed.md).
        An empty answer means nothing newer has committed yet."""
        start = checks.integer(after, "changes(after=...)", 0, POSITION_MAX)
        most = checks.integer(limit, "changes(limit=...)", 1, 10_000)
        return tuple(self.repository.changes(start, most))

    def deliver_pending(self, *, limit: int | None = None) -> int:
        """Make the pending outbound calls (LETTER and EVENT) -- those whose command's
        process failed to make them or died first -- oldest first; returns how many
        went out.

        Each call is claimed for ``call_lease`` before it is made, in a short
        transaction of its own, so that when several processes deliver at once each
        call is made by one of them. A call that fails again stays pending (tried once
        per run). ``limit`` bounds how many calls this run tries (None: all pending
        when it gets to them)."""
        most = (
            None if limit is None else checks.integer(limit, "deliver_pending(limit=...)", 0, 2**31)
        )
        return self._outbox.deliver(
            now=self._now,
            lease=self._lease,
            batch=lambda: checks.integer(self.call_batch, "SalesFlow.call_batch", 1, 10_000),
            limit=most,
        )

    # -- processes -------------------------------------------------------------

    def define_process(
        self,
        process: Process,
        *,
        stage_map: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> None:
        """Add a process, or replace the one with the same key.

        When the new version drops stages that hold opportunities (or makes one another
        kind), ``stage_map`` must say where each such stage's opportunities go; they
        move there in the same commit. Deals in a stage whose default probability
        changed follow the new default.
        """
        if not isinstance(process, Process):
            raise ValidationError(f"define_process: expected a Process, got {process!r}")
        who = checks.optional_person(actor, "define_process(actor=...)")
        self._allow(who, "define_process", None)

        def attempt() -> tuple[ChangeSet, list[Event]]:
            old = self._defined().get(process.key)
            counts = self.repository.count_by_stage(process.key) if old is not None else {}
            moves = plan_replacement(old, process, counts, stage_map)
            reweighted = reweighted_stages(old, process, counts, moves)
            opportunities: list[Opportunity] = []
            events: list[Event] = []
            now = self._now()
            affected = [*moves, *reweighted]
            for held in self.repository.opportunities(process=process.key, stages=affected):
                deal = Deal(
                    process=process,
                    opportunity=held,
                    activities=(),
                    now=now,
                    timezone=self.timezone,
                    actor=who,
                    new_id=self._new_id,
                )
                if held.stage in moves:
                    deal.move_for_process_change(process, moves[held.stage])
                else:
                    deal.follow_process_change(process)
                changes = UnitOfWork(held, ()).change_set(deal)
                opportunities.extend(changes.opportunities)
                events.extend(changes.events)
            changes = ChangeSet(
                processes=(process,),
                defined_at=now,
                opportunities=tuple(opportunities),
                events=tuple(events),
            )
            return changes, events

        self._commit("define_process", attempt)
        self._announcements.announce()

    def _defined(self) -> Mapping[str, Process]:
        """Every defined process by key: the built-in ones, replaced or joined by stored
        ones. Cached until the repository's ``processes_version`` moves, which another
        process' ``define_process`` does too."""
        version = self.repository.processes_version()
        cached = self._processes
        if cached is None or cached[0] != version:
            found = dict(_BUILT_IN)
            found.update({p.key: p for p in self.repository.processes()})
            cached = self._processes = (version, types.MappingProxyType(found))
        return cached[1]

    def _process_then(self, process: Process, moment: dt.datetime | None) -> Process:
        """``process`` as it was defined at ``moment`` (as it is, when None): the stored
        definition in effect then, else the built-in one it replaced, else as it is
        (defined later, so no opportunity was in it then)."""
        if moment is None:
            return process
        then = self.repository.process_as_of(process.key, moment)
        if then is not None:
            return then
        return _BUILT_IN.get(process.key, process)

    def process(self, key: str) -> Process:
        """The process with this key; ``NotFound`` if none is defined."""
        return self._named_process(key, "process(key=...)")

    def _named_process(
        self, key: object, argument: str, defined: Mapping[str, Process] | None = None
    ) -> Process:
        """The process ``key`` names, checked as ``argument`` (``pipeline(process=...)``);
        looked up in ``defined`` when given (a bulk import reads the definitions once
        per batch), else among the processes defined now. ``NotFound`` if none is."""
        return self._defined_process(checks.name(key, argument), defined)

    def _defined_process(self, key: str, defined: Mapping[str, Process] | None = None) -> Process:
        """The process of the valid name ``key``, as ``_named_process`` looks it up."""
        found = (defined if defined is not None else self._defined()).get(key)
        if found is None:
            raise NotFound(Message("Process {key!r} is not defined", key=key))
        return found

    def processes(self) -> tuple[Process, ...]:
        """Every defined process: the built-in ones, replaced or joined by stored ones."""
        return tuple(self._defined().values())

    # -- opportunities ---------------------------------------------------------

    def create_opportunity(
        self,
        *,
        title: str | None = None,
        process: str = "standard",
        stage: str | None = None,
        customer: Customer | None = None,
        value: Money | None = None,
        annual_value: Money | None = None,
        probability: int | None = None,
        expected_close: dt.date | None = None,
        owner: str | None = None,
        description: str = "",
        external_ref: str | None = None,
        related: Iterable[Related] = (),
        loss_reason: str | None = None,
        actor: str | None = None,
    ) -> Result:
        """Create an opportunity in ``stage`` (default: the process' first open stage)."""
        creation = self._creation(
            "create_opportunity",
            title=title,
            process=process,
            stage=stage,
            customer=customer,
            value=value,
            annual_value=annual_value,
            probability=probability,
            expected_close=expected_close,
            owner=owner,
            description=description,
            external_ref=external_ref,
            related=related,
            loss_reason=loss_reason,
        )
        if self.repository.get_opportunity(creation.opportunity_id) is not None:
            raise ValidationError(
                f"Opportunity {creation.opportunity_id!r}: the id is already taken"
            )
        return self._run("create_opportunity", actor, creation.carry_out, process=creation.process)

    def _creation(
        self,
        command: str,
        *,
        title: object = None,
        process: object = "standard",
        stage: object = None,
        customer: object = None,
        value: object = None,
        annual_value: object = None,
        probability: object = None,
        expected_close: object = None,
        owner: object = None,
        description: object = "",
        external_ref: object = None,
        related: object = (),
        loss_reason: object = None,
        defined: Mapping[str, Process] | None = None,
    ) -> _Creation:
        """``create_opportunity``'s arguments checked, with the new opportunity's id
        (``defined``: the processes to look ``process`` up in, as ``_named_process``)."""
        definition = self._named_process(process, f"{command}(process=...)", defined)
        start = (
            definition.stage(checks.name(stage, f"{command}(stage=...)"))
            if stage is not None
            else definition.first_stage
        )
        reason = _loss_reason(loss_reason, f"{command}(loss_reason=...)")
        opportunity_id = self._new_id()
        fields = clean_fields(
            {
                "title": title,
                "description": description,
                "customer": customer,
                "value": value if value is not None else Money(0, definition.currency),
                "annual_value": annual_value,
                "expected_close": expected_close,
                "owner": owner,
                "external_ref": external_ref,
                "related": related,
                "probability_override": probability,
            },
            opportunity_id,
        )
        return _Creation(definition, start, opportunity_id, fields, reason)

    def create_opportunities(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        actor: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> BulkResult:
        """Bulk import: each item holds ``create_opportunity``'s keyword arguments.

        Each batch of ``batch_size`` items commits in one transaction. A refused item is
        in ``.failed`` under its position in ``items`` (0-based) and the others still go
        in; ``.succeeded`` holds the new ids in the order of the items (``.results`` is
        left empty, to keep a large import light). ``progress(done)`` is called after
        each batch with the number of items handled so far. The policy is asked for each
        item, as ``create_opportunities``. Should iterating ``items`` or ``progress``
        fail, the import stops with a ``ValidationError`` that says how many items were
        stored: the batches before stay in.
        """
        command = "create_opportunities"
        size = checks.integer(batch_size, f"{command}(batch_size=...)", 1, 100_000)
        who = checks.optional_person(actor, f"{command}(actor=...)")
        if progress is not None and not callable(progress):
            raise ValidationError(f"{command}(progress=...): expected a function, got {progress!r}")
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise ValidationError(
                f"{command}(items=...): expected an iterable of mappings of "
                f"create_opportunity's arguments, got {items!r}"
            )
        succeeded: list[str] = []
        failed: dict[int, SalesflowError] = {}
        done = 0
        numbered = enumerate(items)

        def so_far() -> str:
            # The caller's iterator or progress function failing ends the import: the
            # batches before stay stored, and the error says how many went in.
            return f" after {done} items, {len(succeeded)} of them stored"

        while batch := _call(
            lambda: list(itertools.islice(numbered, size)), f"{command}(items=...)", after=so_far()
        ):
            created, refused = self._import_batch(batch, who)
            succeeded.extend(created)
            failed.update(refused)
            done += len(batch)
            if progress is not None:
                _call(functools.partial(progress, done), f"{command}(progress=...)", after=so_far())
        return BulkResult(succeeded=tuple(succeeded), failed=failed)

    def _import_batch(
        self, batch: Sequence[tuple[int, object]], actor: str | None
    ) -> tuple[list[str], dict[int, SalesflowError]]:
        """Create one batch's opportunities in one commit: the new ids, and the errors
        of the refused items by position.

        When the batch's commit is refused (an id already taken), its items are
        committed one by one, so that only the offending ones fail."""
        command = "create_opportunities"
        made: list[tuple[int, str, ChangeSet]] = []
        failed: dict[int, SalesflowError] = {}
        now = self._now()
        defined = self._defined()
        opportunities: list[Opportunity] = []
        activities: list[Activity] = []
        events: list[Event] = []
        for position, item in batch:
            try:
                if not isinstance(item, Mapping):
                    raise ValidationError(
                        f"{command}: item {position} is not a mapping of "
                        f"create_opportunity's arguments: {item!r}"
                    )
                if not _CREATION_ARGUMENTS.issuperset(item):
                    unknown = sorted(str(k) for k in set(item) - _CREATION_ARGUMENTS)
                    raise ValidationError(
                        f"{command}: item {position} has arguments create_opportunity does "
                        f"not take: {unknown}"
                    )
                creation = self._creation(command, **item, defined=defined)
                self._allow(actor, command, None)
                deal = Deal(
                    process=creation.process,
                    opportunity=None,
                    activities=(),
                    now=now,
                    timezone=self.timezone,
                    actor=actor,
                    new_id=self._new_id,
                )
                creation.carry_out(deal)
                change = UnitOfWork(None, ()).change_set(deal)
            except SalesflowError as error:
                failed[position] = _kept(error)
                continue
            made.append((position, creation.opportunity_id, change))
            opportunities.extend(change.opportunities)
            activities.extend(change.activities)
            events.extend(change.events)

        def write(changes: ChangeSet) -> None:
            self._commit(command, lambda: (changes, None))

        try:
            write(
                ChangeSet(
                    opportunities=tuple(opportunities),
                    activities=tuple(activities),
                    events=tuple(events),
                )
            )
            committed = made
        except ValidationError:
            committed = []
            for position, opportunity_id, change in made:
                try:
                    write(change)
                except SalesflowError as error:
                    failed[position] = _kept(error)
                else:
                    committed.append((position, opportunity_id, change))
        self._announcements.announce()
        return [opportunity_id for _, opportunity_id, _ in committed], failed

    def get(self, opportunity_id: str) -> Opportunity:
        """The opportunity with this id; ``NotFound`` if there is none."""
        return self._stored_opportunity(checks.name(opportunity_id, "opportunity id"))

    def _stored_opportunity(self, opportunity_id: str) -> Opportunity:
        """The opportunity of the valid id ``opportunity_id``; ``NotFound`` if none."""
        found = self.repository.get_opportunity(opportunity_id)
        if found is None:
            raise NotFound(Message("Opportunity {id!r} does not exist", id=opportunity_id))
        return found

    def update(self, opportunity_id: str, *, actor: str | None = None, **fields: Any) -> Result:
        """Change any of the editable fields (see ``EDITABLE_FIELDS``)."""
        deal_id = checks.name(opportunity_id, "update(opportunity_id)")
        record = f"Opportunity {deal_id!r}"
        unknown = sorted(set(fields) - EDITABLE_FIELDS)
        if unknown:
            raise ValidationError(
                f"{record}: {unknown} cannot be changed with update(); "
                f"editable fields are {sorted(EDITABLE_FIELDS)}"
            )
        clean = clean_fields(fields, deal_id)
        return self._run(
            "update", actor, lambda deal: deal.update(clean), opportunity_id=opportunity_id
        )

    def set_probability(
        self, opportunity_id: str, probability: int | None, *, actor: str | None = None
    ) -> Result:
        """Override the stage's probability, or with None follow the stage again."""
        value = checks.optional(checks.probability)(probability, "set_probability(probability)")
        return self._run(
            "set_probability",
            actor,
            lambda deal: deal.set_probability(value),
            opportunity_id=_id(opportunity_id, "set_probability"),
        )

    # -- stages ----------------------------------------------------------------

    def preview_stage_change(
        self,
        opportunity_id: str,
        stage: str,
        *,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
    ) -> StageChangePlan:
        """What ``change_stage`` with the same arguments would do; changes nothing.

        It is the very plan the change carries out, and raises what the change would
        raise, except ``ConfirmationRequired``: a plan that needs the caller's answer
        has ``needs_answer`` set instead.
        """
        target, answer, reason = _stage_arguments(
            "preview_stage_change", stage, cancel_pending, loss_reason
        )
        deal, _ = self._deal(opportunity_id=_id(opportunity_id, "preview_stage_change"))
        return deal.plan(target, cancel_pending=answer, loss_reason=reason)

    def change_stage(
        self,
        opportunity_id: str,
        stage: str,
        *,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
        actor: str | None = None,
    ) -> Result:
        """Move the opportunity to ``stage`` with every effect of a stage change."""
        return self._change_stage(
            "change_stage",
            opportunity_id,
            stage=stage,
            cancel_pending=cancel_pending,
            loss_reason=loss_reason,
            actor=actor,
        )

    def _change_stage(
        self,
        command: str,
        opportunity_id: object,
        *,
        stage: object,
        cancel_pending: object,
        loss_reason: object,
        actor: object,
    ) -> Result:
        target, answer, reason = _stage_arguments(command, stage, cancel_pending, loss_reason)
        return self._run(
            command,
            actor,
            lambda deal: deal.change_stage(target, cancel_pending=answer, loss_reason=reason),
            opportunity_id=_id(opportunity_id, command),
        )

    def bulk_change_stage(
        self,
        ids: Iterable[str] | str,
        stage: str,
        *,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
        actor: str | None = None,
    ) -> BulkResult:
        """``change_stage`` on each opportunity on its own; reports each outcome. The
        policy is asked for each one, as ``bulk_change_stage``."""
        command = "bulk_change_stage"
        _stage_arguments(command, stage, cancel_pending, loss_reason)
        checks.optional_person(actor, f"{command}(actor=...)")
        return self._bulk(
            checks.strings(ids, f"{command}(ids=...)"),
            lambda i: self._change_stage(
                command,
                i,
                stage=stage,
                cancel_pending=cancel_pending,
                loss_reason=loss_reason,
                actor=actor,
            ),
        )

    @staticmethod
    def _bulk(ids: Iterable[str], command: Callable[[str], Result]) -> BulkResult:
        succeeded: list[str] = []
        failed: dict[str, SalesflowError] = {}
        results: dict[str, Result] = {}
        for opportunity_id in dict.fromkeys(ids):
            try:
                results[opportunity_id] = command(opportunity_id)
            except SalesflowError as error:
                failed[opportunity_id] = _kept(error)
            else:
                succeeded.append(opportunity_id)
        return BulkResult(succeeded=tuple(succeeded), failed=failed, results=results)

    def mark_won(
        self, opportunity_id: str, *, cancel_pending: bool | None = None, actor: str | None = None
    ) -> Result:
        """Move to the process' WON stage."""
        answer = _answer(cancel_pending, "mark_won")
        return self._run(
            "mark_won",
            actor,
            lambda deal: deal.change_stage(
                deal.proc.won_stage.key, cancel_pending=answer, loss_reason=None
            ),
            opportunity_id=_id(opportunity_id, "mark_won"),
        )

    def mark_lost(
        self,
        opportunity_id: str,
        *,
        reason: str | None = None,
        cancel_pending: bool | None = None,
        actor: str | None = None,
    ) -> Result:
        """Move to the process' (first) LOST stage, with a loss reason."""
        answer = _answer(cancel_pending, "mark_lost")
        why = _loss_reason(reason, "mark_lost(reason=...)")
        return self._run(
            "mark_lost",
            actor,
            lambda deal: deal.change_stage(
                deal.proc.lost_stage.key, cancel_pending=answer, loss_reason=why
            ),
            opportunity_id=_id(opportunity_id, "mark_lost"),
        )

    def pause(self, opportunity_id: str, *, actor: str | None = None) -> Result:
        """Put an open opportunity on hold (seed 004): no stage changes until resumed."""
        return self._run("pause", actor, Deal.pause, opportunity_id=_id(opportunity_id, "pause"))

    def resume(self, opportunity_id: str, *, actor: str | None = None) -> Result:
        """Take a paused opportunity off hold."""
        return self._run("resume", actor, Deal.resume, opportunity_id=_id(opportunity_id, "resume"))

    # -- assignment, notes, tickets, billables (seed 002) ----------------------

    def assign(self, opportunity_id: str, user: str, *, actor: str | None = None) -> Result:
        """Make ``user`` the owner; assigning the current owner changes nothing."""
        return self._assign("assign", opportunity_id, user, actor)

    def _assign(self, command: str, opportunity_id: object, user: object, actor: object) -> Result:
        who = checks.person(user, f"{command}(user=...)")
        return self._run(
            command,
            actor,
            lambda deal: deal.assign(who),
            opportunity_id=_id(opportunity_id, command),
        )

    def unassign(self, opportunity_id: str, *, actor: str | None = None) -> Result:
        """Leave the opportunity without an owner, for someone to claim."""
        return self._run(
            "unassign", actor, Deal.unassign, opportunity_id=_id(opportunity_id, "unassign")
        )

    def claim(self, opportunity_id: str, *, actor: str) -> Result:
        """The actor takes an unowned opportunity; ``AlreadyAssigned`` when someone else
        owns it. Claiming one's own changes nothing."""
        checks.person(actor, "claim(actor=...)")
        return self._run("claim", actor, Deal.claim, opportunity_id=_id(opportunity_id, "claim"))

    def bulk_assign(
        self, ids: Iterable[str] | str, user: str, *, actor: str | None = None
    ) -> BulkResult:
        """``assign`` on each opportunity on its own; reports each outcome. The policy is
        asked for each one, as ``bulk_assign``."""
        command = "bulk_assign"
        checks.person(user, f"{command}(user=...)")
        checks.optional_person(actor, f"{command}(actor=...)")
        return self._bulk(
            checks.strings(ids, f"{command}(ids=...)"),
            lambda i: self._assign(command, i, user, actor),
        )

    def add_note(self, opportunity_id: str, text: str, *, actor: str | None = None) -> Result:
        """Add a comment; its author is the actor, its time now."""
        body = checks.text(text, "add_note(text=...)", blank=False)
        return self._run(
            "add_note",
            actor,
            lambda deal: deal.add_note(body),
            opportunity_id=_id(opportunity_id, "add_note"),
        )

    def link_ticket(
        self, opportunity_id: str, ticket_id: str, title: str, *, actor: str | None = None
    ) -> Result:
        """Link a support ticket of the host app (seed 002); linking one already linked
        changes nothing."""
        ticket = TicketRef(
            id=checks.name(ticket_id, "link_ticket(ticket_id=...)"),
            title=checks.name(title, "link_ticket(title=...)"),
        )
        return self._run(
            "link_ticket",
            actor,
            lambda deal: deal.link_ticket(ticket),
            opportunity_id=_id(opportunity_id, "link_ticket"),
        )

    def add_line_item(
        self, opportunity_id: str, item: LineItem, *, actor: str | None = None
    ) -> Result:
        """Add a billable line in the opportunity's currency (``CurrencyMismatch``
        otherwise); one without an id gets a new one."""
        if not isinstance(item, LineItem):
            raise ValidationError(f"add_line_item(item=...): expected a LineItem, got {item!r}")
        return self._run(
            "add_line_item",
            actor,
            lambda deal: deal.add_line_item(item),
            opportunity_id=_id(opportunity_id, "add_line_item"),
        )

    def remove_line_item(
        self, opportunity_id: str, line_id: str, *, actor: str | None = None
    ) -> Result:
        """Remove a line item; ``NotFound`` if the opportunity has none with that id."""
        key = checks.name(line_id, "remove_line_item(line_id=...)")
        return self._run(
            "remove_line_item",
            actor,
            lambda deal: deal.remove_line_item(key),
            opportunity_id=_id(opportunity_id, "remove_line_item"),
        )

    def invoice(
        self,
        opportunity_id: str,
        *,
        number: str,
        issued: dt.date | None = None,
        due_in: dt.timedelta = dt.timedelta(days=14),
        actor: str | None = None,
    ) -> InvoiceDraft:
        """Draw an invoice from the opportunity's line items, numbered by the caller,
        issued ``issued`` (default: today in the app's time zone) and due ``due_in``
        (whole days) later; recorded in history as ``INVOICED``."""
        command = "invoice"
        key = checks.name(number, f"{command}(number=...)")
        day = checks.optional(checks.day)(issued, f"{command}(issued=...)")
        if (
            not isinstance(due_in, dt.timedelta)
            or due_in < dt.timedelta(0)
            or due_in != dt.timedelta(days=due_in.days)
        ):
            raise ValidationError(
                f"{command}(due_in=...): expected a timedelta of whole days, zero or more, "
                f"got {due_in!r}"
            )
        result = self._run(
            command,
            actor,
            lambda deal: deal.invoice(key, issued=day, due_in=due_in),
            opportunity_id=_id(opportunity_id, command),
        )
        draft: InvoiceDraft = result.events[-1].details["invoice"]
        return draft

    def deal_counts(
        self, *, customer_id: str | None = None, related_id: str | None = None
    ) -> DealCounts:
        """How many opportunities a customer (``customer_id``) or a related record such
        as a contact or candidate (``related_id``) has, by status: the figures of a
        customer card (seeds 000, 002). Give exactly one of the two."""
        if (customer_id is None) == (related_id is None):
            raise ValidationError("deal_counts: give exactly one of customer_id and related_id")

        def count(status: Status) -> int:
            return self.search(
                customer_id=customer_id, related_id=related_id, statuses=status, limit=0
            ).total

        return DealCounts(
            open=count(Status.OPEN),
            paused=count(Status.PAUSED),
            won=count(Status.WON),
            lost=count(Status.LOST),
        )

    def contributors(self, opportunity_id: str) -> tuple[str, ...]:
        """Who worked on the opportunity, from its history: everyone who ran a command
        on it and everyone it was assigned to or had in its team, in order of first
        appearance."""
        return worked_on(self.history(opportunity_id))

    # -- stage actions ---------------------------------------------------------

    def actions(
        self, opportunity_id: str, stage: str | None = None
    ) -> tuple[OpportunityAction, ...]:
        """The opportunity's own actions of ``stage`` (default: its current stage)."""
        opportunity = self.get(opportunity_id)
        key = opportunity.stage if stage is None else checks.name(stage, "actions(stage=...)")
        return opportunity.actions_of(self.process(opportunity.process).stage(key).key)

    def add_action(
        self, opportunity_id: str, stage: str, action: StageAction, *, actor: str | None = None
    ) -> Result:
        """Give this one opportunity another action in ``stage``."""
        if not isinstance(action, StageAction):
            raise ValidationError(f"add_action: expected a StageAction, got {action!r}")
        key = checks.name(stage, "add_action(stage=...)")
        return self._run(
            "add_action",
            actor,
            lambda deal: deal.add_action(key, action),
            opportunity_id=_id(opportunity_id, "add_action"),
        )

    def remove_action(
        self, opportunity_id: str, action_id: str, *, actor: str | None = None
    ) -> Result:
        """Remove an action from this one opportunity (its activity, if any, stays)."""
        key = checks.name(action_id, "remove_action(action_id=...)")
        return self._run(
            "remove_action",
            actor,
            lambda deal: deal.remove_action(key),
            opportunity_id=_id(opportunity_id, "remove_action"),
        )

    def perform_action(
        self,
        opportunity_id: str,
        action_id: str,
        *,
        due: dt.datetime | None = None,
        actor: str | None = None,
    ) -> Result:
        """Perform an action (seed 003): a CALENDAR action creates its activity; a LETTER
        is sent, an EVENT invites the customer, a MANUAL step is done -- and completed.
        Letters and invitations go out after the command has committed."""
        key = checks.name(action_id, "perform_action(action_id=...)")
        when = checks.optional(checks.aware)(due, "perform_action(due=...)")
        return self._run(
            "perform_action",
            actor,
            lambda deal: deal.perform(key, when),
            opportunity_id=_id(opportunity_id, "perform_action"),
        )

    def complete_actions(
        self,
        opportunity_id: str,
        action_ids: Iterable[str] | str,
        *,
        outcome: str | None = None,
        actor: str | None = None,
    ) -> Result:
        """Mark actions completed, whether performed or not (seed 003)."""
        keys = checks.strings(action_ids, "complete_actions(action_ids=...)")
        result = _outcome(outcome, "complete_actions(outcome=...)")
        return self._run(
            "complete_actions",
            actor,
            lambda deal: deal.complete_actions(keys, result),
            opportunity_id=_id(opportunity_id, "complete_actions"),
        )

    # -- activities ------------------------------------------------------------

    def schedule_activity(
        self,
        *,
        title: str,
        due: dt.datetime,
        kind: ActivityKind = ActivityKind.CALL,
        opportunity_id: str | None = None,
        owner: str | None = None,
        track_outcome: bool = False,
        actor: str | None = None,
    ) -> Activity:
        """Plan an activity, on an opportunity or on its own. The owner defaults to the
        opportunity's owner."""
        command = "schedule_activity"
        name = checks.name(title, f"{command}(title=...)").strip()
        when = checks.aware(due, f"{command}(due=...)")
        what = checks.member(kind, ActivityKind, f"{command}(kind=...)")
        who = checks.optional_person(owner, f"{command}(owner=...)")
        tracked = checks.flag(track_outcome, f"{command}(track_outcome=...)")
        on = checks.optional_name(opportunity_id, f"{command}(opportunity_id=...)")

        def body(deal: Deal) -> None:
            deal.schedule(title=name, due=when, kind=what, owner=who, track_outcome=tracked)
            deal.notice(Message("Scheduled '{activity}'.", activity=name))

        return self._run(command, actor, body, opportunity_id=on).created[0]

    def complete_activity(
        self,
        activity_id: str,
        *,
        outcome: str | None = None,
        move_to: str | None = None,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
        actor: str | None = None,
    ) -> Result:
        """Mark a planned activity done; its action is completed with it. ``move_to``
        changes the linked opportunity's stage instead of any auto-advance (with
        ``loss_reason`` when that stage is a LOST one)."""
        command = "complete_activity"
        key = checks.name(activity_id, f"{command}(activity_id=...)")
        result = _outcome(outcome, f"{command}(outcome=...)")
        target = checks.optional_name(move_to, f"{command}(move_to=...)")
        answer = _answer(cancel_pending, command)
        reason = _loss_reason(loss_reason, f"{command}(loss_reason=...)")
        return self._run(
            command,
            actor,
            lambda deal: deal.complete_activity(
                key, result, move_to=target, cancel_pending=answer, loss_reason=reason
            ),
            activity_id=key,
        )

    def cancel_activity(self, activity_id: str, *, actor: str | None = None) -> Result:
        """Cancel a planned activity."""
        key = checks.name(activity_id, "cancel_activity(activity_id=...)")
        return self._run(
            "cancel_activity", actor, lambda deal: deal.cancel_activity(key), activity_id=key
        )

    def delete_activity(self, activity_id: str, *, actor: str | None = None) -> Result:
        """Delete an activity; its action can then be performed again (seed 003)."""
        key = checks.name(activity_id, "delete_activity(activity_id=...)")
        return self._run(
            "delete_activity", actor, lambda deal: deal.delete_activity(key), activity_id=key
        )

    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | str | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        """Activities matching every given filter, ordered by due time."""
        return self.repository.activities(
            opportunity_id=checks.optional_name(opportunity_id, "activities(opportunity_id=...)"),
            status=None
            if status is None
            else checks.member(status, ActivityStatus, "activities(status=...)"),
            owner=checks.optional_person(owner, "activities(owner=...)"),
            due_from=checks.optional(checks.aware)(due_from, "activities(due_from=...)"),
            due_to=checks.optional(checks.aware)(due_to, "activities(due_to=...)"),
        )

    def indicator(self, opportunity_id: str) -> ActivityIndicator:
        """Seed 000's activity box for the opportunity, by calendar day in ``timezone``."""
        self.get(opportunity_id)
        planned = self.repository.activities(
            opportunity_id=opportunity_id, status=ActivityStatus.PLANNED
        )
        return indicator(planned, today=self._today(), timezone=self.timezone)

    # -- queries and history ---------------------------------------------------

    def history(self, opportunity_id: str) -> tuple[Event, ...]:
        """Everything that happened to the opportunity, oldest first."""
        self.get(opportunity_id)
        return tuple(self.repository.history(opportunity_id))

    def search(
        self,
        *,
        text: str | None = None,
        process: str | None = None,
        stages: Iterable[str] | str | None = None,
        statuses: Iterable[Status | str] | Status | str | None = None,
        owner: str | None = None,
        customer_id: str | None = None,
        related_id: str | None = None,
        close_from: dt.date | None = None,
        close_to: dt.date | None = None,
        overdue: bool | None = None,
        order_by: str = "expected_close",
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Opportunities matching every given filter, ordered and paged. A lone stage
        key or status is one item; a status may be given by its value (``"open"``)."""
        where = "search"
        day = checks.optional(checks.day)
        key = checks.name(order_by, f"{where}(order_by=...)")
        if key.removeprefix("-") not in ORDERINGS:
            raise ValidationError(
                f"{where}(order_by=...): cannot order by {key!r}; use one of {ORDERINGS}, "
                "with a leading '-' for the reverse order"
            )
        query = SearchQuery(
            today=self._today(),
            text=checks.optional(checks.text)(text, f"{where}(text=...)"),
            process=None
            if process is None
            else self._named_process(process, f"{where}(process=...)").key,
            stages=None
            if stages is None
            else frozenset(checks.strings(stages, f"{where}(stages=...)")),
            statuses=None
            if statuses is None
            else frozenset(_members(statuses, Status, f"{where}(statuses=...)")),
            owner=checks.optional_person(owner, f"{where}(owner=...)"),
            customer_id=checks.optional_name(customer_id, f"{where}(customer_id=...)"),
            related_id=checks.optional_name(related_id, f"{where}(related_id=...)"),
            close_from=day(close_from, f"{where}(close_from=...)"),
            close_to=day(close_to, f"{where}(close_to=...)"),
            overdue=checks.optional(checks.flag)(overdue, f"{where}(overdue=...)"),
            order_by=key,
            limit=checks.integer(limit, f"{where}(limit=...)", 0, 10_000),
            offset=checks.integer(offset, f"{where}(offset=...)", 0, 2**62),
            stage_order=reporting.stage_order(self.processes()),
        )
        return self.repository.search(query)

    # -- reports ---------------------------------------------------------------

    def pipeline(
        self,
        process: str = "standard",
        *,
        currency: str | None = None,
        basis: Basis = "value",
        probability: ProbabilitySource = "opportunity",
        owner: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> Pipeline:
        """Seed 000's stage summaries: count, total and weighted value of each stage.

        ``probability="stage"`` weighs each deal by its stage's default probability
        rather than its own; ``basis="annual_value"`` weighs the annual contract value,
        or the value where none is set. Paused opportunities are counted in ``paused``
        and left out of every figure. ``as_of`` gives the pipeline as it stood at that
        moment (inclusive), rebuilt from history.
        """
        where = "pipeline"
        current = self._named_process(process, f"{where}(process=...)")
        target = checks.optional(checks.currency)(currency, f"{where}(currency=...)")
        if basis not in ("value", "annual_value"):
            raise ValidationError(
                f"{where}(basis=...): must be 'value' or 'annual_value', not {basis!r}"
            )
        if probability not in ("opportunity", "stage"):
            raise ValidationError(
                f"{where}(probability=...): must be 'opportunity' or 'stage', not {probability!r}"
            )
        who = checks.optional_person(owner, f"{where}(owner=...)")
        moment = checks.optional(checks.aware)(as_of, f"{where}(as_of=...)")
        definition = self._process_then(current, moment)
        totals = self.repository.pipeline_totals(definition.key, basis=basis, owner=who)
        if moment is not None:
            changed = self.repository.revision(definition.key, moment)
            totals = queries.revised_pipeline(
                totals,
                queries.pipeline_totals(changed.now, basis=basis, owner=who),
                queries.pipeline_totals(changed.then, basis=basis, owner=who),
            )
        with _exact_sums("pipeline"):
            return reporting.pipeline(
                definition,
                totals,
                currency=target,
                probability=probability,
                convert=self._converter(moment),
            )

    def forecast(
        self,
        *,
        start: dt.date,
        end: dt.date,
        currency: str,
        process: str | None = None,
        owner: str | None = None,
        group_by: str | None = None,
        as_of: dt.datetime | None = None,
        simulations: int = 0,
        seed: int | None = None,
    ) -> Forecast:
        """Open opportunities expected to close in [start, end]: ``expected`` (value x
        probability), ``best_case`` (the values), ``won`` (closed won in the period),
        in ``currency``; per owner, stage or month with ``group_by``. ``as_of``: as the
        forecast stood then. ``simulations`` > 0 adds P10/P50/P90 of the period's
        revenue from that many simulated outcomes (``seed`` makes them repeatable)."""
        where = "forecast"
        first = checks.day(start, f"{where}(start=...)")
        last = checks.day(end, f"{where}(end=...)")
        if last < first:
            raise ValidationError(f"{where}: end {last} is before start {first}")
        target = checks.currency(currency, f"{where}(currency=...)")
        if group_by is not None and group_by not in GROUPINGS:
            raise ValidationError(
                f"{where}(group_by=...): must be one of {GROUPINGS} or None, not {group_by!r}"
            )
        runs = checks.integer(simulations, f"{where}(simulations=...)", 0, MAX_SIMULATIONS)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValidationError(f"{where}(seed=...): expected an integer or None, got {seed!r}")
        query = ForecastQuery(
            start=first,
            end=last,
            process=None
            if process is None
            else self._named_process(process, f"{where}(process=...)").key,
            owner=checks.optional_person(owner, f"{where}(owner=...)"),
            group_by=group_by,
            deals=runs > 0,
        )
        moment = checks.optional(checks.aware)(as_of, f"{where}(as_of=...)")
        totals = self.repository.forecast_totals(query)
        if moment is not None:
            changed = self.repository.revision(query.process, moment)
            totals = queries.revised_forecast(
                totals,
                queries.forecast_totals(changed.now, query),
                queries.forecast_totals(changed.then, query),
            )
        with _exact_sums("forecast"):
            return reporting.forecast(
                totals,
                start=first,
                end=last,
                currency=target,
                group_by=group_by,
                convert=self._converter(moment),
                simulations=runs,
                seed=seed,
            )

    def analytics(
        self,
        process: str = "standard",
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        currency: str | None = None,
    ) -> Analytics:
        """What the deals of ``process`` closed in [start, end] tell: win rate, average
        won value, median sales cycle, stage conversion, days in stage, loss reasons
        and each stage's win rate (see ``docs/reports.md``)."""
        where = "analytics"
        definition = self._named_process(process, f"{where}(process=...)")
        day = checks.optional(checks.day)
        first = day(start, f"{where}(start=...)")
        last = day(end, f"{where}(end=...)")
        if first is not None and last is not None and last < first:
            raise ValidationError(f"{where}: end {last} is before start {first}")
        target = checks.optional(checks.currency)(currency, f"{where}(currency=...)")
        deals = self.repository.closed_deals(definition.key, start=first, end=last)
        with _exact_sums("analytics"):
            return reporting.analytics(
                definition,
                deals,
                start=first,
                end=last,
                currency=target,
                convert=self._converter(None),
                timezone=self.timezone,
            )

    def stuck(
        self, process: str = "standard", *, now: dt.datetime | None = None
    ) -> list[Opportunity]:
        """Open opportunities that have been in their stage longer than its
        ``rot_after``, longest first (paused ones are not counted)."""
        definition = self._named_process(process, "stuck(process=...)")
        moment = checks.optional(checks.aware)(now, "stuck(now=...)") or self._now()
        cutoffs: dict[str, dt.datetime] = {}
        for stage in definition.stages:
            if stage.rot_after is None or stage.kind is not StageKind.OPEN:
                continue
            try:
                cutoffs[stage.key] = moment - stage.rot_after
            except OverflowError:
                continue  # nothing entered a stage before the calendar began
        return self.repository.stuck(definition.key, cutoffs)

    def _converter(self, moment: dt.datetime | None) -> reporting.Convert:
        """Conversion at the rates of the report's date: the day of ``moment`` (or
        today) in the app's timezone. Each pair's rate is asked once."""
        rates = self.rates
        if rates is None:
            return reporting.converter(None)
        on = self._today() if moment is None else moment.astimezone(self.timezone).date()
        known: dict[tuple[str, str], Decimal] = {}

        def rate(base: str, quote: str) -> Decimal:
            pair = (base, quote)
            if pair not in known:
                try:
                    found = rates.rate(base, quote, on)
                except SalesflowError:
                    raise
                except Exception as error:
                    raise MissingExchangeRate(
                        Message(
                            "No exchange rate from {base} to {quote} on {on}: the rates port "
                            "failed: {error}",
                            base=base,
                            quote=quote,
                            on=on,
                            error=f"{type(error).__name__}: {error}",
                        )
                    ) from error
                if not isinstance(found, Decimal) or not found.is_finite() or found <= 0:
                    raise ValidationError(
                        f"The rate from {base} to {quote} on {on} must be a positive "
                        f"Decimal, got {found!r}"
                    )
                known[pair] = found
            return known[pair]

        return reporting.converter(rate)


def _kept(error: SalesflowError) -> SalesflowError:
    """``error`` as a bulk result keeps it: without the tracebacks of it and of the
    errors it was raised from, whose frames would keep every item of its batch alive
    for as long as the result lives. Its message names the record and the rule."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return error


def _stored(events: tuple[Event, ...], changes: ChangeSet) -> tuple[Event, ...]:
    """The events ``commit`` returned: ``changes``' events with their positions. (A
    repository written before commit returned them -- a test double returning None --
    leaves the events as the command made them.)"""
    return events or changes.events


@contextlib.contextmanager
def _exact_sums(report: str) -> Iterator[None]:
    """A report whose converted sums outgrow exact decimal arithmetic (a rate of 1e30,
    say) is a ``ValidationError`` naming the report, not a ``decimal`` error."""
    try:
        yield
    except decimal.DecimalException as error:
        raise ValidationError(
            f"{report}: the amounts, converted at the rates given, are too large to sum "
            f"exactly ({type(error).__name__}); check the exchange rates"
        ) from error


def _refused(actor: str | None, command: str, opportunity: Opportunity | None) -> dict[str, Any]:
    """Who may not run which command on what: the parameters of a policy's refusal."""
    target = (
        Message(
            "opportunity '{title}' ({id!r})", title=opportunity.display_title, id=opportunity.id
        )
        if opportunity is not None
        else Message("this workspace")
    )
    return {"who": actor or Message("An anonymous actor"), "command": command, "target": target}


_CLEAR_UUID4 = ~((0xF000 << 64) | (0xC000 << 48))  # the version and variant bits
_SET_UUID4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, the RFC 4122 variant


def _uuid4_hex() -> str:
    """A random (version 4) UUID's 32 hexadecimal digits: ``uuid.uuid4().hex``, made
    without building a ``UUID`` object."""
    return "%032x" % (int.from_bytes(os.urandom(16), "big") & _CLEAR_UUID4 | _SET_UUID4)


def _call(port: Callable[[], T], name: str, *, after: str = "") -> T:
    """Call a zero-argument port of the host app; its failure is a salesflow error that
    names it, and what it failed ``after`` (the original is chained)."""
    try:
        return port()
    except SalesflowError:
        raise
    except Exception as error:
        raise ValidationError(f"{name} failed{after}: {type(error).__name__}: {error}") from error


def _id(value: object, command: str) -> str:
    return checks.name(value, f"{command}(opportunity_id=...)")


def _answer(value: object, command: str) -> bool | None:
    return checks.optional(checks.flag)(value, f"{command}(cancel_pending=...)")


def _loss_reason(value: object, where: str) -> str | None:
    """A loss reason: None, or text without the blanks around it (a blank one counts as
    none)."""
    if value is None:
        return None
    reason = checks.text(value, where, limit=checks.NAME_MAX).strip()
    return reason or None


def _members(value: object, kind: type[E], where: str) -> tuple[E, ...]:
    """Enum members given as a collection of members or values; a lone one is one."""
    if isinstance(value, str | kind) or not isinstance(value, Iterable):
        return (checks.member(value, kind, where),)
    return tuple(checks.member(item, kind, where) for item in value)


def _outcome(value: object, where: str) -> str | None:
    return checks.optional(checks.text)(value, where)


def _stage_arguments(
    command: str, stage: object, cancel_pending: object, loss_reason: object
) -> tuple[str, bool | None, str | None]:
    return (
        checks.name(stage, f"{command}(stage=...)"),
        _answer(cancel_pending, command),
        _loss_reason(loss_reason, f"{command}(loss_reason=...)"),
    )
