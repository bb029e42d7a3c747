"""The stage-action engine: plans of stage changes and the work of one command.

A stage change is computed whole before anything changes: :func:`plan_stage_change`
is a pure function of the opportunity, its process, its activities, the target stage
and the time. :class:`Work` then applies plans and the other effects of one command to
copies of the records it loaded; the application commits the collected changes in one
step, or drops them all when the command raises.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from salesflow.domain.activity import Activity
from salesflow.domain.events import Event, EventKind
from salesflow.domain.opportunity import Opportunity, OpportunityAction, is_empty
from salesflow.domain.process import Process, Stage
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    StageKind,
    Status,
)
from salesflow.errors import (
    ConfirmationRequired,
    LossReasonRequired,
    NotFound,
    OutcomeRequired,
    TransitionNotAllowed,
    ValidationError,
)
from salesflow.ports import ChangeSet

__all__ = ["StageChangePlan", "Work", "check_gate", "plan_stage_change"]


@attrs.frozen
class StageChangePlan:
    """Everything a stage change would do, computed before anything changes.

    ``to_cancel`` lists the planned activities of the stage being left that the
    change would cancel (under ``CancelPolicy.ASK``: the ones it asks about);
    ``to_create`` the actions whose activity entering the stage creates;
    ``needs_answer`` is true when the caller must pass ``cancel_pending``;
    ``warnings`` are seed 000's checklist before a move; they never block.
    """

    opportunity_id: str
    from_stage: Stage
    to_stage: Stage
    policy: CancelPolicy
    to_cancel: tuple[Activity, ...]
    to_create: tuple[OpportunityAction, ...]
    warnings: tuple[str, ...]
    probability: int
    status: Status

    @property
    def needs_answer(self) -> bool:
        return self.policy is CancelPolicy.ASK and bool(self.to_cancel)

    @property
    def moves(self) -> bool:
        """False when the target is the stage the opportunity is already in."""
        return self.from_stage.key != self.to_stage.key

    @property
    def reopens(self) -> bool:
        return self.from_stage.kind is not StageKind.OPEN and self.to_stage.is_open


def _today(now: dt.datetime, tz: dt.tzinfo) -> dt.date:
    return now.astimezone(tz).date()


def _check_transition(opportunity: Opportunity, process: Process, target: Stage) -> None:
    """Raise ``TransitionNotAllowed`` when the process forbids moving to ``target``."""
    record = f"Opportunity {opportunity.id!r}"
    if opportunity.status is Status.PAUSED:
        raise TransitionNotAllowed(f"{record} is paused: resume it before changing its stage")
    current = process.stage(opportunity.stage)
    reopening = not current.is_open and target.is_open
    if reopening or target.kind is StageKind.LOST:
        pass  # reopening and losing are always allowed (seed 002: any stage -> lost)
    else:
        here, there = process.index(current.key), process.index(target.key)
        if there < here and not process.allow_backward:
            raise TransitionNotAllowed(
                f"{record}: process {process.key!r} does not allow moving backwards "
                f"from {current.name!r} to {target.name!r}"
            )
        skipped = [s.name for s in process.stages[here + 1 : there] if s.is_open]
        if skipped and not process.allow_skip:
            raise TransitionNotAllowed(
                f"{record}: process {process.key!r} does not allow skipping stages; "
                f"moving from {current.name!r} to {target.name!r} would skip {skipped}"
            )
    check_gate(opportunity, target)


def check_gate(opportunity: Opportunity, stage: Stage) -> None:
    """Raise ``TransitionNotAllowed`` naming each field ``stage.requires`` that is empty."""
    missing = [name for name in stage.requires if is_empty(getattr(opportunity, name))]
    if missing:
        raise TransitionNotAllowed(
            f"Opportunity {opportunity.id!r}: stage {stage.name!r} requires "
            f"{', '.join(missing)} to be set"
        )


def plan_stage_change(
    opportunity: Opportunity,
    process: Process,
    activities: Iterable[Activity],
    target: str,
    *,
    now: dt.datetime,
    timezone: dt.tzinfo,
) -> StageChangePlan:
    """Compute what moving ``opportunity`` to stage ``target`` would do.

    Raises ``UnknownStage`` or ``TransitionNotAllowed`` when the move is not allowed;
    loss reasons and the cancel answer are checked when the plan is applied.
    """
    stage = process.stage(target)
    current = process.stage(opportunity.stage)
    activities = [a for a in activities if a.opportunity_id == opportunity.id]
    if stage.key == current.key:
        return StageChangePlan(
            opportunity.id,
            current,
            stage,
            process.cancel_pending,
            (),
            (),
            (),
            opportunity.probability,
            opportunity.status,
        )
    _check_transition(opportunity, process, stage)
    by_id = {a.id: a for a in activities}
    leaving = tuple(a for a in activities if a.is_planned and a.stage == current.key)
    to_cancel = () if process.cancel_pending is CancelPolicy.KEEP else leaving
    if process.cancel_pending is CancelPolicy.CANCEL:
        # an activity cancelled on the way out no longer counts for its action
        cancelled = {a.id for a in to_cancel}
        by_id = {key: a for key, a in by_id.items() if key not in cancelled}
    to_create = _to_create(opportunity, stage.key, by_id)
    today = _today(now, timezone)
    warnings = [
        f"Required action {a.title!r} of {current.name} is not completed."
        for a in opportunity.actions_of(current.key)
        if a.required and not a.completed
    ]
    warnings += [
        f"Activity {a.title!r} is overdue (due {a.due.astimezone(timezone).date()})."
        for a in activities
        if a.is_planned and a.due.astimezone(timezone).date() < today
    ]
    if opportunity.expected_close is None and stage.is_open:
        warnings.append("No expected close date is set.")
    return StageChangePlan(
        opportunity_id=opportunity.id,
        from_stage=current,
        to_stage=stage,
        policy=process.cancel_pending,
        to_cancel=to_cancel,
        to_create=to_create,
        warnings=tuple(warnings),
        probability=stage.probability,
        status=stage.status,
    )


def _to_create(
    opportunity: Opportunity, stage: str, activities: dict[str, Activity]
) -> tuple[OpportunityAction, ...]:
    """The auto_create CALENDAR actions of ``stage`` that are not completed and have no
    planned or done activity among ``activities``."""
    return tuple(
        action
        for action in opportunity.actions_of(stage)
        if action.kind is ActionKind.CALENDAR
        and action.spec.auto_create
        and not action.completed
        and not _has_live_activity(action, activities)
    )


def _has_live_activity(action: OpportunityAction, activities: dict[str, Activity]) -> bool:
    linked = activities.get(action.activity_id) if action.activity_id else None
    return linked is not None and linked.status is not ActivityStatus.CANCELLED


def _activities(n: int) -> str:
    return "1 planned activity" if n == 1 else f"{n} planned activities"


class Work:
    """The changes of one command, made to copies of the records it read.

    Nothing here touches storage: the application loads the records, lets the command
    change them through a ``Work``, and commits :meth:`change_set` in one step. A
    command that raises leaves the ``Work`` to be dropped, so nothing changes.
    """

    def __init__(
        self,
        *,
        now: dt.datetime,
        timezone: dt.tzinfo,
        actor: str | None,
        new_id: Callable[[], str],
        process: Process | None = None,
        opportunity: Opportunity | None = None,
        activities: Sequence[Activity] = (),
    ) -> None:
        self.now = now
        self.timezone = timezone
        self.actor = actor
        self.new_id = new_id
        self.process = process
        self.opportunity = opportunity
        self._loaded_opportunity = opportunity
        self._activities: dict[str, Activity] = {a.id: a for a in activities}
        self._loaded_activities = dict(self._activities)
        self._deleted: dict[str, Activity] = {}
        self.events: list[Event] = []
        self.notices: list[str] = []
        self.created: list[Activity] = []
        self.cancelled: list[Activity] = []

    # -- reading ---------------------------------------------------------------

    @property
    def opp(self) -> Opportunity:
        if self.opportunity is None:  # pragma: no cover - a programming error
            raise RuntimeError("this command has no opportunity")
        return self.opportunity

    @property
    def proc(self) -> Process:
        if self.process is None:  # pragma: no cover - a programming error
            raise RuntimeError("this command has no process")
        return self.process

    @property
    def activities(self) -> list[Activity]:
        return list(self._activities.values())

    def activity(self, activity_id: str) -> Activity:
        try:
            return self._activities[activity_id]
        except KeyError:
            raise NotFound(f"Activity {activity_id!r} does not exist") from None

    def action(self, action_id: str) -> OpportunityAction:
        action = self.opp.action(action_id)
        if action is None:
            raise NotFound(f"Opportunity {self.opp.id!r} has no action {action_id!r}")
        return action

    @property
    def today(self) -> dt.date:
        return _today(self.now, self.timezone)

    # -- recording -------------------------------------------------------------

    def record(self, kind: EventKind, opportunity_id: str | None = None, **details: Any) -> Event:
        """Append an event of this command to the history."""
        if opportunity_id is None and self.opportunity is not None:
            opportunity_id = self.opportunity.id
        event = Event(
            id=self.new_id(),
            kind=kind,
            opportunity_id=opportunity_id,
            at=self.now,
            actor=self.actor,
            details=details,
        )
        self.events.append(event)
        return event

    def change(self, new: Opportunity, kind: EventKind, **details: Any) -> Opportunity:
        """Replace the opportunity with ``new``, recording ``kind`` and what changed."""
        changes = new.changes_from(self.opportunity)
        self.opportunity = new
        self.record(kind, new.id, **details, changes=changes)
        return new

    def put_activity(self, activity: Activity) -> Activity:
        self._activities[activity.id] = activity
        return activity

    def delete_activity(self, activity: Activity) -> None:
        del self._activities[activity.id]
        if activity.id in self._loaded_activities:
            self._deleted[activity.id] = self._loaded_activities[activity.id]
        self._unlink(activity)

    def _unlink(self, activity: Activity) -> None:
        """Free the action of a cancelled or deleted activity to be performed again."""
        if self.opportunity is None or activity.action_id is None:
            return
        action = self.opp.action(activity.action_id)
        if action is not None and action.activity_id == activity.id:
            self.opportunity = self.opp.with_action(attrs.evolve(action, activity_id=None))

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def change_set(self) -> ChangeSet:
        """What to commit: the records that changed, one version up from what was read."""
        opportunities: tuple[Opportunity, ...] = ()
        if self.opportunity is not None and (
            self.opportunity is not self._loaded_opportunity or self.events
        ):
            base = self._loaded_opportunity.version if self._loaded_opportunity else 0
            self.opportunity = attrs.evolve(self.opportunity, version=base + 1)
            opportunities = (self.opportunity,)
        activities = []
        for activity_id, activity in self._activities.items():
            loaded = self._loaded_activities.get(activity_id)
            if activity is not loaded:
                base = loaded.version if loaded else 0
                activities.append(attrs.evolve(activity, version=base + 1))
        self._activities.update({a.id: a for a in activities})
        return ChangeSet(
            opportunities=opportunities,
            activities=tuple(activities),
            deleted_activities=tuple(self._deleted.values()),
            events=tuple(self.events),
        )

    def final(self, activity: Activity) -> Activity:
        """The activity as committed (with its new version)."""
        return self._activities.get(activity.id, activity)

    # -- activities ------------------------------------------------------------

    def schedule(
        self,
        *,
        title: str,
        due: dt.datetime,
        kind: ActivityKind,
        owner: str | None,
        track_outcome: bool,
        action: OpportunityAction | None = None,
    ) -> Activity:
        """Create a planned activity (linked to the opportunity, and to ``action``)."""
        opportunity = self.opportunity
        activity = Activity(
            id=self.new_id(),
            title=title,
            due=due,
            kind=kind,
            opportunity_id=opportunity.id if opportunity else None,
            stage=opportunity.stage if opportunity else None,
            action_id=action.id if action else None,
            owner=owner,
            track_outcome=track_outcome,
            created_at=self.now,
        )
        self.put_activity(activity)
        self.created.append(activity)
        details: dict[str, Any] = {"activity_id": activity.id, "title": title, "due": due}
        if action is not None:
            details["action_id"] = action.id
            self.opportunity = self.opp.with_action(attrs.evolve(action, activity_id=activity.id))
        self.record(EventKind.ACTIVITY_SCHEDULED, **details)
        return activity

    def _schedule_for(self, action: OpportunityAction, due: dt.datetime | None) -> Activity:
        spec = action.spec
        when = due if due is not None else self.now.astimezone(self.timezone) + spec.due_after
        activity = self.schedule(
            title=spec.title,
            due=when,
            kind=spec.activity_kind,
            owner=self.opp.owner,
            track_outcome=spec.track_outcome,
            action=action,
        )
        day = when.astimezone(self.timezone).date().isoformat()
        self.notice(f"Scheduled {spec.title!r} for {day}.")
        return activity

    def cancel(self, activity: Activity) -> Activity:
        if not activity.is_planned:
            raise ValidationError(
                f"Activity {activity.id!r} is {activity.status.value}; "
                "only a planned activity can be cancelled"
            )
        cancelled = self.put_activity(
            attrs.evolve(activity, status=ActivityStatus.CANCELLED, cancelled_at=self.now)
        )
        self.cancelled.append(cancelled)
        self._unlink(activity)
        self.record(
            EventKind.ACTIVITY_CANCELLED,
            activity.opportunity_id,
            activity_id=activity.id,
            title=activity.title,
        )
        return cancelled

    def mark_done(self, activity: Activity, outcome: str | None) -> Activity:
        done = self.put_activity(
            attrs.evolve(activity, status=ActivityStatus.DONE, outcome=outcome, done_at=self.now)
        )
        details: dict[str, Any] = {"activity_id": activity.id, "title": activity.title}
        if outcome is not None:
            details["outcome"] = outcome
        self.record(EventKind.ACTIVITY_COMPLETED, activity.opportunity_id, **details)
        return done

    def complete_activity(self, activity: Activity, outcome: str | None) -> bool:
        """Mark a planned activity DONE and complete its action; True if an action was."""
        if not activity.is_planned:
            raise ValidationError(
                f"Activity {activity.id!r} is {activity.status.value}; "
                "only a planned activity can be completed"
            )
        if activity.track_outcome and outcome is None:
            raise OutcomeRequired(
                f"Activity {activity.id!r} tracks outcomes: completing it needs an outcome"
            )
        self.mark_done(activity, outcome)
        if self.opportunity is None or activity.action_id is None:
            return False
        action = self.opp.action(activity.action_id)
        if action is None or action.completed or action.activity_id != activity.id:
            return False
        self._set_completed(action)
        return True

    # -- actions ---------------------------------------------------------------

    def _set_completed(self, action: OpportunityAction) -> None:
        self.opportunity = self.opp.with_action(attrs.evolve(action, completed_at=self.now))
        self.record(
            EventKind.ACTION_COMPLETED, action_id=action.id, key=action.key, stage=action.stage
        )

    def complete_actions(self, action_ids: Sequence[str], outcome: str | None) -> None:
        """Mark actions completed (seed 003); their linked planned activities become DONE.

        Completing one action whose planned activity tracks outcomes needs ``outcome``;
        completing several at once records none.
        """
        actions = [self.action(i) for i in dict.fromkeys(action_ids)]
        if not actions:
            raise ValidationError(f"Opportunity {self.opp.id!r}: no actions to complete")
        single = len(actions) == 1
        completed_any = False
        for action in actions:
            action = self.action(action.id)  # noqa: PLW2901 - the latest copy
            if action.completed:
                self.notice(f"{action.title!r} is already completed.")
                continue
            linked = self._activities.get(action.activity_id) if action.activity_id else None
            if linked is not None and linked.is_planned:
                if single and linked.track_outcome and outcome is None:
                    raise OutcomeRequired(
                        f"Action {action.title!r} of opportunity {self.opp.id!r}: its activity "
                        f"{linked.id!r} tracks outcomes, so completing it needs an outcome"
                    )
                self.mark_done(linked, outcome if single else None)
            self._set_completed(action)
            self.notice(f"Completed {action.title!r}.")
            completed_any = True
        if completed_any:
            self.auto_advance()

    def prepare_perform(
        self, action: OpportunityAction, due: dt.datetime | None
    ) -> OpportunityAction | None:
        """Check that ``action`` can be performed; None (with a notice) if nothing to do."""
        if action.completed:
            self.notice(f"{action.title!r} is already completed.")
            return None
        if action.kind is ActionKind.CALENDAR:
            if _has_live_activity(action, self._activities):
                self.notice("An activity already exists for this action.")
                return None
        elif due is not None:
            raise ValidationError(
                f"Action {action.title!r}: only a CALENDAR action takes a due time"
            )
        return action

    def perform(
        self, action: OpportunityAction, due: dt.datetime | None, *, invited: bool | None = None
    ) -> None:
        """Perform ``action`` (already checked by :meth:`prepare_perform`).

        A CALENDAR action creates its activity and stays open; a LETTER, EVENT or MANUAL
        one is completed. ``invited`` is the Invitations port's answer for an EVENT.
        """
        self.record(
            EventKind.ACTION_PERFORMED, action_id=action.id, key=action.key, stage=action.stage
        )
        if action.kind is ActionKind.CALENDAR:
            self._schedule_for(action, due)
            return
        if action.kind is ActionKind.LETTER:
            self.notice(f"Sent {action.title!r}.")
        elif action.kind is ActionKind.EVENT:
            if invited is False:
                self.notice(f"The customer is already invited to {action.spec.event}.")
            else:
                self.notice(f"Invited the customer to {action.spec.event}.")
        self._set_completed(action)
        self.notice(f"Completed {action.title!r}.")
        self.auto_advance()

    # -- stages ----------------------------------------------------------------

    def plan(self, target: str) -> StageChangePlan:
        return plan_stage_change(
            self.opp, self.proc, self.activities, target, now=self.now, timezone=self.timezone
        )

    def change_stage(
        self,
        target: str,
        *,
        cancel_pending: bool | None,
        loss_reason: str | None,
        automatic: bool = False,
    ) -> None:
        """Plan the move to ``target`` and apply it, or raise and change nothing."""
        self.apply(
            self.plan(target),
            cancel_pending=cancel_pending,
            loss_reason=loss_reason,
            automatic=automatic,
        )

    def apply(
        self,
        plan: StageChangePlan,
        *,
        cancel_pending: bool | None,
        loss_reason: str | None,
        automatic: bool = False,
    ) -> None:
        opportunity, process = self.opp, self.proc
        record = f"Opportunity {opportunity.id!r}"
        target = plan.to_stage
        if not plan.moves:
            self.notice(f"Already in {target.name}.")
            return
        if target.kind is StageKind.LOST:
            if process.require_loss_reason and not (loss_reason and loss_reason.strip()):
                raise LossReasonRequired(
                    f"{record}: process {process.key!r} requires a loss reason to move to "
                    f"{target.name!r}"
                )
            if (
                loss_reason is not None
                and process.loss_reasons
                and (loss_reason not in process.loss_reasons)
            ):
                raise ValidationError(
                    f"{record}: loss reason {loss_reason!r} is not one of "
                    f"{list(process.loss_reasons)}"
                )
        elif loss_reason is not None:
            raise ValidationError(
                f"{record}: a loss reason applies only to a move to a LOST stage, "
                f"not to {target.name!r}"
            )

        # (1) the planned activities of the stage being left
        cancel: Sequence[Activity] = ()
        if plan.policy is CancelPolicy.CANCEL:
            cancel = plan.to_cancel
        elif plan.needs_answer:
            if automatic:
                self.notice(
                    f"Kept {_activities(len(plan.to_cancel))} of {plan.from_stage.name}; "
                    "cancel what is no longer needed."
                )
            elif cancel_pending is None:
                raise ConfirmationRequired(
                    f"{record}: moving to {target.name!r} would leave "
                    f"{_activities(len(plan.to_cancel))} of "
                    f"{plan.from_stage.name!r}; answer cancel_pending=True or False",
                    plan,
                )
            elif cancel_pending:
                cancel = plan.to_cancel
        for activity in cancel:
            self.cancel(self.activity(activity.id))
        if cancel:
            self.notice(f"Cancelled {_activities(len(cancel))} of {plan.from_stage.name}.")

        # (3) stage, probability, status, closing date; (4) the history entry
        closed = target.kind is not StageKind.OPEN
        moved = attrs.evolve(
            self.opp,
            stage=target.key,
            stage_probability=target.probability,
            probability_override=None,
            status=plan.status,
            stage_entered_at=self.now,
            closed_on=self.today if closed else None,
            loss_reason=loss_reason if target.kind is StageKind.LOST else None,
        )
        self.change(
            moved, EventKind.STAGE_CHANGED, **{"from": plan.from_stage.key, "to": target.key}
        )
        if plan.reopens:
            self.record(EventKind.REOPENED, **{"from": plan.from_stage.key, "to": target.key})

        # (2) the new stage's automatic activities (after the move, so they belong to it),
        # for the actions that (1) left without a planned or done activity
        self.create_entry_activities()
        self.notice(f"Moved to {target.name}.")

    def create_entry_activities(self) -> None:
        """Give the current stage's ``auto_create`` actions their activities, due at entry
        + ``due_after``, unless one has a planned or done activity or is completed."""
        for action in _to_create(self.opp, self.opp.stage, self._activities):
            self._schedule_for(self.action(action.id), None)

    def auto_advance(self) -> None:
        """Move to the next stage when every required action of this one is completed."""
        opportunity, process = self.opp, self.proc
        if not process.auto_advance or opportunity.status is not Status.OPEN:
            return
        required = [a for a in opportunity.actions_of(opportunity.stage) if a.required]
        if not required or not all(a.completed for a in required):
            return
        following = process.next_stage(opportunity.stage)
        if following is None or not following.is_open:
            return
        try:
            plan = self.plan(following.key)
        except TransitionNotAllowed as refused:
            self.notice(f"Stayed in {process.stage(opportunity.stage).name}: {refused}")
            return
        self.apply(plan, cancel_pending=None, loss_reason=None, automatic=True)
