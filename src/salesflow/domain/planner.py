"""The stage-change planner: everything a stage change will do, computed before it.

:func:`plan_stage_change` is a pure function of every input of a move -- the
opportunity, its process, its activities, the target stage, the caller's
``cancel_pending`` answer and ``loss_reason``, the time. It raises what the move would
raise (``UnknownStage``, ``TransitionNotAllowed``, ``LossReasonRequired``,
``ValidationError``) and otherwise returns a :class:`StageChangePlan`, which
``SalesFlow.preview_stage_change`` hands to the caller and :meth:`Deal.apply
<salesflow.domain.deal.Deal.apply>` carries out exactly: it cancels ``to_cancel``,
moves, and creates ``to_create`` -- nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import attrs

from salesflow.domain.activity import Activity
from salesflow.domain.opportunity import Opportunity, OpportunityAction, is_empty
from salesflow.domain.process import Process, Stage
from salesflow.domain.values import ActionKind, ActivityStatus, CancelPolicy, StageKind, Status
from salesflow.errors import LossReasonRequired, TransitionNotAllowed, ValidationError
from salesflow.messages import Message, Term

__all__ = [
    "StageChangePlan",
    "check_gate",
    "check_loss_reason",
    "entry_actions",
    "missing_fields",
    "next_open_stage",
    "plan_stage_change",
]


@attrs.frozen
class StageChangePlan:
    """What one stage change does, computed whole before anything changes.

    - ``to_cancel``: the planned activities the change cancels. When ``needs_answer``
      is true (``CancelPolicy.ASK``, something to cancel and no ``cancel_pending``
      answer), these are the activities in question and the change itself raises
      ``ConfirmationRequired`` carrying this plan.
    - ``kept``: the planned activities of the stage being left that stay planned
      (``CancelPolicy.KEEP``, an answer of ``False``, or an auto-advance).
    - ``to_create``: the actions of the new stage whose activity the change creates.
    - ``warnings``: seed 000's checklist before a move; warnings never block.
    - ``probability``, ``status`` and ``loss_reason``: what the opportunity will have.
    """

    opportunity_id: str
    from_stage: Stage
    to_stage: Stage
    policy: CancelPolicy
    to_cancel: tuple[Activity, ...]
    kept: tuple[Activity, ...]
    to_create: tuple[OpportunityAction, ...]
    needs_answer: bool
    warnings: tuple[str, ...]
    probability: int
    status: Status
    loss_reason: str | None = None

    @property
    def moves(self) -> bool:
        """False when the target is the stage the opportunity is already in."""
        return self.from_stage.key != self.to_stage.key

    @property
    def reopens(self) -> bool:
        """True for a move from a WON or LOST stage back to an open one."""
        return self.moves and not self.from_stage.is_open and self.to_stage.is_open


def missing_fields(opportunity: Opportunity, stage: Stage) -> list[str]:
    """The fields ``stage.requires`` that are empty on the opportunity."""
    return [field for field in stage.requires if is_empty(getattr(opportunity, field))]


def check_gate(opportunity: Opportunity, stage: Stage) -> None:
    """Raise ``TransitionNotAllowed`` naming each field ``stage.requires`` that is empty."""
    missing = missing_fields(opportunity, stage)
    if missing:
        raise TransitionNotAllowed(
            Message(
                "Opportunity {id!r}: stage {stage!r} requires {fields} to be set",
                id=opportunity.id,
                stage=_stage(stage),
                fields=", ".join(missing),
            )
        )


def _stage(stage: Stage) -> Term:
    """A stage's name in a message: translated when it is a built-in stage's."""
    return Term("stage", stage.name)


def check_loss_reason(
    process: Process, stage: Stage, reason: str | None, record: str | Message
) -> str | None:
    """The loss reason rules of a move to (or a creation in) ``stage``; ``record``
    names the opportunity in the messages (``Opportunity 'o-1'``)."""
    if stage.kind is not StageKind.LOST:
        if reason is not None:
            raise ValidationError(
                Message(
                    "{record}: a loss reason applies only to a move to a LOST stage, "
                    "not to {stage!r}",
                    record=record,
                    stage=_stage(stage),
                )
            )
        return None
    if process.require_loss_reason and not (reason and reason.strip()):
        raise LossReasonRequired(
            Message(
                "{record}: process {process!r} requires a loss reason to move to {stage!r}",
                record=record,
                process=process.key,
                stage=_stage(stage),
            )
        )
    if reason is not None and process.loss_reasons and reason not in process.loss_reasons:
        raise ValidationError(
            Message(
                "{record}: loss reason {reason!r} is not one of {reasons}",
                record=record,
                reason=reason,
                reasons=list(process.loss_reasons),
            )
        )
    return reason


def _check_transition(opportunity: Opportunity, process: Process, target: Stage) -> None:
    """Raise ``TransitionNotAllowed`` when the process forbids moving to ``target``.

    Moving to a LOST stage is always allowed (seed 002: any stage may be lost), as is
    reopening a closed deal and a move between WON and LOST, which is neither
    backwards nor a skip. Other moves follow ``allow_backward`` and ``allow_skip``
    (skipping counts the open stages passed over).
    """
    if opportunity.status is Status.PAUSED:
        raise TransitionNotAllowed(
            Message(
                "Opportunity {id!r} is paused: resume it before changing its stage",
                id=opportunity.id,
            )
        )
    current = process.stage(opportunity.stage)
    free = target.kind is StageKind.LOST or not current.is_open
    if not free:
        here, there = process.stages.index(current), process.stages.index(target)
        if there < here and not process.allow_backward:
            raise TransitionNotAllowed(
                Message(
                    "Opportunity {id!r}: process {process!r} does not allow moving "
                    "backwards from {source!r} to {stage!r}",
                    id=opportunity.id,
                    process=process.key,
                    source=_stage(current),
                    stage=_stage(target),
                )
            )
        skipped = [s.name for s in process.stages[here + 1 : there] if s.is_open]
        if skipped and not process.allow_skip:
            raise TransitionNotAllowed(
                Message(
                    "Opportunity {id!r}: process {process!r} does not allow skipping "
                    "stages; moving from {source!r} to {stage!r} would skip {skipped}",
                    id=opportunity.id,
                    process=process.key,
                    source=_stage(current),
                    stage=_stage(target),
                    skipped=skipped,
                )
            )
    check_gate(opportunity, target)


def next_open_stage(process: Process, key: str) -> Stage | None:
    """The first OPEN stage after ``key`` in process order (WON and LOST passed over)."""
    return next((s for s in process.stages[process.index(key) + 1 :] if s.is_open), None)


def entry_actions(
    opportunity: Opportunity, stage: str, activities: Mapping[str, Activity]
) -> tuple[OpportunityAction, ...]:
    """The ``auto_create`` CALENDAR actions of ``stage`` that get an activity on entry:
    those not completed whose linked activity (among ``activities``) is neither planned
    nor done."""
    return tuple(
        action
        for action in opportunity.actions_of(stage)
        if action.kind is ActionKind.CALENDAR
        and action.spec.auto_create
        and not action.completed
        and not has_live_activity(action, activities)
    )


def has_live_activity(action: OpportunityAction, activities: Mapping[str, Activity]) -> bool:
    """Whether the action's linked activity is planned or done."""
    linked = activities.get(action.activity_id) if action.activity_id else None
    return linked is not None and linked.status is not ActivityStatus.CANCELLED


