"""Users' names -- owners, actors, assignees, team members, managers -- are kept
without the blanks around them, on every repository, so that ``"  ann  "`` and
``"ann"`` are one person everywhere; a name of blanks alone is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from moneyed import Money

from salesflow import SalesFlow
from salesflow.errors import ValidationError
from salesflow.policies import TeamPolicy
from tests.application.conftest import MakeApp
from tests.conftest import START


def test_an_assignment_keeps_the_name_without_blanks(app: SalesFlow) -> None:
    deal = app.create_opportunity(title="Acme", value=Money("10", "EUR")).opportunity
    assert app.assign(deal.id, "  ann  ", actor=" boss\t").opportunity.owner == "ann"
    assert app.get(deal.id).owner == "ann"
    assert app.history(deal.id)[-1].actor == "boss"
    assert [o.id for o in app.search(owner="ann").items] == [deal.id]
    assert [o.id for o in app.search(owner=" ann ").items] == [deal.id]
    assert app.pipeline("standard", owner="\u00a0ann").stages[0].count == 1
    forecast = app.forecast(
        start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1), currency="EUR", owner=" ann"
    )
    assert forecast == app.forecast(
        start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1), currency="EUR", owner="ann"
    )
    claimed = app.claim(deal.id, actor=" ann ")  # one's own: nothing changes
    assert claimed.opportunity.owner == "ann"
    assert app.bulk_assign([deal.id], " bob ").succeeded == (deal.id,)
    assert app.get(deal.id).owner == "bob"


def test_owners_and_team_members_of_a_new_deal_are_trimmed(app: SalesFlow) -> None:
    deal = app.create_opportunity(title="Beta", owner=" ann ", actor=" ann ").opportunity
    assert deal.owner == "ann"
    app.update(deal.id, team=[" bob", "bob ", "cid"])
    assert app.get(deal.id).team == ("bob", "cid")
    activity = app.schedule_activity(
        title="Call", due=START + dt.timedelta(days=1), owner=" cid ", opportunity_id=deal.id
    )
    assert activity.owner == "cid"
    assert [a.id for a in app.activities(owner="cid ")] == [activity.id]


@pytest.mark.parametrize("blank", ["", " ", "\t\n", "\u00a0"])
def test_a_name_of_blanks_alone_is_refused(app: SalesFlow, blank: str) -> None:
    deal = app.create_opportunity(title="Gamma", owner="ann").opportunity
    calls: list[Callable[[], object]] = [
        lambda: app.assign(deal.id, blank),
        lambda: app.assign(deal.id, "bob", actor=blank),
        lambda: app.claim(deal.id, actor=blank),
        lambda: app.bulk_assign([deal.id], blank),
        lambda: app.create_opportunity(title="Delta", owner=blank),
        lambda: app.search(owner=blank),
        lambda: app.pipeline("standard", owner=blank),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match="must not be blank"):
            call()
    assert app.get(deal.id).owner == "ann"
    assert app.search().total == 1


def test_a_manager_named_with_blanks_is_that_manager(make_app: MakeApp) -> None:
    app = make_app(policy=TeamPolicy(managers=" boss "))
    deal = app.create_opportunity(title="Epsilon", actor="ann").opportunity
    assert app.assign(deal.id, "ann", actor="boss").opportunity.owner == "ann"
