"""``SalesFlow``: the application every caller talks to.

Each command loads what it needs from the repository, lets the engine change copies
of it (:class:`~salesflow.engine.Work`), commits the changes in one step, and then
tells the subscribers what happened. A command that raises commits nothing; a commit
that meets a version conflict re-runs the whole command with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from moneyed import Money

from salesflow import processes as builtin
from salesflow import reporting
from salesflow.domain.activity import Activity
from salesflow.domain.events import Event, EventKind
from salesflow.domain.opportunity import (
    EDITABLE_FIELDS,
    Opportunity,
    OpportunityAction,
    check_identity,
    check_probability,
    clean_fields,
)
from salesflow.domain.process import Process, StageAction
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    Customer,
    Indicator,
    Related,
    Status,
    require_aware,
)
from salesflow.engine import StageChangePlan, Work, check_gate, plan_stage_change
from salesflow.errors import (
    ConcurrencyError,
    CurrencyMismatch,
    NotFound,
    PermissionDenied,
    SalesflowError,
    TransitionNotAllowed,
    ValidationError,
)
from salesflow.memory import InMemoryRepository
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
from salesflow.reporting import Basis, Page, Pipeline, ProbabilitySource, Search

__all__ = ["ActivityIndicator", "BulkResult", "Result", "SalesFlow"]

log = logging.getLogger("salesflow")
T = TypeVar("T")


@attrs.frozen
class Result:
    """What a command did: the opportunity after it, the events, and what to show.

    ``notices`` are short sentences a front end can show as the confirmation of the
    command ("Moved to Proposal."); ``created`` and ``cancelled`` are the activities the
    command created and cancelled.
    """

    _opportunity: Opportunity | None = attrs.field(alias="opportunity")
    events: tuple[Event, ...] = ()
    notices: tuple[str, ...] = ()
    created: tuple[Activity, ...] = ()
    cancelled: tuple[Activity, ...] = ()

    @property
    def opportunity(self) -> Opportunity:
        """The opportunity as the command left it.

        Raises ``NotFound`` for a command on an activity that belongs to no opportunity.
        """
        if self._opportunity is None:
            raise NotFound("This command concerned an activity that has no opportunity")
        return self._opportunity


@attrs.frozen
class BulkResult:
    """Each item of a bulk command on its own: the ids that succeeded, the errors."""

    succeeded: tuple[str, ...]
    failed: dict[str, SalesflowError]
    results: dict[str, Result] = attrs.field(factory=dict)


@attrs.frozen
class ActivityIndicator:
    """Seed 000's activity box: its state and the number of open and overdue activities."""

    state: Indicator
    open: int
    overdue: int


