"""A state machine that drives random command sequences through ``SalesFlow`` over
random valid processes, and checks after every step what api.md promises: atomic
commands, statuses that agree with stages, actions that agree with their activities,
and a history that records every stage change and every version."""

from __future__ import annotations

import collections
import datetime as dt
import functools
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from salesflow import (
    ActionKind,
    Activity,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    ChangeSet,
    Event,
    EventKind,
    FixedClock,
    Individual,
    InMemoryRepository,
    Money,
    Opportunity,
    OpportunityAction,
    Organization,
    Process,
    Result,
    SalesFlow,
    Stage,
    StageAction,
    StageChangePlan,
    StageKind,
    Status,
)
from salesflow.errors import ConcurrencyError, ConfirmationRequired, SalesflowError
from tests.conftest import START
from tests.unit.engine_strategies import processes, stage_actions

T = TypeVar("T")

MISSING = "no-such-id"
#: Commands that move the stage on the caller's word, as opposed to auto-advance.
EXPLICIT_MOVES = frozenset({"change_stage", "mark_won", "mark_lost", "move_to"})


@attrs.frozen
class Snapshot:
    """Everything a command could touch, read through the public API."""

    opportunities: dict[str, Opportunity]
    activities: tuple[Activity, ...]
    histories: dict[str, tuple[Event, ...]]
    all_ids: tuple[str, ...]

    def activity(self, activity_id: str | None) -> Activity | None:
        return next((a for a in self.activities if a.id == activity_id), None)


def _unset(value: object) -> bool:
    """Whether a stage gate counts the field as empty (api.md: "fields that are empty")."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, tuple):
        return not value
    if isinstance(value, Money):
        return bool(value.amount == 0)
    return False


@attrs.define
class Move:
    """What a command asked for, so that its effects can be checked."""

    command: str
    cancel_pending: bool | None = None
    completed_activity: str | None = None


class ConflictingRepository(InMemoryRepository):
    """Refuses every other commit with a version conflict, as if another process had
    written first, so that every command runs at least twice."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_next = True

    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        if self.refuse_next:
            self.refuse_next = False
            raise ConcurrencyError("a conflict injected by the test")
        self.refuse_next = True
        return super().commit(changes)


