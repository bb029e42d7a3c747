"""Assignment (seed 002): assign, unassign, claim, bulk_assign, the team beside the
owner, and who worked on a deal -- on every repository."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from salesflow import EventKind, FixedClock, Individual, Organization, Related, SalesFlow
from salesflow.errors import AlreadyAssigned, NotFound, PermissionDenied, ValidationError
from tests.application.conftest import MakeApp
from tests.unit.support import new_deal


def test_assign_makes_the_user_owner_and_records_from_and_to(
    app: SalesFlow, clock: FixedClock
) -> None:
    deal = new_deal(app, title="Acme licence", owner="olga")
    clock.advance(dt.timedelta(hours=1))

    result = app.assign(deal.id, "per", actor="mona")

    assert result.opportunity.owner == "per"
    assert app.get(deal.id).owner == "per"
    (event,) = result.events
    assert event.kind is EventKind.ASSIGNED
    assert (event.details["from"], event.details["to"]) == ("olga", "per")
    assert event.changes == {"owner": ("olga", "per")}
    assert (event.actor, event.at) == ("mona", clock.now())
    assert result.notices == ("Assigned 'Acme licence' to per.",)
    assert app.history(deal.id)[-1] == event


def test_assigning_the_current_owner_changes_nothing_but_says_so(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence", owner="olga")

    result = app.assign(deal.id, "olga", actor="mona")

    assert result.events == ()
    assert result.notices == ("'Acme licence' is already assigned to olga.",)
    assert app.get(deal.id).version == deal.version
    assert len(app.history(deal.id)) == 1


@pytest.mark.parametrize("user", ["", "   ", None, 7, ["per"]])
def test_assign_checks_the_user_even_when_nothing_changes(app: SalesFlow, user: object) -> None:
    deal = new_deal(app, owner="olga")
    with pytest.raises(ValidationError, match=r"assign\(user=...\)"):
        app.assign(deal.id, user)  # type: ignore[arg-type]
    assert app.get(deal.id) == deal


def test_assign_of_an_unknown_opportunity_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound, match="'missing'"):
        app.assign("missing", "per")


def test_unassign_leaves_the_deal_without_owner(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence", owner="olga")

    result = app.unassign(deal.id, actor="olga")

    assert result.opportunity.owner is None
    (event,) = result.events
    assert event.kind is EventKind.UNASSIGNED
    assert event.details["from"] == "olga"
    assert event.details["to"] is None
    assert result.notices == ("Unassigned 'Acme licence'.",)


def test_unassigning_an_unowned_deal_changes_nothing(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")
    result = app.unassign(deal.id)
    assert result.events == ()
    assert result.notices == ("'Acme licence' has no owner.",)
    assert app.get(deal.id).version == deal.version


def test_anyone_may_claim_an_unowned_deal(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence")

    result = app.claim(deal.id, actor="per")

    assert result.opportunity.owner == "per"
    (event,) = result.events
    assert event.kind is EventKind.CLAIMED
    assert (event.details["from"], event.details["to"], event.actor) == (None, "per", "per")
    assert result.notices == ("Claimed 'Acme licence'.",)


def test_claiming_ones_own_deal_changes_nothing(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence", owner="per")
    result = app.claim(deal.id, actor="per")
    assert result.events == ()
    assert result.notices == ("'Acme licence' is already yours.",)
    assert app.get(deal.id).version == deal.version


def test_a_deal_someone_else_owns_cannot_be_claimed(app: SalesFlow) -> None:
    deal = new_deal(app, title="Acme licence", owner="olga")

    with pytest.raises(AlreadyAssigned) as caught:
        app.claim(deal.id, actor="per")

    message = str(caught.value)
    assert "'olga'" in message
    assert "'per'" in message
    assert deal.id in message
    assert app.get(deal.id) == deal
    assert len(app.history(deal.id)) == 1


@pytest.mark.parametrize("actor", [None, "", " ", 3])
def test_claim_needs_a_named_actor(app: SalesFlow, actor: object) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match=r"claim\(actor=...\)"):
        app.claim(deal.id, actor=actor)  # type: ignore[arg-type]
    assert app.get(deal.id).owner is None


def test_an_unassigned_deal_can_be_claimed_again(app: SalesFlow) -> None:
    deal = new_deal(app, owner="olga")
    app.unassign(deal.id, actor="olga")
    assert app.claim(deal.id, actor="per").opportunity.owner == "per"


def test_closed_and_paused_deals_can_still_be_assigned(app: SalesFlow) -> None:
    won, paused = new_deal(app), new_deal(app)
    app.mark_won(won.id, cancel_pending=False)
    app.pause(paused.id)
    assert app.assign(won.id, "per").opportunity.owner == "per"
    assert app.assign(paused.id, "per").opportunity.owner == "per"


# -- bulk ---------------------------------------------------------------------------


def test_bulk_assign_applies_each_item_on_its_own(app: SalesFlow) -> None:
    first, second = new_deal(app, owner="olga"), new_deal(app, owner="per")

    result = app.bulk_assign([first.id, second.id, "missing"], "per", actor="mona")

    assert result.succeeded == (first.id, second.id)
    assert set(result.failed) == {"missing"}
    assert isinstance(result.failed["missing"], NotFound)
    assert app.get(first.id).owner == "per"
    assert result.results[first.id].events[0].kind is EventKind.ASSIGNED
    assert result.results[second.id].events == ()  # already per's


def test_bulk_assign_takes_a_lone_id(app: SalesFlow) -> None:
    deal = new_deal(app)
    assert app.bulk_assign(deal.id, "per").succeeded == (deal.id,)
    assert app.get(deal.id).owner == "per"


def test_bulk_assign_checks_its_arguments_before_any_item(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match="user"):
        app.bulk_assign([deal.id], "  ")
    with pytest.raises(ValidationError, match="ids"):
        app.bulk_assign([deal.id, 5], "per")  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="actor"):
        app.bulk_assign([deal.id], "per", actor=5)  # type: ignore[arg-type]
    assert app.get(deal.id).owner is None


def test_the_policy_is_asked_about_each_bulk_assign_item(make_app: MakeApp) -> None:
    asked: list[tuple[str | None, str, str | None]] = []

    class Recording:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            opportunity_id = getattr(opportunity, "id", None)
            asked.append((actor, command, opportunity_id))
            return command != "bulk_assign" or opportunity_id != second.id

    app = make_app(policy=Recording())
    first, second = new_deal(app), new_deal(app)
    asked.clear()

    result = app.bulk_assign([first.id, second.id], "per", actor="mona")

    assert asked == [("mona", "bulk_assign", first.id), ("mona", "bulk_assign", second.id)]
    assert result.succeeded == (first.id,)
    assert isinstance(result.failed[second.id], PermissionDenied)
    assert app.get(second.id).owner is None


# -- the team and who worked on the deal ----------------------------------------------


def test_the_team_stands_beside_the_owner(app: SalesFlow) -> None:
    deal = new_deal(app, owner="olga")
    updated = app.update(deal.id, team=("per", "kari", "per")).opportunity
    assert updated.team == ("per", "kari")
    assert updated.members == ("olga", "per", "kari")
    # assignment leaves the team alone
    reassigned = app.assign(deal.id, "kari").opportunity
    assert reassigned.team == ("per", "kari")
    assert reassigned.members == ("kari", "per")


def test_the_owner_cannot_be_set_with_update(app: SalesFlow) -> None:
    deal = new_deal(app)
    with pytest.raises(ValidationError, match="owner"):
        app.update(deal.id, owner="per")


def test_history_answers_who_worked_on_the_deal(app: SalesFlow) -> None:
    deal = app.create_opportunity(title="Acme licence", customer=None, actor="olga").opportunity
    app.claim(deal.id, actor="olga")
    app.update(deal.id, team=("sam",), actor="olga")
    app.assign(deal.id, "per", actor="mona")
    app.add_note(deal.id, "Called them", actor="per")
    app.unassign(deal.id, actor="mona")

    assert app.contributors(deal.id) == ("olga", "sam", "mona", "per")
    owners = [
        (e.kind, e.details["from"], e.details["to"], e.actor)
        for e in app.history(deal.id)
        if e.kind in (EventKind.ASSIGNED, EventKind.UNASSIGNED, EventKind.CLAIMED)
    ]
    assert owners == [
        (EventKind.CLAIMED, None, "olga", "olga"),
        (EventKind.ASSIGNED, "olga", "per", "mona"),
        (EventKind.UNASSIGNED, "per", None, "mona"),
    ]


def test_contributors_of_an_unknown_deal_is_not_found(app: SalesFlow) -> None:
    with pytest.raises(NotFound):
        app.contributors("missing")


# -- the card: the company's initials ------------------------------------------------


def test_the_card_shows_the_company_initials(app: SalesFlow) -> None:
    org = new_deal(app, customer=Organization("o-1", "Nordic Freight AS"), title=None)
    person = new_deal(
        app,
        customer=Individual("i-1", "Ida Berg"),
        title="Fleet tracking",
        related=(Related("contact", "c-1", "Ida Berg"), Related("company", "o-2", "Bergen Bygg")),
    )
    loner = new_deal(app, customer=Individual("i-2", "Ola"), title="small job")

    assert (org.display_title, org.initials) == ("Nordic Freight AS", "NF")
    assert (person.company, person.initials) == ("Bergen Bygg", "BB")
    assert (loner.company, loner.initials) == (None, "SJ")


def test_of_several_users_claiming_one_deal_at_once_exactly_one_wins(app: SalesFlow) -> None:
    deal = new_deal(app)
    users = [f"user-{n}" for n in range(6)]
    start = threading.Barrier(len(users))
    outcomes: dict[str, str] = {}

    def claim(user: str) -> None:
        start.wait()
        try:
            app.claim(deal.id, actor=user)
        except AlreadyAssigned:
            outcomes[user] = "refused"
        else:
            outcomes[user] = "claimed"

    threads = [threading.Thread(target=claim, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [user for user, outcome in outcomes.items() if outcome == "claimed"]
    assert len(outcomes) == len(users)
    assert len(winners) == 1
    assert app.get(deal.id).owner == winners[0]
    claims = [e for e in app.history(deal.id) if e.kind is EventKind.CLAIMED]
    assert [e.actor for e in claims] == winners
