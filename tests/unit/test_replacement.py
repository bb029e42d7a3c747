"""plan_replacement: where the opportunities of a dropped stage go (api.md
"Replacing a process never strands an opportunity")."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import attrs
import pytest

from salesflow.domain.process import Process, Stage
from salesflow.domain.replacement import plan_replacement
from salesflow.domain.values import StageKind
from salesflow.errors import ValidationError
from salesflow.processes import STANDARD

#: STANDARD without its proposal and negotiation stages, and with a new "demo" stage.
SHORT = attrs.evolve(
    STANDARD,
    stages=(
        Stage("lead", "Lead", 15),
        Stage("qualification", "Qualification", 30),
        Stage("demo", "Demo", 60),
        Stage("won", "Closed-Won", 100, StageKind.WON),
        Stage("lost", "Closed-Lost", 0, StageKind.LOST),
    ),
)


def test_a_new_version_keeping_every_occupied_stage_moves_nothing() -> None:
    counts = {"lead": 4, "qualification": 1, "won": 2}
    assert plan_replacement(STANDARD, SHORT, counts, None) == {}
    assert plan_replacement(STANDARD, STANDARD, counts, None) == {}
    assert plan_replacement(STANDARD, SHORT, {}, {}) == {}


def test_a_first_definition_moves_nothing() -> None:
    assert plan_replacement(None, SHORT, {}, None) == {}


def test_dropped_stages_without_opportunities_need_no_map() -> None:
    assert plan_replacement(STANDARD, SHORT, {"lead": 3, "proposal": 0}, None) == {}


def test_a_dropped_stage_with_opportunities_is_refused_naming_it_and_its_count() -> None:
    with pytest.raises(ValidationError) as caught:
        plan_replacement(STANDARD, SHORT, {"lead": 2, "proposal": 3}, None)
    assert str(caught.value) == (
        "Process 'standard': its new version drops stages that hold opportunities: "
        "'proposal' (3); pass stage_map= to say where they go"
    )


def test_every_stranded_stage_is_named_in_process_order() -> None:
    counts = {"negotiation": 1, "lead": 9, "proposal": 3}
    with pytest.raises(ValidationError, match=r"'proposal' \(3\), 'negotiation' \(1\);"):
        plan_replacement(STANDARD, SHORT, counts, None)


def test_a_map_for_every_dropped_stage_gives_where_each_goes() -> None:
    counts = {"lead": 9, "proposal": 3, "negotiation": 1}
    stage_map = {"proposal": "demo", "negotiation": "won"}
    assert plan_replacement(STANDARD, SHORT, counts, stage_map) == stage_map
    assert list(plan_replacement(STANDARD, SHORT, counts, stage_map)) == [
        "proposal",
        "negotiation",
    ]


def test_only_dropped_stages_holding_opportunities_are_in_the_plan() -> None:
    stage_map = {"proposal": "demo", "negotiation": "demo"}
    assert plan_replacement(STANDARD, SHORT, {"proposal": 2}, stage_map) == {"proposal": "demo"}


def test_a_partial_map_names_only_the_unmapped_stages() -> None:
    counts = {"proposal": 3, "negotiation": 1}
    with pytest.raises(ValidationError) as caught:
        plan_replacement(STANDARD, SHORT, counts, {"proposal": "demo"})
    message = str(caught.value)
    assert "'negotiation' (1)" in message
    assert "'proposal'" not in message
    assert "stage_map=" in message


def test_any_mapping_will_do() -> None:
    class Answers(dict[str, str]):
        pass

    assert plan_replacement(STANDARD, SHORT, {"proposal": 1}, Answers(proposal="lead")) == {
        "proposal": "lead"
    }


@pytest.mark.parametrize(
    "stage_map",
    [
        "proposal",
        [("proposal", "demo")],
        {"proposal": 3},
        {1: "demo"},
        {"proposal": None},
    ],
)
def test_a_map_of_the_wrong_type_is_refused(stage_map: Any) -> None:
    with pytest.raises(ValidationError, match="Process 'standard': stage_map must"):
        plan_replacement(STANDARD, SHORT, {"proposal": 1}, stage_map)


def test_a_target_outside_the_new_version_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"'proposal' -> 'negotiation'") as caught:
        plan_replacement(STANDARD, SHORT, {"proposal": 1}, {"proposal": "negotiation"})
    assert "'demo'" in str(caught.value)  # names the stages it could map to


def test_a_target_is_checked_even_for_a_stage_without_opportunities() -> None:
    with pytest.raises(ValidationError, match="'negotiation' -> 'nowhere'"):
        plan_replacement(STANDARD, SHORT, {}, {"negotiation": "nowhere"})


def test_a_stage_the_old_version_does_not_have_is_refused() -> None:
    with pytest.raises(ValidationError, match="stage_map names 'pitching', which is not a stage"):
        plan_replacement(STANDARD, SHORT, {"proposal": 1}, {"proposal": "demo", "pitching": "lead"})
    with pytest.raises(ValidationError, match=r"stage_map names 'proposal'.*there is none"):
        plan_replacement(None, SHORT, {}, {"proposal": "demo"})


def test_a_stage_the_new_version_keeps_cannot_be_mapped() -> None:
    with pytest.raises(ValidationError, match="'lead', which the new version keeps"):
        plan_replacement(STANDARD, SHORT, {"lead": 1}, {"lead": "demo"})


def test_a_stage_stranded_before_can_still_be_mapped() -> None:
    # Opportunities in a stage neither version has (left by an unchecked replacement)
    # are named like the others, and may be mapped.
    with pytest.raises(ValidationError, match=r"'proposal' \(1\), 'ancient' \(2\)"):
        plan_replacement(STANDARD, SHORT, {"ancient": 2, "proposal": 1}, None)
    plan = plan_replacement(
        STANDARD, SHORT, {"ancient": 2, "proposal": 1}, {"ancient": "lead", "proposal": "lead"}
    )
    assert plan == {"proposal": "lead", "ancient": "lead"}
    assert plan_replacement(None, SHORT, {"ancient": 2}, {"ancient": "lost"}) == {"ancient": "lost"}


def test_another_process_cannot_replace_this_one() -> None:
    other = Process(
        "other",
        "Other",
        (
            Stage("a", "A", 10),
            Stage("w", "W", 100, StageKind.WON),
            Stage("l", "L", 0, StageKind.LOST),
        ),
    )
    with pytest.raises(ValidationError, match="same key"):
        plan_replacement(STANDARD, other, {}, None)


def test_the_module_imports_only_the_domain_and_the_errors() -> None:
    path = Path(__file__).resolve().parents[2] / "src/salesflow/domain/replacement.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    salesflow = {m for m in imported if m.split(".")[0] == "salesflow"}
    assert all(m.startswith("salesflow.domain.") or m == "salesflow.errors" for m in salesflow)