class CountingPorts:
    """Correspondence and invitations that count their calls, per action."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self.calls[action.id] += 1

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        self.calls[opportunity.id + event] += 1
        return True


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(START)
        counter = itertools.count(1)
        self.ports = CountingPorts()
        self.app = SalesFlow(
            ConflictingRepository(),
            clock=self.clock,
            ids=lambda: f"id{next(counter)}",
            correspondence=self.ports,
            invitations=self.ports,
            backoff=dt.timedelta(0),
        )
        self.process: Process = self.app.process("standard")
        self.ids: list[str] = []
        self.added = itertools.count(1)
        #: The stage changes this machine saw, per opportunity.
        self.moves: dict[str, int] = {}
        #: The version each opportunity should be at: one per command that recorded events.
        self.versions: dict[str, int] = {}
        #: Outbound calls the performed LETTER and EVENT actions asked for.
        self.letters_asked = 0

    # -- helpers ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        app = self.app
        return Snapshot(
            opportunities={i: app.get(i) for i in self.ids},
            activities=tuple(app.activities()),
            histories={i: app.history(i) for i in self.ids},
            all_ids=tuple(sorted(o.id for o in app.search(limit=10_000).items)),
        )

    def attempt(self, move: Move, command: Callable[[], T]) -> T | None:
        """Run ``command``; if it raises, check that nothing changed at all."""
        before = self.snapshot()
        try:
            outcome = command()
        except SalesflowError:
            assert self.snapshot() == before
            return None
        self.check_success(move, before, outcome)
        return outcome

    def check_success(self, move: Move, before: Snapshot, outcome: object) -> None:
        if isinstance(outcome, Result) and move.command == "create_opportunity":
            created = outcome.opportunity
            assert created is not None
            assert created.id not in self.ids
            self.ids.append(created.id)
            self.moves[created.id] = 0
            self.versions[created.id] = 0
        after = self.snapshot()
        assert set(after.all_ids) == set(self.ids)
        events_of_command: list[Event] = []
        for opportunity_id in self.ids:
            old = before.opportunities.get(opportunity_id)
            new = after.opportunities[opportunity_id]
            old_history = before.histories.get(opportunity_id, ())
            history = after.histories[opportunity_id]
            assert history[: len(old_history)] == old_history, "history is only appended to"
            recorded = history[len(old_history) :]
            events_of_command += recorded
            if recorded:
                self.versions[opportunity_id] += 1
            assert new.version == self.versions[opportunity_id]
            if old is None:
                assert recorded[0].kind is EventKind.CREATED
                self.check_loss_reason(new)
                assert not any(e.kind is EventKind.STAGE_CHANGED for e in recorded)
                self.check_entered(new, after)
                continue
            if not recorded:
                assert new == old, "a command that recorded nothing changed nothing"
            if new.stage != old.stage:
                self.moves[opportunity_id] += 1
                self.check_move(
                    move=move, old=old, new=new, before=before, after=after, recorded=recorded
                )
            else:
                assert not any(e.kind is EventKind.STAGE_CHANGED for e in recorded)
        if not events_of_command:
            assert after.activities == before.activities
        if isinstance(outcome, Result):
            assert list(outcome.events) == events_of_command
            concerned = outcome.opportunity
            assert concerned is not None
            assert concerned == after.opportunities[concerned.id]
        if isinstance(outcome, Activity):
            assert outcome in after.activities
            assert outcome.status is ActivityStatus.PLANNED

    def check_entered(self, opportunity: Opportunity, after: Snapshot) -> None:
        """Entering a stage gives each of its automatic CALENDAR actions an activity, and
        passes the stage's gate."""
        stage = self.process.stage(opportunity.stage)
        for name in stage.requires:
            assert not _unset(getattr(opportunity, name)), f"entered {stage.key} without {name}"
        for action in opportunity.actions_of(stage.key):
            if action.kind is ActionKind.CALENDAR and action.spec.auto_create:
                if action.completed:
                    continue
                linked = after.activity(action.activity_id)
                assert linked is not None, f"auto_create action {action.key} has no activity"
                assert linked.status is not ActivityStatus.CANCELLED

    def check_move(
        self,
        *,
        move: Move,
        old: Opportunity,
        new: Opportunity,
        before: Snapshot,
        after: Snapshot,
        recorded: tuple[Event, ...],
    ) -> None:
        process = self.process
        source, target = process.stage(old.stage), process.stage(new.stage)
        changed = [e for e in recorded if e.kind is EventKind.STAGE_CHANGED]
        assert len(changed) == 1
        assert (changed[0].details["from"], changed[0].details["to"]) == (source.key, target.key)
        reopened = [e for e in recorded if e.kind is EventKind.REOPENED]
        assert len(reopened) == (1 if not source.is_open and target.is_open else 0)
        assert old.status is not Status.PAUSED, "a paused opportunity changed its stage"
        assert new.probability_override is None
        assert new.stage_entered_at == self.clock.now()
        self.check_entered(new, after)
        explicit = move.command in EXPLICIT_MOVES
        if not explicit:
            assert process.auto_advance
            following = process.stages[process.index(source.key) + 1 :]
            assert next(s for s in following if s.is_open) == target
            assert target.is_open
            assert source.is_open
            required = [a for a in new.actions_of(source.key) if a.required]
            assert required
            assert all(a.completed for a in required)
        here, there = process.index(source.key), process.index(target.key)
        if source.is_open and target.kind is not StageKind.LOST:
            if there < here:
                assert process.allow_backward
            if any(s.is_open for s in process.stages[here + 1 : there]):
                assert process.allow_skip
        self.check_loss_reason(new)

        # (1) the planned activities of the stage it left, per the cancel policy
        left = [
            a
            for a in before.activities
            if a.opportunity_id == old.id
            and a.status is ActivityStatus.PLANNED
            and a.stage == source.key
            and a.id != move.completed_activity
        ]
        policy = process.cancel_pending
        if policy is CancelPolicy.ASK and explicit:
            if move.cancel_pending is None:
                assert not left, "moved without asking about planned activities"
            cancel = bool(move.cancel_pending)
        else:
            cancel = policy is CancelPolicy.CANCEL
        for activity in left:
            now = after.activity(activity.id)
            assert now is not None
            if now.status is ActivityStatus.DONE:
                continue  # completed by this very command
            expected = ActivityStatus.CANCELLED if cancel else ActivityStatus.PLANNED
            assert now.status is expected, f"{activity.id} should be {expected.value}"

    def check_loss_reason(self, opportunity: Opportunity) -> None:
        """The loss-reason rules hold for a deal in a LOST stage, however it got there."""
        if self.process.stage(opportunity.stage).kind is StageKind.LOST:
            if self.process.require_loss_reason:
                assert opportunity.loss_reason
            if opportunity.loss_reason is not None and self.process.loss_reasons:
                assert opportunity.loss_reason in self.process.loss_reasons
        else:
            assert opportunity.loss_reason is None

    def move_as_previewed(
        self,
        move: Move,
        opportunity_id: str,
        target: Callable[[Process], str],
        loss_reason: str | None,
        command: Callable[[], Result],
    ) -> None:
        """Run a stage change and check that it did exactly what its preview showed: the
        same error, or the same activities cancelled and created."""
        plan: StageChangePlan | None = None
        refusal: type[SalesflowError] | None = None
        try:
            plan = self.app.preview_stage_change(
                opportunity_id,
                target(self.process),
                cancel_pending=move.cancel_pending,
                loss_reason=loss_reason,
            )
        except SalesflowError as error:
            refusal = type(error)
        if plan is not None and plan.needs_answer:
            refusal = ConfirmationRequired
        result = self.attempt(move, command)
        if refusal is not None:
            assert result is None, f"the preview said {refusal.__name__}, the change went ahead"
            with pytest.raises(refusal):
                command()
            return
        assert result is not None, "the preview allowed what was refused"
        assert plan is not None
        assert [a.id for a in result.cancelled] == [a.id for a in plan.to_cancel]
        booked = [a.action_id for a in result.created]
        assert booked[: len(plan.to_create)] == [a.id for a in plan.to_create]

    @staticmethod
    def choose(data: st.DataObject, *pools: list[str], label: str) -> str:
        """An id from the first non-empty pool the draw picks; now and then one that
        does not exist."""
        if data.draw(st.integers(0, 15), label=f"{label} exists") == 15:
            return MISSING
        candidates = [pool for pool in pools if pool]
        if not candidates:
            return MISSING
        pool = candidates[data.draw(st.integers(0, len(candidates) - 1), label=f"{label} pool")]
        return data.draw(st.sampled_from(pool), label=label)

    def choose_opportunity(self, data: st.DataObject) -> str:
        return self.choose(data, self.ids, label="opportunity")

    def choose_action(self, data: st.DataObject, opportunity_id: str) -> str:
        """Mostly an action of the current stage (the ones that make it advance)."""
        if opportunity_id not in self.ids:
            return MISSING
        opportunity = self.app.get(opportunity_id)
        here = [a.id for a in opportunity.actions_of(opportunity.stage)]
        return self.choose(data, here, [a.id for a in opportunity.actions], label="action")

    def choose_activity(self, data: st.DataObject) -> str:
        """Mostly a planned activity."""
        activities = self.app.activities()
        planned = [a.id for a in activities if a.status is ActivityStatus.PLANNED]
        return self.choose(data, planned, [a.id for a in activities], label="activity")

    def choose_stage(self, data: st.DataObject) -> str:
        stages = [s.key for s in self.process.stages]
        return data.draw(st.sampled_from([*stages, "nowhere"]), label="stage")

    def later(self, data: st.DataObject) -> dt.datetime:
        minutes = data.draw(st.integers(-3 * 24 * 60, 10 * 24 * 60), label="due in minutes")
        return self.clock.now() + dt.timedelta(minutes=minutes)

    # -- setup -------------------------------------------------------------------

    @initialize(process=processes(gates=True), data=st.data())
    def define(self, process: Process, data: st.DataObject) -> None:
        """Define the process and create a few opportunities that pass any gate."""
        self.app.define_process(process)
        self.process = process
        for _ in range(data.draw(st.integers(1, 3), label="opportunities")):
            stage = data.draw(st.sampled_from(process.stages), label="at")
            lost = stage.kind is StageKind.LOST
            created = self.attempt(
                Move("create_opportunity"),
                functools.partial(
                    self.app.create_opportunity,
                    title="Deal",
                    process=process.key,
                    stage=stage.key,
                    loss_reason=(process.loss_reasons or ("price",))[0] if lost else None,
                    customer=Organization("org1", "Acme"),
                    value=Money(100, process.currency),
                    expected_close=dt.date(2026, 6, 30),
                    owner="ann",
                    description="Wants a demo",
                ),
            )
            assert created is not None

    # -- opportunities -----------------------------------------------------------

    @rule(
        fields=st.fixed_dictionaries(
            {
                "title": st.sampled_from(["Deal", "  ", None]),
                "customer": st.sampled_from(
                    [None, Organization("org1", "Acme"), Individual("p1", "Pat")]
                ),
                "probability": st.one_of(st.none(), st.integers(0, 100)),
                "expected_close": st.sampled_from([None, dt.date(2026, 6, 30)]),
                "owner": st.sampled_from([None, "ann"]),
                "description": st.sampled_from(["", "Wants a demo"]),
            }
        ),
        amount=st.one_of(
            st.none(),
            st.decimals(min_value=0, max_value=10**6, places=2),
            st.just(Decimal(-5)),
        ),
        data=st.data(),
    )
    def create_opportunity(
        self, fields: dict[str, Any], amount: Decimal | None, data: st.DataObject
    ) -> None:
        stage = data.draw(st.one_of(st.none(), st.sampled_from(self.process.stages)), label="at")
        value = None if amount is None else Money(amount, self.process.currency)
        reason = data.draw(st.sampled_from([None, "price", "other"]), label="loss_reason")
        self.attempt(
            Move("create_opportunity"),
            lambda: self.app.create_opportunity(
                process=self.process.key,
                stage=None if stage is None else stage.key,
                value=value,
                loss_reason=reason,
                **fields,
            ),
        )

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        fields=st.fixed_dictionaries(
            {},
            optional={
                "customer": st.sampled_from([None, Organization("org2", "Initech")]),
                "expected_close": st.sampled_from([None, dt.date(2026, 9, 1)]),
                "description": st.sampled_from(["", "Budget approved"]),
                "title": st.sampled_from(["Renamed", ""]),
            },
        ),
    )
    def update(self, data: st.DataObject, fields: dict[str, Any]) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.attempt(Move("update"), lambda: self.app.update(opportunity_id, **fields))

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), probability=st.one_of(st.none(), st.integers(0, 100)))
    def set_probability(self, data: st.DataObject, probability: int | None) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.attempt(
            Move("set_probability"), lambda: self.app.set_probability(opportunity_id, probability)
        )

    # -- stages ----------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), cancel_pending=st.sampled_from([None, True, False]))
    def change_stage(self, data: st.DataObject, cancel_pending: bool | None) -> None:
        opportunity_id = self.choose_opportunity(data)
        target = self.choose_stage(data)
        is_lost = any(s.key == target and s.kind is StageKind.LOST for s in self.process.stages)
        reasons = [None, "price", "timing", "other"] if is_lost else [None, None, "price"]
        reason = data.draw(st.sampled_from(reasons), label="loss_reason")
        self.move_as_previewed(
            Move("change_stage", cancel_pending),
            opportunity_id,
            lambda _: target,
            reason,
            lambda: self.app.change_stage(
                opportunity_id, target, cancel_pending=cancel_pending, loss_reason=reason
            ),
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), cancel_pending=st.sampled_from([None, True, False]))
    def mark_won(self, data: st.DataObject, cancel_pending: bool | None) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.move_as_previewed(
            Move("mark_won", cancel_pending),
            opportunity_id,
            lambda process: process.won_stage.key,
            None,
            lambda: self.app.mark_won(opportunity_id, cancel_pending=cancel_pending),
        )

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        cancel_pending=st.sampled_from([None, True, False]),
        reason=st.sampled_from([None, "price", "other"]),
    )
    def mark_lost(
        self, data: st.DataObject, cancel_pending: bool | None, reason: str | None
    ) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.move_as_previewed(
            Move("mark_lost", cancel_pending),
            opportunity_id,
            lambda process: process.lost_stage.key,
            reason,
            lambda: self.app.mark_lost(
                opportunity_id, reason=reason, cancel_pending=cancel_pending
            ),
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def pause(self, data: st.DataObject) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.attempt(Move("pause"), lambda: self.app.pause(opportunity_id))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        opportunity_id = self.choose_opportunity(data)
        self.attempt(Move("resume"), lambda: self.app.resume(opportunity_id))

    # -- stage actions -----------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), with_due=st.booleans())
    def perform_action(self, data: st.DataObject, with_due: bool) -> None:
        opportunity_id = self.choose_opportunity(data)
        action_id = self.choose_action(data, opportunity_id)
        due = self.later(data) if with_due else None
        result = self.attempt(
            Move("perform_action"),
            lambda: self.app.perform_action(opportunity_id, action_id, due=due),
        )
        if result is not None:
            for event in result.events:
                action = result.opportunity.action(event.details.get("action_id", ""))
                if event.kind is EventKind.ACTION_PERFORMED and action is not None:
                    self.letters_asked += action.kind in (ActionKind.LETTER, ActionKind.EVENT)

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), count=st.integers(1, 3), outcome=st.sampled_from([None, "agreed"]))
    def complete_actions(self, data: st.DataObject, count: int, outcome: str | None) -> None:
        opportunity_id = self.choose_opportunity(data)
        action_ids = [self.choose_action(data, opportunity_id) for _ in range(count)]
        self.attempt(
            Move("complete_actions"),
            lambda: self.app.complete_actions(opportunity_id, action_ids, outcome=outcome),
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data(), outcome=st.sampled_from([None, "agreed"]))
    def complete_the_current_stage(self, data: st.DataObject, outcome: str | None) -> None:
        """Complete every required action of the current stage at once: what makes a
        process with auto-advance move on."""
        opportunity_id = self.choose_opportunity(data)
        if opportunity_id in self.ids:
            opportunity = self.app.get(opportunity_id)
            ids = [a.id for a in opportunity.actions_of(opportunity.stage) if a.required]
        else:
            ids = [MISSING]
        self.attempt(
            Move("complete_actions"),
            lambda: self.app.complete_actions(opportunity_id, ids, outcome=outcome),
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def add_action(self, data: st.DataObject) -> None:
        opportunity_id = self.choose_opportunity(data)
        stage = self.choose_stage(data)
        existing = (
            [a.key for a in self.app.actions(opportunity_id)] if opportunity_id in self.ids else []
        )
        if existing and data.draw(st.integers(0, 7), label="reuse a key") == 7:
            key = data.draw(st.sampled_from(existing), label="key")
        else:
            key = f"added{next(self.added)}"
        action = data.draw(stage_actions(key), label="action")
        self.attempt(Move("add_action"), lambda: self.app.add_action(opportunity_id, stage, action))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def remove_action(self, data: st.DataObject) -> None:
        opportunity_id = self.choose_opportunity(data)
        action_id = self.choose_action(data, opportunity_id)
        self.attempt(
            Move("remove_action"), lambda: self.app.remove_action(opportunity_id, action_id)
        )

    # -- activities --------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        kind=st.sampled_from(ActivityKind),
        track_outcome=st.booleans(),
    )
    def schedule_activity(
        self, data: st.DataObject, kind: ActivityKind, track_outcome: bool
    ) -> None:
        opportunity_id = self.choose_opportunity(data)
        due = self.later(data)
        self.attempt(
            Move("schedule_activity"),
            lambda: self.app.schedule_activity(
                title="Follow up",
                due=due,
                kind=kind,
                opportunity_id=opportunity_id,
                track_outcome=track_outcome,
            ),
        )

    @precondition(lambda self: self.ids)
    @rule(
        data=st.data(),
        outcome=st.sampled_from([None, "agreed"]),
        cancel_pending=st.sampled_from([None, True, False]),
    )
    def complete_activity(
        self, data: st.DataObject, outcome: str | None, cancel_pending: bool | None
    ) -> None:
        activity_id = self.choose_activity(data)
        move_to = self.choose_stage(data) if data.draw(st.booleans(), label="move") else None
        move = Move(
            "complete_activity" if move_to is None else "move_to",
            cancel_pending,
            completed_activity=activity_id,
        )
        self.attempt(
            move,
            lambda: self.app.complete_activity(
                activity_id, outcome=outcome, move_to=move_to, cancel_pending=cancel_pending
            ),
        )

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def cancel_activity(self, data: st.DataObject) -> None:
        activity_id = self.choose_activity(data)
        self.attempt(Move("cancel_activity"), lambda: self.app.cancel_activity(activity_id))

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def delete_activity(self, data: st.DataObject) -> None:
        activity_id = self.choose_activity(data)
        self.attempt(Move("delete_activity"), lambda: self.app.delete_activity(activity_id))

    # -- time --------------------------------------------------------------------------

    @rule(minutes=st.integers(0, 3 * 24 * 60))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(dt.timedelta(minutes=minutes))

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def opportunities_agree_with_their_stages(self) -> None:
        for opportunity_id in self.ids:
            opportunity = self.app.get(opportunity_id)
            assert opportunity.process == self.process.key
            stage: Stage = self.process.stage(opportunity.stage)  # UnknownStage fails the test
            if stage.kind is StageKind.OPEN:
                assert opportunity.status in (Status.OPEN, Status.PAUSED)
                assert opportunity.closed_on is None
            else:
                assert opportunity.status is stage.status
                assert opportunity.closed_on is not None
                assert opportunity.probability == (100 if stage.kind is StageKind.WON else 0)
            if opportunity.status is not Status.LOST:
                assert opportunity.loss_reason is None

    @invariant()
    def actions_agree_with_their_activities(self) -> None:
        activities = {a.id: a for a in self.app.activities()}
        for opportunity_id in self.ids:
            opportunity = self.app.get(opportunity_id)
            for action in opportunity.actions:
                planned = [
                    a
                    for a in activities.values()
                    if a.action_id == action.id and a.status is ActivityStatus.PLANNED
                ]
                assert len(planned) <= 1, f"action {action.key} has {len(planned)} planned"
                if action.activity_id is None:
                    assert not planned
                    continue
                assert action.kind is ActionKind.CALENDAR
                linked = activities.get(action.activity_id)
                assert linked is not None, "an action links an activity that does not exist"
                assert linked.action_id == action.id
                assert linked.opportunity_id == opportunity.id
                # Cancelling or deleting the activity unlinks it (OpportunityAction's doc).
                assert linked.status is not ActivityStatus.CANCELLED
                if linked.status is ActivityStatus.DONE:
                    assert action.completed
                else:
                    assert not action.completed
                    assert planned == [linked]

    @invariant()
    def each_letter_and_invitation_went_out_once(self) -> None:
        """Every command ran twice (a conflict on each first commit), yet each performed
        LETTER or EVENT action called its port exactly once."""
        assert sum(self.ports.calls.values()) == self.letters_asked

    @invariant()
    def history_records_every_stage_change(self) -> None:
        for opportunity_id in self.ids:
            opportunity = self.app.get(opportunity_id)
            history = self.app.history(opportunity_id)
            assert history[0].kind is EventKind.CREATED
            assert all(e.opportunity_id == opportunity_id for e in history)
            assert all(a.at <= b.at for a, b in itertools.pairwise(history))
            changes = [e for e in history if e.kind is EventKind.STAGE_CHANGED]
            assert len(changes) == self.moves[opportunity_id]
            last = changes[-1].details["to"] if changes else history[0].details["stage"]
            assert last == opportunity.stage
            assert opportunity.version == self.versions[opportunity_id]