class SalesFlow:
    """The opportunities module: processes, opportunities, stages, actions, activities.

    All collaborators are ports with defaults: an in-memory repository, the system
    clock, UTC, no exchange rates, recording correspondence and invitations, and a
    policy that allows everything. ``retries`` bounds how often a command is re-run
    after a version conflict before ``ConcurrencyError`` reaches the caller.
    """

    def __init__(
        self,
        repository: Repository | None = None,
        *,
        clock: Clock | None = None,
        timezone: dt.tzinfo = dt.UTC,
        rates: ExchangeRates | None = None,
        correspondence: Correspondence | None = None,
        invitations: Invitations | None = None,
        policy: Policy | None = None,
        ids: Callable[[], str] | None = None,
        retries: int = 20,
        backoff: dt.timedelta = dt.timedelta(milliseconds=2),
    ) -> None:
        if retries < 0:
            raise ValidationError(f"SalesFlow.retries: must not be negative, got {retries}")
        self.repository = repository if repository is not None else InMemoryRepository()
        self.clock = clock if clock is not None else SystemClock()
        self.timezone = timezone
        self.rates = rates
        self.correspondence: Correspondence = (
            correspondence if correspondence is not None else RecordingCorrespondence()
        )
        self.invitations: Invitations = (
            invitations if invitations is not None else RecordingInvitations()
        )
        self.policy: Policy = policy if policy is not None else AllowAll()
        self._new_id = ids if ids is not None else (lambda: uuid.uuid4().hex)
        self._retries = retries
        self._backoff = backoff.total_seconds()
        self._subscribers: list[Callable[[Event], None]] = []

    # -- the command loop ------------------------------------------------------

    def _now(self) -> dt.datetime:
        return require_aware(self.clock.now(), "Clock.now()")

    def _load(
        self, command: str, actor: str | None, opportunity_id: str | None, activity_id: str | None
    ) -> Work:
        activity = None
        if activity_id is not None:
            activity = self.repository.get_activity(activity_id)
            if activity is None:
                raise NotFound(f"Activity {activity_id!r} does not exist")
            opportunity_id = activity.opportunity_id
        opportunity = process = None
        activities: list[Activity] = [activity] if activity is not None else []
        if opportunity_id is not None:
            opportunity = self.get(opportunity_id)
            process = self.process(opportunity.process)
            activities = self.repository.activities(opportunity_id=opportunity_id)
        if not self.policy.allows(actor, command, opportunity):
            target = f"opportunity {opportunity.id!r}" if opportunity else "this workspace"
            raise PermissionDenied(f"{actor or 'An anonymous actor'} may not {command} on {target}")
        return Work(
            now=self._now(),
            timezone=self.timezone,
            actor=actor,
            new_id=self._new_id,
            process=process,
            opportunity=opportunity,
            activities=activities,
        )

    def _run(
        self,
        command: str,
        actor: str | None,
        body: Callable[[Work], T],
        *,
        opportunity_id: str | None = None,
        activity_id: str | None = None,
    ) -> tuple[Work, T]:
        """Run ``body`` on freshly loaded records and commit what it changed.

        On a version conflict the command is run again on the records as they now are,
        with jittered exponential backoff, ``retries`` times at most.
        """
        attempt = 0
        while True:
            work = self._load(command, actor, opportunity_id, activity_id)
            value = body(work)
            changes = work.change_set()
            try:
                if changes:
                    self.repository.commit(changes)
            except ConcurrencyError as conflict:
                if attempt >= self._retries:
                    raise ConcurrencyError(
                        f"{command}: gave up after {attempt + 1} attempts: {conflict}"
                    ) from conflict
                delay = self._backoff * (2 ** min(attempt, 8))
                time.sleep(random.uniform(delay / 2, delay))
                attempt += 1
                continue
            self._publish(work.events)
            return work, value

    def _result(self, work: Work) -> Result:
        return Result(
            opportunity=work.opportunity,
            events=tuple(work.events),
            notices=tuple(work.notices),
            created=tuple(work.final(a) for a in work.created),
            cancelled=tuple(work.final(a) for a in work.cancelled),
        )

    def _command(
        self,
        command: str,
        actor: str | None,
        body: Callable[[Work], object],
        *,
        opportunity_id: str | None = None,
        activity_id: str | None = None,
    ) -> Result:
        work, _ = self._run(
            command, actor, body, opportunity_id=opportunity_id, activity_id=activity_id
        )
        return self._result(work)

    def _publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for handler in list(self._subscribers):
                try:
                    handler(event)
                except Exception:
                    log.exception("salesflow subscriber %r failed on %s", handler, event.kind)

    def subscribe(self, handler: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``handler`` with every event after its command commits; returns a function
        that unsubscribes it."""
        self._subscribers.append(handler)

        def unsubscribe() -> None:
            if handler in self._subscribers:
                self._subscribers.remove(handler)

        return unsubscribe

    # -- processes -------------------------------------------------------------

    def define_process(self, process: Process, *, actor: str | None = None) -> None:
        """Add a process, or replace the one with the same key."""
        if not isinstance(process, Process):
            raise ValidationError(f"define_process: expected a Process, got {process!r}")
        if not self.policy.allows(actor, "define_process", None):
            raise PermissionDenied(f"{actor or 'An anonymous actor'} may not define processes")
        self.repository.commit(ChangeSet(processes=(process,)))

    def process(self, key: str) -> Process:
        """The process with this key; ``NotFound`` if none is defined."""
        for stored in self.repository.processes():
            if stored.key == key:
                return stored
        for predefined in (builtin.STANDARD, builtin.SIMPLE):
            if predefined.key == key:
                return predefined
        raise NotFound(f"Process {key!r} is not defined")

    def processes(self) -> tuple[Process, ...]:
        """Every defined process: the built-in ones, replaced or joined by stored ones."""
        found = {p.key: p for p in (builtin.STANDARD, builtin.SIMPLE)}
        found.update({p.key: p for p in self.repository.processes()})
        return tuple(found.values())

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
        actor: str | None = None,
    ) -> Result:
        """Create an opportunity in ``stage`` (default: the process' first open stage)."""
        definition = self.process(process)
        start = definition.stage(stage) if stage is not None else definition.first_stage
        opportunity_id = self._new_id()
        record = f"Opportunity {opportunity_id!r}"
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
                "related": tuple(related),
                "probability_override": probability,
            },
            record,
        )

        def body(work: Work) -> None:
            work.process = definition
            actions = tuple(
                OpportunityAction(id=self._new_id(), stage=s.key, spec=spec)
                for s in definition.stages
                for spec in s.actions
            )
            closed = not start.is_open
            new = Opportunity(
                id=opportunity_id,
                process=definition.key,
                stage=start.key,
                stage_probability=start.probability,
                created_at=work.now,
                stage_entered_at=work.now,
                status=start.status,
                closed_on=work.today if closed else None,
                actions=actions,
                **fields,
            )
            if closed:
                new = attrs.evolve(new, probability_override=None)
            check_identity(new, require_customer=definition.require_customer)
            check_gate(new, start)
            work.change(new, EventKind.CREATED, stage=start.key)
            work.create_entry_activities()
            work.notice(f"Created {new.display_title!r} in {start.name}.")

        return self._command("create_opportunity", actor, body)

    def get(self, opportunity_id: str) -> Opportunity:
        """The opportunity with this id; ``NotFound`` if there is none."""
        found = self.repository.get_opportunity(opportunity_id)
        if found is None:
            raise NotFound(f"Opportunity {opportunity_id!r} does not exist")
        return found

    def update(self, opportunity_id: str, *, actor: str | None = None, **fields: Any) -> Result:
        """Change any of the editable fields (see ``EDITABLE_FIELDS``)."""
        unknown = sorted(set(fields) - EDITABLE_FIELDS)
        if unknown:
            raise ValidationError(
                f"Opportunity {opportunity_id!r}: {unknown} cannot be changed with update(); "
                f"editable fields are {sorted(EDITABLE_FIELDS)}"
            )
        clean = clean_fields(fields, f"Opportunity {opportunity_id!r}")

        def body(work: Work) -> None:
            new = attrs.evolve(work.opp, **clean)
            check_identity(new, require_customer=work.proc.require_customer)
            if new == work.opp:
                work.notice("Nothing changed.")
                return
            work.change(new, EventKind.UPDATED)
            work.notice("Saved.")

        return self._command("update", actor, body, opportunity_id=opportunity_id)

    def set_probability(
        self, opportunity_id: str, probability: int | None, *, actor: str | None = None
    ) -> Result:
        """Override the stage's probability, or with None follow the stage again."""
        value = check_probability(probability, f"Opportunity {opportunity_id!r}.probability")

        def body(work: Work) -> None:
            if work.opp.is_closed:
                raise TransitionNotAllowed(
                    f"Opportunity {opportunity_id!r} is {work.opp.status.value}: its probability "
                    "is fixed by its stage"
                )
            new = attrs.evolve(work.opp, probability_override=value)
            if new == work.opp:
                work.notice("Nothing changed.")
                return
            work.change(new, EventKind.PROBABILITY_SET)
            work.notice(f"Probability set to {new.probability}%.")

        return self._command("set_probability", actor, body, opportunity_id=opportunity_id)

    # -- stages ----------------------------------------------------------------

    def preview_stage_change(self, opportunity_id: str, stage: str) -> StageChangePlan:
        """What moving to ``stage`` would do; changes nothing."""
        opportunity = self.get(opportunity_id)
        return plan_stage_change(
            opportunity,
            self.process(opportunity.process),
            self.repository.activities(opportunity_id=opportunity_id),
            stage,
            now=self._now(),
            timezone=self.timezone,
        )

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

        def body(work: Work) -> None:
            work.change_stage(stage, cancel_pending=cancel_pending, loss_reason=loss_reason)

        return self._command("change_stage", actor, body, opportunity_id=opportunity_id)

    def bulk_change_stage(
        self,
        ids: Iterable[str],
        stage: str,
        *,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
        actor: str | None = None,
    ) -> BulkResult:
        """``change_stage`` on each opportunity on its own; reports each outcome."""
        return self._bulk(
            ids,
            lambda i: self.change_stage(
                i, stage, cancel_pending=cancel_pending, loss_reason=loss_reason, actor=actor
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
                failed[opportunity_id] = error
            else:
                succeeded.append(opportunity_id)
        return BulkResult(succeeded=tuple(succeeded), failed=failed, results=results)

    def mark_won(
        self, opportunity_id: str, *, cancel_pending: bool | None = None, actor: str | None = None
    ) -> Result:
        """Move to the process' WON stage."""

        def body(work: Work) -> None:
            work.change_stage(
                work.proc.won_stage.key, cancel_pending=cancel_pending, loss_reason=None
            )

        return self._command("mark_won", actor, body, opportunity_id=opportunity_id)

    def mark_lost(
        self,
        opportunity_id: str,
        *,
        reason: str | None = None,
        cancel_pending: bool | None = None,
        actor: str | None = None,
    ) -> Result:
        """Move to the process' (first) LOST stage, with a loss reason."""

        def body(work: Work) -> None:
            work.change_stage(
                work.proc.lost_stage.key, cancel_pending=cancel_pending, loss_reason=reason
            )

        return self._command("mark_lost", actor, body, opportunity_id=opportunity_id)

    def pause(self, opportunity_id: str, *, actor: str | None = None) -> Result:
        """Put an open opportunity on hold (seed 004): no stage changes until resumed."""

        def body(work: Work) -> None:
            if work.opp.status is not Status.OPEN:
                raise TransitionNotAllowed(
                    f"Opportunity {opportunity_id!r} is {work.opp.status.value}: "
                    "only an open opportunity can be paused"
                )
            work.change(attrs.evolve(work.opp, status=Status.PAUSED), EventKind.PAUSED)
            work.notice("Paused.")

        return self._command("pause", actor, body, opportunity_id=opportunity_id)

    def resume(self, opportunity_id: str, *, actor: str | None = None) -> Result:
        """Take a paused opportunity off hold."""

        def body(work: Work) -> None:
            if work.opp.status is not Status.PAUSED:
                raise TransitionNotAllowed(
                    f"Opportunity {opportunity_id!r} is {work.opp.status.value}: "
                    "only a paused opportunity can be resumed"
                )
            work.change(attrs.evolve(work.opp, status=Status.OPEN), EventKind.RESUMED)
            work.notice("Resumed.")

        return self._command("resume", actor, body, opportunity_id=opportunity_id)

    # -- stage actions ---------------------------------------------------------

    def actions(
        self, opportunity_id: str, stage: str | None = None
    ) -> tuple[OpportunityAction, ...]:
        """The opportunity's own actions of ``stage`` (default: its current stage)."""
        opportunity = self.get(opportunity_id)
        key = self.process(opportunity.process).stage(stage or opportunity.stage).key
        return opportunity.actions_of(key)

    def add_action(
        self, opportunity_id: str, stage: str, action: StageAction, *, actor: str | None = None
    ) -> Result:
        """Give this one opportunity another action in ``stage``."""
        if not isinstance(action, StageAction):
            raise ValidationError(f"add_action: expected a StageAction, got {action!r}")

        def body(work: Work) -> None:
            key = work.proc.stage(stage).key
            if any(a.key == action.key for a in work.opp.actions_of(key)):
                raise ValidationError(
                    f"Opportunity {opportunity_id!r}: stage {key!r} already has an action "
                    f"with key {action.key!r}"
                )
            added = OpportunityAction(id=work.new_id(), stage=key, spec=action)
            work.opportunity = attrs.evolve(work.opp, actions=(*work.opp.actions, added))
            work.record(EventKind.ACTION_ADDED, action_id=added.id, key=action.key, stage=key)
            work.notice(f"Added {action.title!r}.")

        return self._command("add_action", actor, body, opportunity_id=opportunity_id)

    def remove_action(
        self, opportunity_id: str, action_id: str, *, actor: str | None = None
    ) -> Result:
        """Remove an action from this one opportunity (its activity, if any, stays)."""

        def body(work: Work) -> None:
            action = work.action(action_id)
            remaining = tuple(a for a in work.opp.actions if a.id != action_id)
            work.opportunity = attrs.evolve(work.opp, actions=remaining)
            work.record(
                EventKind.ACTION_REMOVED, action_id=action_id, key=action.key, stage=action.stage
            )
            work.notice(f"Removed {action.title!r}.")

        return self._command("remove_action", actor, body, opportunity_id=opportunity_id)

    def perform_action(
        self,
        opportunity_id: str,
        action_id: str,
        *,
        due: dt.datetime | None = None,
        actor: str | None = None,
    ) -> Result:
        """Perform an action (seed 003): a CALENDAR action creates its activity; a LETTER
        is sent, an EVENT invites the customer, a MANUAL step is done -- and completed."""
        if due is not None:
            require_aware(due, f"Action {action_id!r}.due")

        def body(work: Work) -> None:
            action = work.prepare_perform(work.action(action_id), due)
            if action is None:
                return
            invited = None
            if action.kind is ActionKind.LETTER:
                self.correspondence.send(work.opp, action)
            elif action.kind is ActionKind.EVENT:
                invited = self.invitations.invite(action.spec.event or "", work.opp)
            work.perform(action, due, invited=invited)

        return self._command("perform_action", actor, body, opportunity_id=opportunity_id)

    def complete_actions(
        self,
        opportunity_id: str,
        action_ids: Iterable[str],
        *,
        outcome: str | None = None,
        actor: str | None = None,
    ) -> Result:
        """Mark actions completed, whether performed or not (seed 003)."""
        ids = [action_ids] if isinstance(action_ids, str) else list(action_ids)

        def body(work: Work) -> None:
            work.complete_actions(ids, outcome)

        return self._command("complete_actions", actor, body, opportunity_id=opportunity_id)

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
        if not isinstance(title, str) or not title.strip():
            raise ValidationError("Activity.title: must not be blank")
        require_aware(due, f"Activity {title!r}.due")
        if not isinstance(kind, ActivityKind):
            raise ValidationError(f"Activity {title!r}.kind: must be an ActivityKind")

        def body(work: Work) -> Activity:
            activity = work.schedule(
                title=title.strip(),
                due=due,
                kind=kind,
                owner=owner if owner is not None or work.opportunity is None else work.opp.owner,
                track_outcome=track_outcome,
            )
            work.notice(f"Scheduled {title.strip()!r}.")
            return activity

        work, activity = self._run("schedule_activity", actor, body, opportunity_id=opportunity_id)
        return work.final(activity)

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

        def body(work: Work) -> None:
            activity = work.activity(activity_id)
            if move_to is not None and work.opportunity is None:
                raise ValidationError(
                    f"Activity {activity_id!r} has no opportunity whose stage could change"
                )
            completed_action = work.complete_activity(activity, outcome)
            work.notice(f"Completed {activity.title!r}.")
            if move_to is not None:
                work.change_stage(move_to, cancel_pending=cancel_pending, loss_reason=loss_reason)
            elif completed_action:
                work.auto_advance()

        return self._command("complete_activity", actor, body, activity_id=activity_id)

    def cancel_activity(self, activity_id: str, *, actor: str | None = None) -> Result:
        """Cancel a planned activity."""

        def body(work: Work) -> None:
            activity = work.cancel(work.activity(activity_id))
            work.notice(f"Cancelled {activity.title!r}.")

        return self._command("cancel_activity", actor, body, activity_id=activity_id)

    def delete_activity(self, activity_id: str, *, actor: str | None = None) -> Result:
        """Delete an activity; its action can then be performed again (seed 003)."""

        def body(work: Work) -> None:
            activity = work.activity(activity_id)
            work.delete_activity(activity)
            work.record(
                EventKind.ACTIVITY_DELETED,
                activity.opportunity_id,
                activity_id=activity.id,
                title=activity.title,
            )
            work.notice(f"Deleted {activity.title!r}.")

        return self._command("delete_activity", actor, body, activity_id=activity_id)

    def activities(
        self,
        *,
        opportunity_id: str | None = None,
        status: ActivityStatus | None = None,
        owner: str | None = None,
        due_from: dt.datetime | None = None,
        due_to: dt.datetime | None = None,
    ) -> list[Activity]:
        """Activities matching every given filter, ordered by due time."""
        for name, bound in (("due_from", due_from), ("due_to", due_to)):
            if bound is not None:
                require_aware(bound, f"activities({name})")
        return self.repository.activities(
            opportunity_id=opportunity_id,
            status=status,
            owner=owner,
            due_from=due_from,
            due_to=due_to,
        )

    def indicator(self, opportunity_id: str) -> ActivityIndicator:
        """Seed 000's activity box for the opportunity, by calendar day in ``timezone``."""
        self.get(opportunity_id)
        planned = self.repository.activities(
            opportunity_id=opportunity_id, status=ActivityStatus.PLANNED
        )
        today = self._now().astimezone(self.timezone).date()
        days = [a.due.astimezone(self.timezone).date() for a in planned]
        overdue = sum(1 for d in days if d < today)
        if overdue:
            state = Indicator.OVERDUE
        elif today in days:
            state = Indicator.TODAY
        elif days:
            state = Indicator.UPCOMING
        else:
            state = Indicator.NONE
        return ActivityIndicator(state=state, open=len(planned), overdue=overdue)

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
        stages: Iterable[str] | None = None,
        statuses: Iterable[Status] | None = None,
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
        """Opportunities matching every given filter, ordered and paged."""
        query = Search(
            today=self._now().astimezone(self.timezone).date(),
            text=text,
            stages=stages,
            statuses=statuses,
            owner=owner,
            customer_id=customer_id,
            related_id=related_id,
            close_from=close_from,
            close_to=close_to,
            overdue=overdue,
        )
        return query.page(
            self.repository.opportunities(process=process),
            order_by=order_by,
            limit=limit,
            offset=offset,
        )

    # -- reports ---------------------------------------------------------------

    def pipeline(
        self,
        process: str = "standard",
        *,
        currency: str | None = None,
        basis: Basis = "value",
        probability: ProbabilitySource = "opportunity",
        owner: str | None = None,
    ) -> Pipeline:
        """Seed 000's stage summaries: count, total and weighted value of each stage.

        ``probability="stage"`` weighs each deal by its stage's default probability
        rather than its own; ``basis="annual_value"`` weighs the annual contract value,
        or the value where none is set. Paused opportunities are counted in ``paused``
        and left out of every figure.
        """
        definition = self.process(process)
        members = [
            o
            for o in self.repository.opportunities(process=definition.key)
            if owner is None or o.owner == owner
        ]
        today = self._now().astimezone(self.timezone).date()
        return reporting.pipeline(
            definition,
            members,
            currency=currency,
            basis=basis,
            probability=probability,
            convert=lambda amount, target: self._convert(amount, target, today),
        )

    def _convert(self, amount: Money, currency: str, on: dt.date) -> Decimal:
        code = amount.currency.code
        if code == currency:
            return Decimal(amount.amount)
        if self.rates is None:
            raise CurrencyMismatch(
                f"Converting {code} to {currency} needs exchange rates: pass rates= to SalesFlow"
            )
        return Decimal(amount.amount) * self.rates.rate(code, currency, on)
