"""Bulk import: create_opportunities (api.md §2)."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from salesflow import EventKind, Money, Organization, Related, SalesFlow
from salesflow.errors import LossReasonRequired, PermissionDenied, UnknownStage, ValidationError
from tests.application.conftest import MakeApp


def _rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"title": f"Deal {i}", "value": Money(100 + i, "USD"), "owner": "ann"}


def test_good_items_go_in_in_batches_with_progress(app: SalesFlow) -> None:
    seen: list[int] = []
    heard: list[EventKind] = []
    app.subscribe(lambda event: heard.append(event.kind))

    result = app.create_opportunities(_rows(7), batch_size=3, actor="kim", progress=seen.append)

    assert seen == [3, 6, 7]
    assert len(result.succeeded) == 7
    assert dict(result.failed) == {}
    assert [app.get(i).title for i in result.succeeded] == [f"Deal {i}" for i in range(7)]
    assert app.search(owner="ann").total == 7
    assert app.pipeline().stages[0].total == Money(sum(100 + i for i in range(7)), "USD")
    assert heard == [EventKind.CREATED] * 7
    assert app.history(result.succeeded[0])[0].actor == "kim"


def test_a_refused_item_is_reported_by_position_and_the_others_go_in(app: SalesFlow) -> None:
    items: list[object] = [
        {"title": "Good"},
        {"title": "", "value": Money(5, "USD")},  # no title and no organisation
        {"title": "Nowhere", "stage": "nowhere"},
        "not a mapping",
        {"title": "Typo", "valeu": Money(1, "USD")},
        {"title": "Lost", "stage": "lost"},  # the standard process needs no reason
        {"title": "Also good", "value": Money("1E+50000000", "USD")},
        {"title": "Last"},
    ]

    result = app.create_opportunities(items, batch_size=3)  # type: ignore[arg-type]

    assert sorted(result.failed) == [1, 2, 3, 4, 6]
    assert isinstance(result.failed[2], UnknownStage)
    assert all(isinstance(e, ValidationError) for k, e in result.failed.items() if k != 2)
    assert [app.get(i).title for i in result.succeeded] == ["Good", "Lost", "Last"]
    assert app.search().total == 3


def test_an_item_into_a_lost_stage_follows_the_loss_reason_rules(app: SalesFlow) -> None:
    from tests.unit.support import seed003_process

    app.define_process(seed003_process(key="strict", require_loss_reason=True))
    result = app.create_opportunities(
        [
            {"title": "No reason", "process": "strict", "stage": "lost"},
            {"title": "Reason", "process": "strict", "stage": "lost", "loss_reason": "price"},
        ]
    )
    assert isinstance(result.failed[0], LossReasonRequired)
    assert app.get(result.succeeded[0]).loss_reason == "price"


def test_an_id_already_taken_fails_only_its_item(make_app: MakeApp) -> None:
    calls = itertools.count(1)
    # Each item of the standard process draws two ids: its own, then its event's. The
    # third call is the second item's id: make it one that is already stored.
    app = make_app(ids=lambda: "taken" if (n := next(calls)) in (1, 5) else f"id{n}")
    app.create_opportunity(title="Existing")

    result = app.create_opportunities([{"title": t} for t in ("A", "B", "C")])

    assert list(result.failed) == [1]
    assert "already taken" in str(result.failed[1])
    assert [app.get(i).title for i in result.succeeded] == ["A", "C"]
    assert app.get("taken").title == "Existing"
    assert app.search().total == 3


def test_the_policy_is_asked_about_each_item(make_app: MakeApp) -> None:
    class NoSecrets:
        def allows(self, actor: str | None, command: str, opportunity: object) -> bool:
            return actor != "guest"

    app = make_app(policy=NoSecrets())
    refused = app.create_opportunities(_rows(2), actor="guest")
    assert refused.succeeded == ()
    assert all(isinstance(e, PermissionDenied) for e in refused.failed.values())
    assert app.search().total == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"items": "abc"}, "items"),
        ({"items": {"title": "x"}}, "items"),
        ({"items": [], "batch_size": 0}, "batch_size"),
        ({"items": [], "progress": 5}, "progress"),
        ({"items": [], "actor": 5}, "actor"),
    ],
)
def test_bad_arguments_are_refused_before_anything_happens(
    app: SalesFlow, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        app.create_opportunities(**arguments)
    assert app.search().total == 0


def _counting_ids() -> Callable[[], str]:
    calls = itertools.count(1)
    return lambda: f"id-{next(calls)}"


def test_an_imported_opportunity_is_the_one_create_opportunity_makes(make_app: MakeApp) -> None:
    """The same arguments give the same records -- the opportunity with its actions,
    its activities and its history -- through the bulk path as one by one, stored and
    read back; and each is a record its own validators accept."""
    from tests.unit.support import seed003_process

    items: list[dict[str, Any]] = [
        {
            "title": "  Spaced  ",
            "process": "seed003",
            "customer": Organization("c-1", " Acme "),
            "value": Money("1200.50", "EUR"),
            "annual_value": Money(300, "EUR"),
            "probability": 35,
            "expected_close": dt.date(2026, 9, 1),
            "owner": "  ann ",
            "description": "Big one",
            "external_ref": "crm-7",
            "related": [Related("contact", "p-1", "Pat")],
        },
        {"customer": Organization("c-2", "Beta"), "process": "seed003", "stage": "meeting"},
        {"title": "Closed", "stage": "won", "probability": 50},
        {"title": "Plain"},
    ]
    imported, single = make_app(ids=_counting_ids()), make_app(ids=_counting_ids())
    for target in (imported, single):
        target.define_process(seed003_process())

    result = imported.create_opportunities(items, batch_size=3)
    made = [single.create_opportunity(**item).opportunity.id for item in items]

    assert dict(result.failed) == {}
    assert list(result.succeeded) == made
    for opportunity_id in made:
        opportunity = imported.get(opportunity_id)
        assert opportunity == single.get(opportunity_id)
        assert attrs.evolve(opportunity) == opportunity  # every validator passes
        assert imported.history(opportunity_id) == single.history(opportunity_id)
        assert imported.activities(opportunity_id=opportunity_id) == single.activities(
            opportunity_id=opportunity_id
        )
    assert imported.get(made[0]).owner == "ann"
    assert len(imported.get(made[0]).actions) == sum(
        len(s.actions) for s in seed003_process().stages
    )
    assert imported.activities(opportunity_id=made[0])  # the intro call, booked


class _Item(dict[str, Any]):
    """An item a weak reference can follow."""


def test_a_refused_item_does_not_keep_its_batch_alive(app: SalesFlow) -> None:
    # The errors of a large import with bad rows spread through it must not hold the
    # items (and what was built of them) through the frames of their tracebacks.
    items = [_Item(title=f"Deal {i}", value=Money(i, "USD")) for i in range(20)]
    items[7]["value"] = -1  # refused
    items[15]["stage"] = "nowhere"  # refused
    watched = [weakref.ref(item) for item in items]

    result = app.create_opportunities(items, batch_size=5)
    del items
    gc.collect()

    assert sorted(result.failed) == [7, 15]
    assert isinstance(result.failed[15], UnknownStage)
    assert "nowhere" in str(result.failed[15])
    assert all(error.__traceback__ is None for error in result.failed.values())
    assert [ref for ref in watched if ref() is not None] == []
    assert len(result.succeeded) == 18


def test_the_callers_own_failure_ends_the_import_as_a_salesflow_error(app: SalesFlow) -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield from _rows(5)
        raise RuntimeError("the file was cut short")

    with pytest.raises(ValidationError, match=r"after 4 items, 4 of them stored.*cut short"):
        app.create_opportunities(rows(), batch_size=2)
    assert app.search().total == 4  # the whole batches before it stay stored

    def progress(done: int) -> None:
        raise KeyError(done)

    with pytest.raises(ValidationError, match=r"progress=\.\.\.\) failed after 3 items, 3 of"):
        app.create_opportunities(_rows(3), batch_size=3, progress=progress)
    assert app.search().total == 7