EngineMachine.TestCase.settings = settings(
    max_examples=min(2 * settings().max_examples, 200),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestEngine = EngineMachine.TestCase


# -- regressions found by the machine ------------------------------------------------


def _early_call_app(policy: CancelPolicy) -> tuple[SalesFlow, str, str]:
    """An opportunity in "talk" whose "meet" stage books a call on entry, and that call
    already performed (so planned) while still in "talk"."""
    app = SalesFlow(clock=FixedClock(START))
    app.define_process(
        Process(
            "early",
            "Early call",
            (
                Stage("talk", "Talk", 20),
                Stage(
                    "meet",
                    "Meet",
                    50,
                    actions=(StageAction("call", "Call", ActionKind.CALENDAR, auto_create=True),),
                ),
                Stage("won", "Won", 100, StageKind.WON),
                Stage("lost", "Lost", 0, StageKind.LOST),
            ),
            cancel_pending=policy,
        )
    )
    opportunity = app.create_opportunity(title="Deal", process="early").opportunity
    (call,) = opportunity.actions
    (early,) = app.perform_action(opportunity.id, call.id).created
    return app, opportunity.id, early.id


@pytest.mark.parametrize("policy", list(CancelPolicy))
def test_an_activity_booked_early_for_a_later_stage_is_neither_cancelled_nor_booked_again(
    policy: CancelPolicy,
) -> None:
    app, opportunity_id, early = _early_call_app(policy)
    assert app.activities(opportunity_id=opportunity_id)[0].stage == "meet"

    plan = app.preview_stage_change(opportunity_id, "meet")
    result = app.change_stage(opportunity_id, "meet")

    assert plan.to_cancel == plan.kept == ()
    assert plan.to_create == ()
    assert not plan.needs_answer
    assert result.cancelled == result.created == ()
    (call,) = app.actions(opportunity_id)
    assert call.activity_id == early
    planned = app.activities(opportunity_id=opportunity_id, status=ActivityStatus.PLANNED)
    assert [a.id for a in planned] == [early]