def plan_stage_change(
    opportunity: Opportunity,
    process: Process,
    activities: Iterable[Activity],
    target: str,
    *,
    cancel_pending: bool | None = None,
    loss_reason: str | None = None,
    now: dt.datetime,
    timezone: dt.tzinfo,
    automatic: bool = False,
) -> StageChangePlan:
    """Plan moving ``opportunity`` to stage ``target``, or raise what the move would.

    ``activities`` are the opportunity's activities. ``automatic`` marks an
    auto-advance: nobody can be asked, so under ``CancelPolicy.ASK`` the activities of
    the stage being left are kept.
    """
    stage = process.stage(target)
    current = process.stage(opportunity.stage)
    if stage.key == current.key:
        # Nothing moves, but a reason given is still checked (a second mark_lost).
        if loss_reason is not None:
            check_loss_reason(process, stage, loss_reason, _record(opportunity))
        return StageChangePlan(
            opportunity_id=opportunity.id,
            from_stage=current,
            to_stage=stage,
            policy=process.cancel_pending,
            to_cancel=(),
            kept=(),
            to_create=(),
            needs_answer=False,
            warnings=(),
            probability=opportunity.probability,
            status=opportunity.status,
            loss_reason=opportunity.loss_reason,
        )
    _check_transition(opportunity, process, stage)
    reason = (
        None  # what check_loss_reason says of no reason for a stage that is not LOST
        if loss_reason is None and stage.kind is not StageKind.LOST
        else check_loss_reason(process, stage, loss_reason, _record(opportunity))
    )
    mine = {a.id: a for a in activities if a.opportunity_id == opportunity.id}
    planned = [a for a in mine.values() if a.status is ActivityStatus.PLANNED]
    leaving = tuple(a for a in planned if a.stage == current.key)
    to_cancel: tuple[Activity, ...] = ()
    kept: tuple[Activity, ...] = ()
    needs_answer = False
    policy = process.cancel_pending
    if policy is CancelPolicy.CANCEL or (policy is CancelPolicy.ASK and cancel_pending):
        to_cancel = leaving
    elif policy is CancelPolicy.ASK and leaving and cancel_pending is None and not automatic:
        to_cancel, needs_answer = leaving, True
    else:
        kept = leaving
    after_cancel = mine
    if to_cancel:
        cancelled = {a.id for a in to_cancel}
        after_cancel = {key: a for key, a in mine.items() if key not in cancelled}
    warnings = [
        f"Required action '{a.title}' of {current.name} is not completed."
        for a in opportunity.actions_of(current.key)
        if a.required and not a.completed
    ]
    if planned:
        today = now.astimezone(timezone).date()
        warnings += [
            f"Activity '{a.title}' is overdue (due {day})."
            for a in planned
            if (day := a.due.astimezone(timezone).date()) < today
        ]
    if opportunity.expected_close is None and stage.is_open:
        warnings.append("No expected close date is set.")
    return StageChangePlan(
        opportunity_id=opportunity.id,
        from_stage=current,
        to_stage=stage,
        policy=policy,
        to_cancel=to_cancel,
        kept=kept,
        to_create=entry_actions(opportunity, stage.key, after_cancel),
        needs_answer=needs_answer,
        warnings=tuple(warnings),
        probability=stage.probability,
        status=stage.status,
        loss_reason=reason,
    )


def _record(opportunity: Opportunity) -> Message:
    """How messages about a move name the opportunity."""
    return Message("Opportunity {id!r}", id=opportunity.id)
