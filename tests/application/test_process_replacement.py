"""Replacing a process never strands an opportunity (api.md, define_process)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from salesflow import EventKind, Process, SalesFlow, StageKind, Status, processes
from salesflow.errors import LossReasonRequired, TransitionNotAllowed, ValidationError
from tests.unit.support import new_deal


def _without_proposal() -> Process:
    standard = processes.STANDARD
    return attrs.evolve(standard, stages=tuple(s for s in standard.stages if s.key != "proposal"))


def test_dropping_a_stage_that_holds_deals_is_refused_and_changes_nothing(app: SalesFlow) -> None:
    deals = [new_deal(app) for _ in range(3)]
    for deal in deals[:2]:
        app.change_stage(deal.id, "proposal")

    with pytest.raises(ValidationError, match=r"'proposal' \(2\)"):
        app.define_process(_without_proposal())

    assert app.process("standard") == processes.STANDARD
    assert [app.get(d.id).stage for d in deals] == ["proposal", "proposal", "lead"]
    assert app.pipeline().stages[2].count == 2


def test_a_stage_map_moves_the_deals_in_the_same_commit(app: SalesFlow) -> None:
    moved, other = new_deal(app), new_deal(app)
    app.change_stage(moved.id, "proposal")
    heard: list[EventKind] = []
    app.subscribe(lambda event: heard.append(event.kind))

    app.define_process(_without_proposal(), stage_map={"proposal": "negotiation"}, actor="kim")

    after = app.get(moved.id)
    assert (after.stage, after.probability) == ("negotiation", 75)
    last = app.history(moved.id)[-1]
    assert last.kind is EventKind.STAGE_CHANGED
    assert dict(last.details) | {"changes": None} == {
        "from": "proposal",
        "to": "negotiation",
        "process_changed": True,
        "changes": None,
    }
    assert last.actor == "kim"
    assert app.activities(opportunity_id=moved.id) == []
    assert app.get(other.id).stage == "lead"
    assert heard == [EventKind.STAGE_CHANGED]
    assert [s.count for s in app.pipeline().stages] == [1, 0, 1, 0, 0]


def test_a_stage_map_must_name_stages_of_the_new_version(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.change_stage(deal.id, "proposal")

    with pytest.raises(ValidationError):
        app.define_process(_without_proposal(), stage_map={"proposal": "nowhere"})

    assert app.get(deal.id).stage == "proposal"


def test_dropping_an_empty_stage_needs_no_map(app: SalesFlow) -> None:
    new_deal(app)

    app.define_process(_without_proposal())

    assert [s.key for s in app.process("standard").stages] == [
        "lead",
        "qualification",
        "negotiation",
        "won",
        "lost",
    ]


def test_a_stage_made_another_kind_is_a_dropped_stage(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.change_stage(deal.id, "proposal")
    lost_proposal = attrs.evolve(
        processes.STANDARD,
        stages=tuple(
            attrs.evolve(s, kind=StageKind.LOST, probability=0) if s.key == "proposal" else s
            for s in processes.STANDARD.stages
        ),
    )

    with pytest.raises(ValidationError, match=r"'proposal' \(1; made LOST\)"):
        app.define_process(lost_proposal)
    assert app.get(deal.id).status is Status.OPEN

    app.define_process(lost_proposal, stage_map={"proposal": "negotiation"})
    assert (app.get(deal.id).stage, app.get(deal.id).status) == ("negotiation", Status.OPEN)


def test_moves_into_a_new_stage_follow_its_gate_and_the_loss_reason_rules(app: SalesFlow) -> None:
    deal = new_deal(app)
    app.change_stage(deal.id, "proposal")
    strict = attrs.evolve(_without_proposal(), require_loss_reason=True)
    gated = attrs.evolve(
        _without_proposal(),
        stages=tuple(
            attrs.evolve(s, requires=("expected_close",)) if s.key == "negotiation" else s
            for s in _without_proposal().stages
        ),
    )

    with pytest.raises(LossReasonRequired):
        app.define_process(strict, stage_map={"proposal": "lost"})
    with pytest.raises(TransitionNotAllowed, match="expected_close"):
        app.define_process(gated, stage_map={"proposal": "negotiation"})

    assert app.get(deal.id).stage == "proposal"
    assert app.process("standard") == processes.STANDARD


def test_deals_follow_a_stage_whose_default_probability_changed(app: SalesFlow) -> None:
    follows, overridden = new_deal(app), new_deal(app)
    app.set_probability(overridden.id, 40)
    richer = attrs.evolve(
        processes.STANDARD,
        stages=tuple(
            attrs.evolve(s, probability=25) if s.key == "lead" else s
            for s in processes.STANDARD.stages
        ),
    )

    app.define_process(richer)

    assert app.get(follows.id).probability == 25
    assert app.history(follows.id)[-1].details["process_changed"] is True
    assert app.get(overridden.id).probability == 40
    assert app.set_probability(overridden.id, None).opportunity.probability == 25
    assert app.pipeline().weighted == app.pipeline(probability="stage").weighted


def test_an_app_sees_a_process_another_app_defined(tmp_path: Path) -> None:
    from salesflow.sqlite import SQLiteRepository

    first = SalesFlow(SQLiteRepository(tmp_path / "p.db"))
    second = SalesFlow(SQLiteRepository(tmp_path / "p.db"))
    assert second.process("standard") == processes.STANDARD  # now cached

    first.define_process(_without_proposal())

    assert second.process("standard") == _without_proposal()
    assert [p.key for p in second.processes()] == ["standard", "simple"]
