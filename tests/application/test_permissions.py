"""The policy port and the ready-made ``TeamPolicy`` -- on every repository."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from salesflow import LineItem, Money, Opportunity, SalesFlow, TeamPolicy
from salesflow.errors import AlreadyAssigned, PermissionDenied, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import new_deal, one_stage_process

LINE = LineItem("Licence", Decimal(1), Money("10", "USD"))
DUE = dt.datetime(2026, 3, 9, 9, tzinfo=dt.UTC)


@pytest.fixture
def team(make_app: MakeApp) -> SalesFlow:
    return make_app(policy=TeamPolicy(managers="mona"))


def test_the_default_policy_allows_everything(app: SalesFlow) -> None:
    deal = new_deal(app, owner="olga")
    assert app.assign(deal.id, "per", actor="anyone").opportunity.owner == "per"
    assert app.add_note(deal.id, "hi").opportunity.notes[0].author is None


def test_a_refusal_names_actor_command_and_deal_and_changes_nothing(make_app: MakeApp) -> None:
    class NoNotes:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            return command != "add_note"

    app = make_app(policy=NoNotes())
    deal = new_deal(app, title="Acme licence")
    heard: list[object] = []
    app.subscribe(heard.append)

    with pytest.raises(PermissionDenied) as caught:
        app.add_note(deal.id, "hello", actor="per")

    message = str(caught.value)
    assert "per" in message
    assert "add_note" in message
    assert "'Acme licence'" in message
    assert app.get(deal.id) == deal
    assert len(app.history(deal.id)) == 1
    assert heard == []


def test_a_policy_that_fails_refuses_and_changes_nothing(make_app: MakeApp) -> None:
    class Broken:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            if command == "change_stage":
                raise KeyError("roles")
            return True

    app = make_app(policy=Broken())
    deal = new_deal(app, title="Acme licence")

    with pytest.raises(PermissionDenied, match=r"change_stage .*the policy failed \(KeyError"):
        app.change_stage(deal.id, "proposal", actor="per")

    assert app.get(deal.id) == deal
    assert len(app.history(deal.id)) == 1


@pytest.mark.parametrize("answer", ["no", 1, None, [True]])
def test_only_a_plain_true_from_the_policy_allows(make_app: MakeApp, answer: object) -> None:
    class Vague:
        def allows(self, actor: str | None, command: str, opportunity: object) -> object:
            return answer if command == "change_stage" else True

    app = make_app(policy=Vague())
    deal = new_deal(app)

    with pytest.raises(PermissionDenied, match="change_stage"):
        app.change_stage(deal.id, "proposal", actor="per")

    assert app.get(deal.id) == deal


def test_the_policy_sees_each_new_command_with_its_name(make_app: MakeApp) -> None:
    asked: list[tuple[str | None, str, str | None]] = []

    class Recording:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            asked.append((actor, command, getattr(opportunity, "id", None)))
            return True

    app = make_app(policy=Recording())
    deal = new_deal(app)
    asked.clear()
    app.assign(deal.id, "per", actor="a")
    app.unassign(deal.id, actor="a")
    app.claim(deal.id, actor="b")
    app.add_note(deal.id, "n", actor="b")
    app.link_ticket(deal.id, "T-1", "Bug", actor="b")
    line = app.add_line_item(deal.id, LINE, actor="b").opportunity.line_items[0]
    app.invoice(deal.id, number="1", actor="b")
    app.remove_line_item(deal.id, line.id or "", actor="b")

    assert asked == [
        ("a", "assign", deal.id),
        ("a", "unassign", deal.id),
        ("b", "claim", deal.id),
        ("b", "add_note", deal.id),
        ("b", "link_ticket", deal.id),
        ("b", "add_line_item", deal.id),
        ("b", "invoice", deal.id),
        ("b", "remove_line_item", deal.id),
    ]


# -- TeamPolicy ---------------------------------------------------------------------------


def test_owners_and_managers_may_change_a_deal_others_may_not(team: SalesFlow) -> None:
    deal = new_deal(team, owner="olga", actor="olga")

    assert team.change_stage(deal.id, "qualification", actor="olga").opportunity
    assert team.change_stage(deal.id, "proposal", actor="mona").opportunity
    with pytest.raises(PermissionDenied, match="per"):
        team.change_stage(deal.id, "negotiation", actor="per")
    with pytest.raises(PermissionDenied):
        team.add_line_item(deal.id, LINE, actor="per")
    assert team.get(deal.id).stage == "proposal"
    assert team.get(deal.id).line_items == ()


def test_team_members_may_change_the_deal_unless_told_otherwise(make_app: MakeApp) -> None:
    app = make_app(policy=TeamPolicy("mona"))
    strict = make_app(policy=TeamPolicy("mona", team_may_change=False))
    for flow in (app, strict):
        deal = new_deal(flow, owner="olga", actor="olga")
        flow.update(deal.id, team=("per",), actor="olga")
        if flow is app:
            assert flow.add_line_item(deal.id, LINE, actor="per").opportunity.line_items
        else:
            with pytest.raises(PermissionDenied):
                flow.add_line_item(deal.id, LINE, actor="per")


def test_anyone_may_claim_an_unowned_deal_but_not_take_an_owned_one(team: SalesFlow) -> None:
    free = new_deal(team, actor="olga")
    owned = new_deal(team, owner="olga", actor="olga")

    assert team.claim(free.id, actor="per").opportunity.owner == "per"
    with pytest.raises(AlreadyAssigned):
        team.claim(owned.id, actor="per")
    assert team.get(owned.id).owner == "olga"


def test_an_unowned_deal_is_claimed_before_it_is_worked_on(team: SalesFlow) -> None:
    free = new_deal(team, actor="olga")
    with pytest.raises(PermissionDenied):
        team.change_stage(free.id, "proposal", actor="per")
    team.claim(free.id, actor="per")
    assert team.change_stage(free.id, "proposal", actor="per").opportunity.stage == "proposal"


def test_only_managers_may_assign(team: SalesFlow) -> None:
    deal = new_deal(team, owner="olga", actor="olga")
    with pytest.raises(PermissionDenied, match="assign"):
        team.assign(deal.id, "per", actor="olga")
    bulk = team.bulk_assign([deal.id], "per", actor="olga")
    assert isinstance(bulk.failed[deal.id], PermissionDenied)
    assert team.get(deal.id).owner == "olga"
    assert team.assign(deal.id, "per", actor="mona").opportunity.owner == "per"
    assert team.bulk_assign([deal.id], "kari", actor="mona").succeeded == (deal.id,)


def test_an_owner_may_give_a_deal_back_but_not_take_anothers(team: SalesFlow) -> None:
    deal = new_deal(team, owner="olga", actor="olga")
    with pytest.raises(PermissionDenied):
        team.unassign(deal.id, actor="per")
    assert team.unassign(deal.id, actor="olga").opportunity.owner is None


def test_anyone_may_add_a_note_and_create_deals(team: SalesFlow) -> None:
    deal = new_deal(team, owner="olga", actor="per")
    assert team.add_note(deal.id, "Met them at the fair", actor="per").opportunity.notes
    free = team.schedule_activity(title="Read up", due=DUE, actor="per")
    assert team.complete_activity(free.id, actor="per").events


def test_only_managers_define_processes(team: SalesFlow) -> None:
    with pytest.raises(PermissionDenied):
        team.define_process(one_stage_process("mine"), actor="olga")
    team.define_process(one_stage_process("mine"), actor="mona")
    assert team.process("mine").key == "mine"


def test_anonymous_callers_are_refused_unless_allowed(make_app: MakeApp) -> None:
    team = make_app(policy=TeamPolicy("mona"))
    with pytest.raises(PermissionDenied, match="anonymous"):
        new_deal(team)
    trusting = make_app(policy=TeamPolicy("mona", anonymous=True))
    deal = new_deal(trusting, owner="olga")
    assert trusting.assign(deal.id, "per").opportunity.owner == "per"


def test_the_commands_anyone_may_run_can_be_chosen(make_app: MakeApp) -> None:
    app = make_app(policy=TeamPolicy("mona", anyone=("add_note", "link_ticket")))
    deal = new_deal(app, owner="olga", actor="olga")
    assert app.link_ticket(deal.id, "T-1", "Bug", actor="per").opportunity.tickets
    closed = make_app(policy=TeamPolicy("mona", anyone=()))
    other = new_deal(closed, owner="olga", actor="olga")
    with pytest.raises(PermissionDenied):
        closed.add_note(other.id, "hi", actor="per")


@pytest.mark.parametrize(
    "arguments",
    [
        {"managers": 5},
        {"managers": ("mona", "")},
        {"managers": "mona", "team_may_change": "yes"},
        {"managers": "mona", "anonymous": 1},
        {"managers": "mona", "anyone": ("add_note", None)},
    ],
)
def test_a_team_policy_checks_its_settings(arguments: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="TeamPolicy"):
        TeamPolicy(**arguments)  # type: ignore[arg-type]


def test_a_team_policy_is_frozen() -> None:
    policy = TeamPolicy(["mona", "max"])
    assert policy.managers == frozenset({"mona", "max"})
    with pytest.raises(AttributeError):
        policy.managers = frozenset()  # type: ignore[misc]


def test_a_policy_of_ones_own(make_app: MakeApp) -> None:
    """Wrap the ready-made policy: nobody but managers touches a won deal."""

    class WonDealsAreFinal:
        def __init__(self) -> None:
            self.team = TeamPolicy("mona")

        def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool:
            if opportunity is not None and opportunity.status.value == "won":
                return actor in self.team.managers
            return self.team.allows(actor, command, opportunity)

    app = make_app(policy=WonDealsAreFinal())
    deal = new_deal(app, owner="olga", actor="olga")
    app.mark_won(deal.id, cancel_pending=False, actor="olga")
    with pytest.raises(PermissionDenied):
        app.add_note(deal.id, "late note", actor="olga")
    assert app.add_note(deal.id, "closing note", actor="mona").opportunity.notes
