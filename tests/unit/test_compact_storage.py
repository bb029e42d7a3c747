"""What makes a command cheaper and the in-memory store smaller changes nothing a
caller sees: packed events read back equal, default ids are uuid4 hex, a stage
action's step adds as a ``relativedelta`` does, and people's names are one string."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
import zoneinfo
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st
from moneyed import Money

from salesflow import (
    ActionKind,
    FixedClock,
    InMemoryRepository,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.domain.checks import FrozenDelta
from salesflow.domain.events import Changes, Event, EventKind, packed, unpacked

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
OSLO = zoneinfo.ZoneInfo("Europe/Oslo")

ids = st.one_of(
    st.uuids(version=4).map(lambda u: u.hex),
    st.uuids().map(lambda u: u.hex.upper()),  # 32 hex digits, but not as written back
    st.uuids().map(lambda u: "0x" + u.hex[2:]),  # int(..., 16) reads it, wrongly
    st.uuids().map(lambda u: " " + u.hex[1:]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40).map(
        lambda t: t.strip() or "x"
    ),
)
values = st.one_of(
    st.none(),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10),
    st.integers(-(2**63), 2**63 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.just(NOW),
)


@given(
    id_=ids,
    kind=st.sampled_from(EventKind),
    opportunity_id=st.one_of(st.none(), st.just("o-1")),
    actor=st.one_of(st.none(), st.just("ann")),
    details=st.dictionaries(st.sampled_from(["a", "b", "from", "to"]), values, max_size=4),
    changed=st.booleans(),
    position=st.integers(1, 2**63 - 1),
)
def test_a_packed_event_unpacks_to_an_equal_event(
    *,
    id_: str,
    kind: EventKind,
    opportunity_id: str | None,
    actor: str | None,
    details: dict[str, object],
    changed: bool,
    position: int,
) -> None:
    if changed:
        details["changes"] = Changes(("stage", "owner"), ("lead", None), ("won", "ann"))
    event = Event(
        id=id_, kind=kind, opportunity_id=opportunity_id, at=NOW, actor=actor, details=details
    )
    back = unpacked(packed(event), position)
    assert back == event
    assert back.id == id_
    assert type(back.id) is str
    assert back.position == position
    assert dict(back.details) == dict(event.details)
    assert back.changes == event.changes
    if changed:
        assert type(back.changes) is Changes


def test_a_uuid_hex_id_is_packed_as_a_number_and_any_other_id_as_it_is() -> None:
    hex_id = uuid.uuid4().hex
    for id_, packed_type in [(hex_id, int), (hex_id.upper(), str), ("e-1", str)]:
        event = Event(id=id_, kind=EventKind.PAUSED, opportunity_id="o", at=NOW, actor=None)
        assert type(packed(event)[0]) is packed_type
        assert unpacked(packed(event), 1).id == id_


@given(
    days=st.integers(-400, 400),
    hours=st.integers(-50, 50),
    minutes=st.integers(-200, 200),
    seconds=st.integers(-5000, 5000),
    microseconds=st.integers(-(10**6), 10**6),
    moment=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 - made aware below
        max_value=dt.datetime(2090, 1, 1),  # noqa: DTZ001
        timezones=st.sampled_from([dt.UTC, OSLO, zoneinfo.ZoneInfo("America/New_York")]),
    ),
)
def test_a_step_of_days_and_hours_adds_as_its_relativedelta_does(
    *, days: int, hours: int, minutes: int, seconds: int, microseconds: int, moment: dt.datetime
) -> None:
    parts = {
        "days": days,
        "hours": hours,
        "minutes": minutes,
        "seconds": seconds,
        "microseconds": microseconds,
    }
    expected = moment + relativedelta(**parts)  # type: ignore[arg-type]
    got = FrozenDelta(**parts).after(moment)
    assert got == expected
    assert got.tzinfo is expected.tzinfo
    assert got.replace(tzinfo=None) == expected.replace(tzinfo=None)  # the same wall time


def test_a_step_in_months_or_to_a_day_adds_as_its_relativedelta_does() -> None:
    moment = dt.datetime(2026, 1, 31, 9, 0, tzinfo=OSLO)
    for parts in [{"months": 1}, {"years": 1, "days": 2}, {"day": 1}, {"hour": 8}]:
        step = FrozenDelta(**parts)
        assert step.after(moment) == moment + relativedelta(**parts)  # type: ignore[arg-type]


def test_default_ids_are_uuid4_hex() -> None:
    app = SalesFlow(clock=FixedClock(NOW))
    result = app.create_opportunity(title="Deal", value=Money(Decimal(5), "USD"))
    made = [
        result.opportunity.id,
        *(a.id for a in result.opportunity.actions),
        *(e.id for e in result.events),
    ]
    assert len(set(made)) == len(made)
    for id_ in made:
        parsed = uuid.UUID(id_)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == id_


def _process() -> Process:
    return Process(
        "p",
        "P",
        (
            Stage(
                "lead",
                "Lead",
                10,
                actions=(StageAction("call", "Call", ActionKind.CALENDAR, auto_create=True),),
            ),
            Stage(
                "meet",
                "Meeting",
                50,
                actions=(StageAction("meet", "Meet", ActionKind.CALENDAR, auto_create=True),),
            ),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        cancel_pending="cancel",
    )


def test_the_memory_store_reads_back_what_commands_returned() -> None:
    repository = InMemoryRepository()
    app = SalesFlow(repository, clock=FixedClock(NOW))
    app.define_process(_process())
    returned: list[Event] = []
    deal = app.create_opportunity(title="Deal", process="p")
    returned.extend(deal.events)
    for stage in ("meet", "lead", "meet"):
        returned.extend(app.change_stage(deal.opportunity.id, stage).events)
    history = app.history(deal.opportunity.id)
    assert list(history) == returned
    assert [e.position for e in history] == [e.position for e in returned]
    assert list(app.changes()) == returned
    assert list(app.changes(2, limit=3)) == returned[2:5]
    assert app.changes(len(returned)) == ()
    # The index of activities by opportunity follows cancellations and deletions.
    activities = app.activities(opportunity_id=deal.opportunity.id)
    assert len(activities) == 4
    assert [a.status.value for a in activities].count("planned") == 1
    app.delete_activity(activities[0].id)
    assert list(app.activities(opportunity_id=deal.opportunity.id)) == list(activities[1:])
    assert repository.activities() == list(activities[1:])


def test_the_names_of_people_are_kept_as_one_string() -> None:
    app = SalesFlow(clock=FixedClock(NOW))
    owners = ["".join(["a", "nn"]) for _ in range(2)]  # equal, but two strings
    assert owners[0] is not owners[1]
    one = app.create_opportunity(title="One", owner=owners[0]).opportunity
    two = app.create_opportunity(title="Two", owner=f"  {owners[1]} ").opportunity
    assert one.owner == two.owner == "ann"
    assert one.owner is two.owner is sys.intern("ann")
