"""A deal: one opportunity with its activities, the unit every command changes.

Stage actions link an opportunity to its activities (performing a CALENDAR action
books one; completing the activity completes the action), so the rules of actions,
activities and stage changes hold across both. :class:`Deal` is where they live. A
command gets a ``Deal`` over the records it loaded, calls one of its methods, and
reads back what changed: the records themselves (immutable values, replaced on each
change), the events in the order the deal lived them, the notices for a front end,
and the outbound calls to make once the change is committed.

Nothing here reads or writes storage or calls a port; tracking what changed against
what was loaded is :mod:`salesflow.unit_of_work`'s job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from moneyed import Money

from salesflow.domain import checks
from salesflow.domain.activity import Activity, planned
from salesflow.domain.events import Event, EventKind, recorded
from salesflow.domain.opportunity import Opportunity, OpportunityAction
from salesflow.domain.planner import (
    StageChangePlan,
    check_gate,
    check_loss_reason,
    entry_actions,
    has_live_activity,
    missing_fields,
    next_open_stage,
    plan_stage_change,
)
from salesflow.domain.process import Process, Stage, StageAction
from salesflow.domain.revision import revised
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    InvoiceDraft,
    LineItem,
    Note,
    StageKind,
    Status,
    TicketRef,
)
from salesflow.errors import ConfirmationRequired, NotFound, ValidationError
from salesflow.messages import Message, Term

__all__ = ["Deal", "OutboundCall", "quoted"]


def quoted(text: str) -> str:
    """Text as a notice quotes it: in single quotes, exactly as it was given."""
    return f"'{text}'"


def _activities(n: int) -> Message:
    if n == 1:
        return Message("1 planned activity")
    return Message("{count} planned activities", count=n)


def _after(moment: dt.datetime, spec: StageAction) -> dt.datetime:
    """When an activity booked for ``spec`` at ``moment`` is due."""
    step = spec.due_after
    if isinstance(step, checks.FrozenDelta):
        return step.after(moment)
    return moment + step


def _stage(stage: Stage) -> Term:
    """A stage's name in a message: translated when it is a built-in stage's."""
    return Term("stage", stage.name)


@attrs.frozen
class OutboundCall:
    """A call to the outside world that a performed LETTER or EVENT action asks for.

    A command only collects these; they are queued in its commit and made after it.
    ``event_id`` is the ``ACTION_PERFORMED`` event that asked for the call: its id is
    the call's id too, the same on every attempt to make it.
    """

    kind: ActionKind
    opportunity_id: str
    action_id: str
    event_id: str


#: What :meth:`Deal.create` copies a new opportunity and its actions from: every field
#: the copy does not set keeps the default an ``Opportunity`` would give it.
_NEW_OPPORTUNITY = Opportunity(
    id="-",
    process="-",
    stage="-",
    stage_probability=0,
    value=Money(0, "USD"),
    created_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    stage_entered_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
)
_NEW_ACTION = OpportunityAction(id="-", stage="-", spec=StageAction("-", "-", ActionKind.MANUAL))


class Deal:
    """An opportunity (or none, for a free-standing activity) and its activities.

    Each method applies one rule of the opportunities module to working copies and
    records what happened, or raises and leaves the deal to be dropped.
    """

    def __init__(
        self,
        *,
        process: Process | None,
        opportunity: Opportunity | None,
        activities: Iterable[Activity],
        now: dt.datetime,
        timezone: dt.tzinfo,
        actor: str | None,
        new_id: Callable[[], str],
    ) -> None:
        self.process = process
        #: The opportunity, less the changes of its actions in ``_edits`` (by action
        #: id), which reading ``opportunity`` applies: a stage change unlinks, moves and
        #: links in one copy of the opportunity (two with the commit's version).
        self._opportunity = opportunity
        self._edits: dict[str, OpportunityAction] = {}
        self._activities: dict[str, Activity] = {a.id: a for a in activities}
        self.now = now
        self.timezone = timezone
        self.actor = actor
        self.new_id = new_id
        self.events: list[Event] = []
        self.notices: list[Message] = []
        self.created: list[str] = []
        self.cancelled: list[str] = []
        self.deleted: list[str] = []
        self.outbox: list[OutboundCall] = []

    # -- reading ---------------------------------------------------------------

    @property
    def opportunity(self) -> Opportunity | None:
        """The opportunity as the deal stands (None for a free-standing activity)."""
        if self._edits:
            self._opportunity = self._with_edits()
            self._edits = {}
        return self._opportunity

    @opportunity.setter
    def opportunity(self, value: Opportunity | None) -> None:
        """Replace the opportunity; changes of actions not applied yet still apply to
        it (they change only its actions)."""
        self._opportunity = value

    def _with_edits(self, **fields: Any) -> Opportunity:
        """One copy of the opportunity with the pending action changes and ``fields``."""
        base = self._opportunity
        assert base is not None  # actions are edited only on an opportunity
        edits = self._edits
        if edits:
            fields["actions"] = tuple(edits.get(a.id, a) for a in base.actions)
        return revised(base, **fields)

    def settled(self, version: int) -> Opportunity:
        """The opportunity as the deal leaves it, at ``version``, in one copy."""
        settled = self._with_edits(version=version)
        self._opportunity, self._edits = settled, {}
        return settled

    def changed_opportunity(self, loaded: Opportunity | None) -> bool:
        """Whether the deal changed the opportunity it loaded as ``loaded`` (or recorded
        an event on it)."""
        if self._opportunity is None:
            return False
        return bool(self._opportunity is not loaded or self._edits or self.events)

    def _action(self, action_id: str) -> OpportunityAction | None:
        """The opportunity's action ``action_id`` as the deal stands."""
        found = self._edits.get(action_id)
        if found is None and self._opportunity is not None:
            found = self._opportunity.action(action_id)
        return found

    def _edit_action(self, action: OpportunityAction) -> None:
        """Replace the action of the same id, as ``Opportunity.with_action`` does, when
        the opportunity is next read."""
        self._edits[action.id] = action

    @property
    def opp(self) -> Opportunity:
        if self.opportunity is None:
            raise ValidationError("This activity has no opportunity")
        return self.opportunity

    @property
    def proc(self) -> Process:
        if self.process is None:
            raise ValidationError("This activity has no opportunity, so no process")
        return self.process

    @property
    def activities(self) -> Mapping[str, Activity]:
        return self._activities

    def activity(self, activity_id: str) -> Activity:
        try:
            return self._activities[activity_id]
        except KeyError:
            raise NotFound(Message("Activity {id!r} does not exist", id=activity_id)) from None

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.timezone).date()

    # -- recording -------------------------------------------------------------

    def record(self, kind: EventKind, opportunity_id: str | None = None, **details: Any) -> None:
        """Append an event to the history this deal is writing."""
        if opportunity_id is None and self._opportunity is not None:
            opportunity_id = self._opportunity.id
        self.events.append(
            recorded(
                id=self.new_id(),
                kind=kind,
                opportunity_id=opportunity_id,
                at=self.now,
                actor=self.actor,
                details=details,
            )
        )

    def change(self, new: Opportunity, kind: EventKind, **details: Any) -> None:
        """Replace the opportunity with ``new``, recording ``kind`` and what changed."""
        # Pending action changes leave the tracked fields as they are: compare with the
        # opportunity they apply to.
        changes = new.changes_from(self._opportunity)
        self.opportunity = new
        self.record(kind, new.id, **details, changes=changes)

    def notice(self, text: Message) -> None:
        self.notices.append(text)

    def _put(self, activity: Activity) -> Activity:
        self._activities[activity.id] = activity
        return activity

    def _unlink(self, activity: Activity) -> None:
        """Free the action of a cancelled or deleted activity to be performed again: a
        deleted done activity takes the action's completion with it (seed 003)."""
        if self._opportunity is None or activity.action_id is None:
            return
        action = self._action(activity.action_id)
        if action is not None and action.activity_id == activity.id:
            done = activity.status is ActivityStatus.DONE
            self._edit_action(
                revised(
                    action, activity_id=None, completed_at=None if done else action.completed_at
                )
            )

    # -- opportunities ---------------------------------------------------------

    def create(
        self,
        opportunity_id: str,
        start: Stage,
        fields: Mapping[str, Any],
        *,
        loss_reason: str | None,
    ) -> None:
        """Open a new opportunity in ``start``: the title and customer rules, the
        stage's gate, the loss-reason rules of a LOST stage, and the stage's
        automatic activities.

        ``fields`` are a caller's values checked by ``clean_fields``, ``opportunity_id``
        and ``loss_reason`` checked as well: the opportunity is built of them and of the
        process' checked values without running its validators again (see
        :func:`~salesflow.domain.revision.revised`)."""
        process = self.proc
        record = Message("Opportunity {id!r}", id=opportunity_id)
        reason = check_loss_reason(process, start, loss_reason, record)
        if "value" not in fields:  # the one field without a default
            raise ValidationError(
                f"Opportunity {opportunity_id!r}: a new opportunity needs a value"
            )
        if not start.is_open:  # a closed deal's probability is its stage's
            fields = {**fields, "probability_override": None}
        actions = tuple(
            revised(_NEW_ACTION, id=self.new_id(), stage=stage.key, spec=spec)
            for stage in process.stages
            for spec in stage.actions
        )
        new = revised(
            _NEW_OPPORTUNITY,
            id=opportunity_id,
            process=process.key,
            stage=start.key,
            stage_probability=start.probability,
            created_at=self.now,
            stage_entered_at=self.now,
            status=start.status,
            closed_on=None if start.is_open else self.today,
            loss_reason=reason,
            actions=actions,
            **fields,
        )
        new.check_identity(require_customer=process.require_customer)
        check_gate(new, start)
        self.change(new, EventKind.CREATED, stage=start.key)
        for action in entry_actions(new, start.key, self._activities):
            self._book(self.opp.require_action(action.id), None)
        self.notice(
            Message("Created '{title}' in {stage}.", title=new.display_title, stage=_stage(start))
        )

    def update(self, fields: Mapping[str, Any]) -> None:
        new = self.opp.edited(fields, require_customer=self.proc.require_customer)
        if new == self.opp:
            self.notice(Message("Nothing changed."))
            return
        self.change(new, EventKind.UPDATED)
        self.notice(Message("Saved."))

    def set_probability(self, probability: int | None) -> None:
        new = self.opp.with_probability(probability)
        if new == self.opp:
            self.notice(Message("Nothing changed."))
            return
        self.change(new, EventKind.PROBABILITY_SET)
        self.notice(Message("Probability set to {probability}%.", probability=new.probability))

    def pause(self) -> None:
        self.change(self.opp.paused(), EventKind.PAUSED)
        self.notice(Message("Paused."))

    def resume(self) -> None:
        self.change(self.opp.resumed(), EventKind.RESUMED)
        self.notice(Message("Resumed."))

    # -- assignment, notes, tickets, billables (seed 002) ----------------------

    @property
    def _title(self) -> str:
        return self.opp.display_title

    def assign(self, user: str) -> None:
        """Make ``user`` the owner. Assigning the current owner changes nothing."""
        before = self.opp.owner
        if before == user:
            self.notice(
                Message("'{title}' is already assigned to {user}.", title=self._title, user=user)
            )
            return
        self.change(self.opp.assigned(user), EventKind.ASSIGNED, **{"from": before, "to": user})
        self.notice(Message("Assigned '{title}' to {user}.", title=self._title, user=user))

    def unassign(self) -> None:
        """Leave the opportunity without an owner, for someone to claim."""
        before = self.opp.owner
        if before is None:
            self.notice(Message("'{title}' has no owner.", title=self._title))
            return
        self.change(self.opp.assigned(None), EventKind.UNASSIGNED, **{"from": before, "to": None})
        self.notice(Message("Unassigned '{title}'.", title=self._title))

    def claim(self) -> None:
        """The actor takes an unowned opportunity (``AlreadyAssigned`` when someone
        else owns it); claiming one's own changes nothing."""
        if self.actor is None:
            raise ValidationError(f"{self.opp.record}: claiming needs an actor, who becomes owner")
        if self.opp.owner == self.actor:
            self.notice(Message("'{title}' is already yours.", title=self._title))
            return
        before = self.opp.owner
        self.change(
            self.opp.claimed_by(self.actor), EventKind.CLAIMED, **{"from": before, "to": self.actor}
        )
        self.notice(Message("Claimed '{title}'.", title=self._title))

    def add_note(self, text: str) -> None:
        """A comment, written by the actor, now."""
        note = Note(text=text, author=self.actor, at=self.now)
        self.opportunity = self.opp.with_note(note)
        self.record(EventKind.NOTE_ADDED, note=note)
        self.notice(Message("Added a note to '{title}'.", title=self._title))

    def link_ticket(self, ticket: TicketRef) -> None:
        """Link a ticket of the host app; one already linked changes nothing."""
        linked = self.opp.with_ticket(ticket)
        if linked is self.opp:
            self.notice(
                Message(
                    "Ticket '{ticket}' is already linked to '{title}'.",
                    ticket=ticket.id,
                    title=self._title,
                )
            )
            return
        self.opportunity = linked
        self.record(EventKind.TICKET_LINKED, ticket=ticket)
        self.notice(
            Message("Linked ticket '{ticket}' to '{title}'.", ticket=ticket.id, title=self._title)
        )

    def add_line_item(self, item: LineItem) -> None:
        """Add a billable line; one without an id gets a new one. With
        ``value_from_billables`` the value follows."""
        if item.id is None:
            item = attrs.evolve(item, id=self.new_id())
        new = self.opp.with_line_item(item)
        self.change(new, EventKind.LINE_ITEM_ADDED, line_id=item.id, item=item)
        self.notice(
            Message("Added '{item}' to '{title}'.", item=item.description, title=self._title)
        )

    def remove_line_item(self, line_id: str) -> None:
        item = self.opp.line_item(line_id)
        new = self.opp.without_line_item(line_id)
        self.change(new, EventKind.LINE_ITEM_REMOVED, line_id=line_id, item=item)
        self.notice(
            Message("Removed '{item}' from '{title}'.", item=item.description, title=self._title)
        )

    def invoice(self, number: str, *, issued: dt.date | None, due_in: dt.timedelta) -> InvoiceDraft:
        """Draw an invoice from the billables, issued today (in the deal's time zone)
        unless ``issued`` is given, due ``due_in`` later; recorded as ``INVOICED``."""
        day = issued if issued is not None else self.today
        try:
            due = day + due_in
        except OverflowError:
            raise ValidationError(
                f"Invoice {number!r}: {day} + {due_in.days} days is outside the calendar"
            ) from None
        draft = self.opp.invoice_draft(number, issued=day, due=due)
        self.record(EventKind.INVOICED, invoice=draft)
        self.notice(
            Message(
                "Drafted invoice '{number}' of '{title}' for {amount} {currency}, due {due}.",
                number=number,
                title=self._title,
                amount=draft.total.amount,
                currency=draft.currency,
                due=due.isoformat(),
            )
        )
        return draft

    # -- stage actions ---------------------------------------------------------

    def add_action(self, stage: str, spec: StageAction) -> None:
        target = self.proc.stage(stage)
        action_id = self.new_id()
        self.opportunity = self.opp.with_added_action(target, spec, action_id)
        self.record(EventKind.ACTION_ADDED, action_id=action_id, key=spec.key, stage=target.key)
        self.notice(Message("Added '{action}'.", action=spec.title))

    def remove_action(self, action_id: str) -> None:
        action = self.opp.require_action(action_id)
        self.opportunity = self.opp.without_action(action_id)
        self.record(
            EventKind.ACTION_REMOVED, action_id=action_id, key=action.key, stage=action.stage
        )
        self.notice(Message("Removed '{action}'.", action=action.title))

    def perform(self, action_id: str, due: dt.datetime | None) -> None:
        """Perform an action (seed 003): a CALENDAR action books its activity and stays
        open; a LETTER, EVENT or MANUAL one is completed, and a LETTER or EVENT asks for
        its outbound call."""
        action = self.opp.require_action(action_id)
        if action.kind is not ActionKind.CALENDAR and due is not None:
            raise ValidationError(
                f"Action {quoted(action.title)}: only a CALENDAR action takes a due time"
            )
        if action.completed:
            self.notice(Message("'{action}' is already completed.", action=action.title))
            return
        if action.kind is ActionKind.CALENDAR and has_live_activity(action, self._activities):
            self.notice(Message("An activity already exists for this action."))
            return
        self.record(
            EventKind.ACTION_PERFORMED, action_id=action.id, key=action.key, stage=action.stage
        )
        if action.kind is ActionKind.CALENDAR:
            self._book(action, due)
            return
        if action.kind in (ActionKind.LETTER, ActionKind.EVENT):
            performed = self.events[-1]
            self.outbox.append(OutboundCall(action.kind, self.opp.id, action.id, performed.id))
        self._complete_action(action)
        self.notice(Message("Completed '{action}'.", action=action.title))
        self.auto_advance()

    def complete_actions(self, action_ids: Sequence[str], outcome: str | None) -> None:
        """Mark actions completed (seed 003); their linked planned activities become DONE.

        Completing one action whose planned activity tracks outcomes needs ``outcome``;
        completing several at once records none.
        """
        actions = [self.opp.require_action(i) for i in dict.fromkeys(action_ids)]
        if not actions:
            raise ValidationError(f"{self.opp.record}: no actions to complete")
        single = len(actions) == 1
        completed_any = False
        for listed in actions:
            action = self.opp.require_action(listed.id)  # the latest copy
            if action.completed:
                self.notice(Message("'{action}' is already completed.", action=action.title))
                continue
            linked = self._activities.get(action.activity_id) if action.activity_id else None
            if linked is not None and linked.is_planned:
                self._finish(linked, outcome if single else None, ask_outcome=single)
            self._complete_action(action)
            self.notice(Message("Completed '{action}'.", action=action.title))
            completed_any = True
        if completed_any:
            self.auto_advance()

    def _complete_action(self, action: OpportunityAction) -> None:
        self.opportunity = self.opp.with_action(revised(action, completed_at=self.now))
        self.record(
            EventKind.ACTION_COMPLETED, action_id=action.id, key=action.key, stage=action.stage
        )

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
        """Plan an activity: on the opportunity (in its current stage, or in the stage of
        ``action``, which it is linked to), or free-standing. The owner defaults to the
        opportunity's owner."""
        opportunity = self._opportunity  # its id, owner and stage: not its actions
        if owner is None and opportunity is not None:
            owner = opportunity.owner
        stage = action.stage if action else opportunity.stage if opportunity else None
        activity = self._put(
            planned(
                id=self.new_id(),
                title=title,
                due=due,
                kind=kind,
                opportunity_id=opportunity.id if opportunity else None,
                stage=stage,
                action_id=action.id if action else None,
                owner=owner,
                track_outcome=track_outcome,
                created_at=self.now,
            )
        )
        self.created.append(activity.id)
        details: dict[str, Any] = {"activity_id": activity.id, "title": title, "due": due}
        if action is not None:
            details["action_id"] = action.id
            self._edit_action(revised(action, activity_id=activity.id))
        self.record(EventKind.ACTIVITY_SCHEDULED, **details)
        return activity

    def _book(self, action: OpportunityAction, due: dt.datetime | None) -> None:
        """Book the activity of a CALENDAR action, due at ``due`` or after the action's
        ``due_after`` from now."""
        spec = action.spec
        try:
            when = due if due is not None else _after(self.now.astimezone(self.timezone), spec)
        except (OverflowError, ValueError):
            raise ValidationError(
                f"Action {quoted(action.title)} of {self.opp.record}: its due_after "
                f"{spec.due_after!r} puts the due time outside the calendar"
            ) from None
        self.schedule(
            title=spec.title,
            due=when,
            kind=spec.activity_kind,
            owner=None,
            track_outcome=spec.track_outcome,
            action=action,
        )
        day = when.astimezone(self.timezone).date().isoformat()
        self.notice(Message("Scheduled '{activity}' for {day}.", activity=spec.title, day=day))

    def _finish(self, activity: Activity, outcome: str | None, *, ask_outcome: bool = True) -> None:
        done = self._put(activity.completed(outcome, at=self.now, ask_outcome=ask_outcome))
        details: dict[str, Any] = {"activity_id": done.id, "title": done.title}
        if outcome is not None:
            details["outcome"] = outcome
        self.record(EventKind.ACTIVITY_COMPLETED, done.opportunity_id, **details)

    def complete_activity(
        self,
        activity_id: str,
        outcome: str | None,
        *,
        move_to: str | None = None,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
    ) -> None:
        """Mark a planned activity done; its action is completed with it. ``move_to``
        changes the opportunity's stage, instead of any auto-advance."""
        activity = self.activity(activity_id)
        if move_to is not None and self.opportunity is None:
            raise ValidationError(
                f"Activity {activity_id!r} has no opportunity whose stage could change"
            )
        self._finish(activity, outcome)
        action = (
            self.opportunity.action(activity.action_id)
            if self.opportunity is not None and activity.action_id is not None
            else None
        )
        completes_action = (
            action is not None and not action.completed and action.activity_id == activity.id
        )
        if action is not None and completes_action:
            self._complete_action(action)
        self.notice(Message("Completed '{activity}'.", activity=activity.title))
        if move_to is not None:
            self.change_stage(move_to, cancel_pending=cancel_pending, loss_reason=loss_reason)
        elif completes_action:
            self.auto_advance()

    def cancel_activity(self, activity_id: str) -> None:
        activity = self._cancel(self.activity(activity_id))
        self.notice(Message("Cancelled '{activity}'.", activity=activity.title))

    def _cancel(self, activity: Activity) -> Activity:
        cancelled = self._put(activity.cancelled(at=self.now))
        self.cancelled.append(cancelled.id)
        self._unlink(activity)
        self.record(
            EventKind.ACTIVITY_CANCELLED,
            activity.opportunity_id,
            activity_id=activity.id,
            title=activity.title,
        )
        return cancelled

    def delete_activity(self, activity_id: str) -> None:
        """Delete an activity; its action can then be performed again (seed 003)."""
        activity = self.activity(activity_id)
        del self._activities[activity_id]
        self.deleted.append(activity_id)
        self._unlink(activity)
        self.record(
            EventKind.ACTIVITY_DELETED,
            activity.opportunity_id,
            activity_id=activity.id,
            title=activity.title,
        )
        self.notice(Message("Deleted '{activity}'.", activity=activity.title))

    # -- stages ----------------------------------------------------------------

    def plan(
        self,
        target: str,
        *,
        cancel_pending: bool | None = None,
        loss_reason: str | None = None,
        automatic: bool = False,
    ) -> StageChangePlan:
        """The plan of moving to ``target`` from the deal as it stands."""
        return plan_stage_change(
            self.opp,
            self.proc,
            self._activities.values(),
            target,
            cancel_pending=cancel_pending,
            loss_reason=loss_reason,
            now=self.now,
            timezone=self.timezone,
            automatic=automatic,
        )

    def change_stage(
        self, target: str, *, cancel_pending: bool | None, loss_reason: str | None
    ) -> None:
        self.apply(self.plan(target, cancel_pending=cancel_pending, loss_reason=loss_reason))

    def apply(self, plan: StageChangePlan) -> None:
        """Carry out ``plan``, exactly: cancel ``to_cancel``, move, create ``to_create``.

        A plan that still needs the caller's answer raises ``ConfirmationRequired``.
        """
        source, target = plan.from_stage, plan.to_stage
        if plan.needs_answer:
            raise ConfirmationRequired(
                Message(
                    "Opportunity {id!r}: moving to {stage!r} would leave {activities} of "
                    "{source!r}; answer cancel_pending=True or False",
                    id=self.opp.id,
                    stage=_stage(target),
                    activities=_activities(len(plan.to_cancel)),
                    source=_stage(source),
                ),
                plan,
            )
        if not plan.moves:
            self.notice(Message("Already in {stage}.", stage=_stage(target)))
            return
        for activity in plan.to_cancel:
            self._cancel(self.activity(activity.id))
        if plan.to_cancel:
            self.notice(
                Message(
                    "Cancelled {activities} of {stage}.",
                    activities=_activities(len(plan.to_cancel)),
                    stage=_stage(source),
                )
            )
        if plan.kept and plan.policy is CancelPolicy.ASK:
            self.notice(
                Message(
                    "Kept {activities} of {stage}; cancel what is no longer needed.",
                    activities=_activities(len(plan.kept)),
                    stage=_stage(source),
                )
            )
        # Moved as it stands less its pending action changes (a move leaves actions as
        # they are), which then apply to the moved copy.
        base = self._opportunity if self._opportunity is not None else self.opp
        moved = base.moved(target, at=self.now, today=self.today, loss_reason=plan.loss_reason)
        self.change(moved, EventKind.STAGE_CHANGED, **{"from": source.key, "to": target.key})
        if plan.reopens:
            self.record(EventKind.REOPENED, **{"from": source.key, "to": target.key})
        for action in plan.to_create:
            found = self._action(action.id)
            self._book(found if found is not None else self.opp.require_action(action.id), None)
        self.notice(Message("Moved to {stage}.", stage=_stage(target)))

    def auto_advance(self) -> None:
        """Move to the next open stage when every required action of this one is
        completed (and it has one), one stage per completion; a gate stops it."""
        opportunity, process = self.opp, self.proc
        if not process.auto_advance or opportunity.status is not Status.OPEN:
            return
        required = [a for a in opportunity.actions_of(opportunity.stage) if a.required]
        if not required or not all(a.completed for a in required):
            return
        following = next_open_stage(process, opportunity.stage)
        if following is None:
            return
        missing = missing_fields(opportunity, following)
        if missing:
            self.notice(
                Message(
                    "Stayed in {stage}: {next} requires {fields} to be set.",
                    stage=_stage(process.stage(opportunity.stage)),
                    next=_stage(following),
                    fields=", ".join(missing),
                )
            )
            return
        self.apply(self.plan(following.key, automatic=True))

    def move_for_process_change(self, process: Process, stage: str) -> None:
        """Move into ``stage`` of a new version of the process, which drops the current
        stage or makes it another kind: a ``STAGE_CHANGED`` marked ``process_changed``,
        without the effects of a stage change on activities. The new stage's gate and
        the loss-reason rules of a LOST stage hold; a paused deal moved to an open stage
        stays paused."""
        source, target = self.opp.stage, process.stage(stage)
        reason = check_loss_reason(
            process,
            target,
            self.opp.loss_reason if target.kind is StageKind.LOST else None,
            Message("Opportunity {id!r}", id=self.opp.id),
        )
        check_gate(self.opp, target)
        moved = self.opp.moved(target, at=self.now, today=self.today, loss_reason=reason)
        if self.opp.status is Status.PAUSED and target.is_open:
            moved = revised(moved, status=Status.PAUSED)
        self.process = process
        self.change(
            moved,
            EventKind.STAGE_CHANGED,
            **{"from": source, "to": target.key, "process_changed": True},
        )

    def follow_process_change(self, process: Process) -> None:
        """Take the default probability the new version of the process gives the
        current stage (an override stays in effect)."""
        stage = process.stage(self.opp.stage)
        self.process = process
        self.change(
            revised(self.opp, stage_probability=stage.probability),
            EventKind.PROBABILITY_SET,
            process_changed=True,
        )
