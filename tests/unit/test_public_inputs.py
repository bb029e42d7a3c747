"""Every public method of ``SalesFlow`` takes any wrong argument in its stride (api.md
section 2: "any other wrong type is a ``ValidationError`` naming the argument"; a
command that raises changes nothing).

The property hands one argument at a time a wrong value -- of the wrong type or out
of range -- with every other argument valid (the real ids of a prepared opportunity,
its actions and its activities), on the in-memory repository and on SQLite. The call
may succeed (some odd values are fine) or raise a ``SalesflowError``; it must never
let out a ``TypeError``, an ``AttributeError`` or the like, and afterwards the
workspace must still be fully readable and writable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import math
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    EventKind,
    FixedClock,
    Indicator,
    Individual,
    InMemoryRepository,
    LineItem,
    Money,
    Organization,
    Process,
    Related,
    Repository,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
    Status,
)
from salesflow.errors import SalesflowError, ValidationError
from salesflow.sqlite import SQLiteRepository

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
ACME = Organization("org-acme", "Acme Corp")
BACKENDS = ("memory", "sqlite")

#: A process with an auto-created CALENDAR action that tracks its outcome, a CALENDAR
#: action to book by hand and a MANUAL step in each open stage; ``ASK`` makes stage
#: changes depend on ``cancel_pending``.
PROBE = Process(
    "probe",
    "Probe",
    (
        Stage(
            "first",
            "First",
            20,
            actions=(
                StageAction(
                    "call", "Call", ActionKind.CALENDAR, auto_create=True, track_outcome=True
                ),
                StageAction("book", "Book a visit", ActionKind.CALENDAR),
                StageAction("check", "Check the budget"),
            ),
        ),
        Stage(
            "second",
            "Second",
            50,
            actions=(
                StageAction("call2", "Call again", ActionKind.CALENDAR, auto_create=True),
                StageAction("book2", "Book a demo", ActionKind.CALENDAR),
                StageAction("check2", "Check the terms"),
            ),
        ),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    cancel_pending=CancelPolicy.ASK,
)
OPEN_STAGES = ("first", "second")
BOOKABLE = {"first": "book", "second": "book2"}


def wrong(value: object) -> Any:
    """``value`` typed as Any: the tests hand salesflow what mypy would refuse."""
    return value


# -- the wrong values -------------------------------------------------------------

_ENUMS: tuple[type[enum.Enum], ...] = (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    EventKind,
    Indicator,
    StageKind,
    Status,
)
enum_members = st.sampled_from([m for kind in _ENUMS for m in kind])
enum_value_strings = st.sampled_from(sorted({str(m.value) for kind in _ENUMS for m in kind}))

odd_strings = st.sampled_from(
    [
        "",
        " ",
        " \t\n ",
        "\ud800",
        "title \udfff",
        "a\x00b",
        "\x00",
        "x" * 2000,
        " " * 2000,
        "y" * 1001,
    ]
)
any_text = st.text(st.characters(codec=None), max_size=8)  # lone surrogates included
huge_ints = st.sampled_from([-1, 101, 2**31, 2**63, 2**64 + 1, 10**100, -(10**100)])
odd_floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.5, 1e308, 5.0])
odd_decimals = st.sampled_from(
    [Decimal("1E+50000000"), Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("5")]
)
odd_money = st.sampled_from(
    [
        Money("1E+50000000", "USD"),
        Money("1E+15", "USD"),
        Money("-5", "USD"),
        Money("-0.01", "EUR"),
        Money("NaN", "USD"),
        Money("Infinity", "USD"),
        Money("0.0000001", "USD"),
        Money("5", "EUR"),
    ]
)
naive_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 1),  # noqa: DTZ001 - naive on purpose
    max_value=dt.datetime(9999, 12, 31),  # noqa: DTZ001
)
#: Aware datetimes at the edges of the calendar (where dates are expected, or where
#: converting to UTC overflows).
edge_datetimes = st.sampled_from(
    [
        START,
        dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime.max.replace(tzinfo=dt.UTC),
    ]
)
dates = st.dates()
other_values = st.sampled_from(
    [
        dt.timedelta(days=-1),
        relativedelta(days=1),
        dt.time(9, 0),
        dt.UTC,
        ACME,
        Individual("ind-1", "Ida"),
        Related("contact", "c-1", "Carl"),
        StageAction("other", "Other"),
        PROBE,
        Ellipsis,
        NotImplemented,
    ]
)

scalars = st.one_of(
    st.none(),
    st.integers(),
    huge_ints,
    st.floats(),
    odd_floats,
    st.booleans(),
    st.binary(max_size=8),
    odd_strings,
    any_text,
    st.builds(object),
    naive_datetimes,
    edge_datetimes,
    dates,
    odd_money,
    odd_decimals,
    enum_members,
    enum_value_strings,
    other_values,
)
hashables = st.one_of(
    st.none(), st.integers(), st.booleans(), odd_strings, enum_value_strings, enum_members
)
bad_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.lists(scalars, max_size=3).map(tuple),
    st.dictionaries(hashables, scalars, max_size=3),
    st.sets(hashables, max_size=3),
    st.frozensets(hashables, max_size=3),
)


# -- the prepared workspace -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A workspace holding one opportunity in ``first`` with its actions and two
    planned activities (the auto-created call and one scheduled by hand)."""

    app: SalesFlow
    repository: Repository
    opportunity_id: str
    call_action: str
    book_action: str
    check_action: str
    auto_activity: str
    extra_activity: str
    line_item: str


def prepare(app: SalesFlow) -> Prepared:
    app.define_process(PROBE)
    result = app.create_opportunity(
        title="Probe deal",
        process="probe",
        customer=ACME,
        value=Money("1000", "USD"),
        expected_close=dt.date(2026, 6, 30),
        owner="olga",
    )
    opportunity = result.opportunity
    by_key = {a.key: a.id for a in opportunity.actions}
    billed = app.add_line_item(opportunity.id, LineItem("Licence", 2, Money("400", "USD")))
    line_id = billed.opportunity.line_items[0].id
    assert line_id is not None
    extra = app.schedule_activity(
        title="Follow up",
        due=START + dt.timedelta(days=3),
        opportunity_id=opportunity.id,
        owner="olga",
    )
    return Prepared(
        app=app,
        repository=app.repository,
        opportunity_id=opportunity.id,
        call_action=by_key["call"],
        book_action=by_key["book"],
        check_action=by_key["check"],
        auto_activity=result.created[0].id,
        extra_activity=extra.id,
        line_item=line_id,
    )


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("public-inputs") / "salesflow.db"


@contextlib.contextmanager
def repository(backend: str, path: Path) -> Iterator[Repository]:
    """A fresh, empty workspace: in memory, or a new workspace name in the one file."""
    if backend == "memory":
        yield InMemoryRepository()
        return
    sqlite = SQLiteRepository(path, workspace=f"ws-{uuid.uuid4().hex}")
    try:
        yield sqlite
    finally:
        sqlite.close()


@contextlib.contextmanager
def workspace(backend: str, path: Path) -> Iterator[Prepared]:
    with repository(backend, path) as repo:
        yield prepare(SalesFlow(repo, clock=FixedClock(START)))


def assert_usable(ws: Prepared, app: SalesFlow | None = None) -> None:
    """The workspace is still fully readable and writable."""
    app = app if app is not None else ws.app
    oid = ws.opportunity_id
    opportunity = app.get(oid)
    assert opportunity.id == oid
    assert oid in [o.id for o in app.search(limit=10_000).items]
    found = app.search(text=opportunity.display_title, limit=10_000).items
    assert oid in [o.id for o in found]
    app.pipeline("probe")
    app.pipeline()
    assert app.activities(opportunity_id=oid)
    app.activities()
    assert app.history(oid)[0].kind is EventKind.CREATED
    app.indicator(oid)
    app.actions(oid)
    assert "probe" in [p.key for p in app.processes()]
    # ... and writable: a further stage change and a performed action succeed.
    if opportunity.status is Status.PAUSED:
        app.resume(oid)
    target = "second" if opportunity.stage == "first" else "first"
    moved = app.change_stage(oid, target, cancel_pending=False).opportunity
    assert moved.stage == target
    assert moved.status is Status.OPEN
    book = next(a for a in app.actions(oid) if a.key == BOOKABLE[target])
    app.perform_action(oid, book.id, due=START + dt.timedelta(days=7))
    assert app.get(oid).version > opportunity.version


# -- each public method with valid arguments --------------------------------------

Call = tuple[Callable[..., object], dict[str, Any]]


def _update(ws: Prepared) -> Call:
    return ws.app.update, {
        "opportunity_id": ws.opportunity_id,
        "actor": None,
        "title": "Renamed",
        "description": "More words",
        "customer": Individual("ind-2", "Ines"),
        "value": Money("1500", "USD"),
        "annual_value": Money("500", "USD"),
        "expected_close": dt.date(2026, 7, 1),
        "pay_date": dt.date(2026, 8, 1),
        "external_ref": "EXT-1",
        "related": (Related("contact", "c-9", "Cleo"),),
        "team": ("olga", "per"),
        "avatar": "avatar.png",
        "value_from_billables": False,
    }


def _resume(ws: Prepared) -> Call:
    ws.app.pause(ws.opportunity_id)  # so that resuming it is valid
    return ws.app.resume, {"opportunity_id": ws.opportunity_id, "actor": None}


def _search(ws: Prepared) -> Call:
    return ws.app.search, {
        "text": "probe",
        "process": "probe",
        "stages": ("first",),
        "statuses": (Status.OPEN,),
        "owner": "olga",
        "customer_id": ACME.id,
        "related_id": None,
        "close_from": dt.date(2026, 1, 1),
        "close_to": dt.date(2026, 12, 31),
        "overdue": False,
        "order_by": "expected_close",
        "limit": 50,
        "offset": 0,
    }


CALLS: dict[str, Callable[[Prepared], Call]] = {
    "define_process": lambda ws: (
        ws.app.define_process,
        {"process": PROBE, "stage_map": None, "actor": None},
    ),
    "process": lambda ws: (ws.app.process, {"key": "probe"}),
    "create_opportunity": lambda ws: (
        ws.app.create_opportunity,
        {
            "title": "Another deal",
            "process": "probe",
            "stage": "first",
            "customer": ACME,
            "value": Money("10", "USD"),
            "annual_value": Money("20", "USD"),
            "probability": 30,
            "expected_close": dt.date(2026, 5, 1),
            "owner": "per",
            "description": "",
            "external_ref": "EXT-2",
            "related": (),
            "loss_reason": None,
            "actor": None,
        },
    ),
    "get": lambda ws: (ws.app.get, {"opportunity_id": ws.opportunity_id}),
    "update": _update,
    "set_probability": lambda ws: (
        ws.app.set_probability,
        {"opportunity_id": ws.opportunity_id, "probability": 40, "actor": None},
    ),
    "preview_stage_change": lambda ws: (
        ws.app.preview_stage_change,
        {
            "opportunity_id": ws.opportunity_id,
            "stage": "second",
            "cancel_pending": False,
            "loss_reason": None,
        },
    ),
    "change_stage": lambda ws: (
        ws.app.change_stage,
        {
            "opportunity_id": ws.opportunity_id,
            "stage": "second",
            "cancel_pending": False,
            "loss_reason": None,
            "actor": None,
        },
    ),
    "bulk_change_stage": lambda ws: (
        ws.app.bulk_change_stage,
        {
            "ids": (ws.opportunity_id,),
            "stage": "second",
            "cancel_pending": False,
            "loss_reason": None,
            "actor": None,
        },
    ),
    "mark_won": lambda ws: (
        ws.app.mark_won,
        {"opportunity_id": ws.opportunity_id, "cancel_pending": False, "actor": None},
    ),
    "mark_lost": lambda ws: (
        ws.app.mark_lost,
        {
            "opportunity_id": ws.opportunity_id,
            "reason": "Too expensive",
            "cancel_pending": True,
            "actor": None,
        },
    ),
    "pause": lambda ws: (ws.app.pause, {"opportunity_id": ws.opportunity_id, "actor": None}),
    "resume": _resume,
    "assign": lambda ws: (
        ws.app.assign,
        {"opportunity_id": ws.opportunity_id, "user": "per", "actor": None},
    ),
    "unassign": lambda ws: (ws.app.unassign, {"opportunity_id": ws.opportunity_id, "actor": None}),
    "claim": lambda ws: (ws.app.claim, {"opportunity_id": ws.opportunity_id, "actor": "olga"}),
    "bulk_assign": lambda ws: (
        ws.app.bulk_assign,
        {"ids": (ws.opportunity_id,), "user": "per", "actor": None},
    ),
    "add_note": lambda ws: (
        ws.app.add_note,
        {"opportunity_id": ws.opportunity_id, "text": "Called them", "actor": None},
    ),
    "link_ticket": lambda ws: (
        ws.app.link_ticket,
        {"opportunity_id": ws.opportunity_id, "ticket_id": "T-1", "title": "Bug", "actor": None},
    ),
    "add_line_item": lambda ws: (
        ws.app.add_line_item,
        {
            "opportunity_id": ws.opportunity_id,
            "item": LineItem("Setup", 1, Money("50", "USD"), discount_percent=10),
            "actor": None,
        },
    ),
    "remove_line_item": lambda ws: (
        ws.app.remove_line_item,
        {"opportunity_id": ws.opportunity_id, "line_id": ws.line_item, "actor": None},
    ),
    "invoice": lambda ws: (
        ws.app.invoice,
        {
            "opportunity_id": ws.opportunity_id,
            "number": "INV-1",
            "issued": dt.date(2026, 3, 2),
            "due_in": dt.timedelta(days=30),
            "actor": None,
        },
    ),
    "deal_counts": lambda ws: (ws.app.deal_counts, {"customer_id": ACME.id, "related_id": None}),
    "contributors": lambda ws: (ws.app.contributors, {"opportunity_id": ws.opportunity_id}),
    "actions": lambda ws: (
        ws.app.actions,
        {"opportunity_id": ws.opportunity_id, "stage": "second"},
    ),
    "add_action": lambda ws: (
        ws.app.add_action,
        {
            "opportunity_id": ws.opportunity_id,
            "stage": "second",
            "action": StageAction("extra", "Extra step"),
            "actor": None,
        },
    ),
    "remove_action": lambda ws: (
        ws.app.remove_action,
        {"opportunity_id": ws.opportunity_id, "action_id": ws.check_action, "actor": None},
    ),
    "perform_action": lambda ws: (
        ws.app.perform_action,
        {
            "opportunity_id": ws.opportunity_id,
            "action_id": ws.book_action,
            "due": START + dt.timedelta(days=2),
            "actor": None,
        },
    ),
    "complete_actions": lambda ws: (
        ws.app.complete_actions,
        {
            "opportunity_id": ws.opportunity_id,
            "action_ids": (ws.check_action,),
            "outcome": None,
            "actor": None,
        },
    ),
    "schedule_activity": lambda ws: (
        ws.app.schedule_activity,
        {
            "title": "Lunch",
            "due": START + dt.timedelta(days=1),
            "kind": ActivityKind.MEETING,
            "opportunity_id": ws.opportunity_id,
            "owner": "per",
            "track_outcome": False,
            "actor": None,
        },
    ),
    "complete_activity": lambda ws: (
        ws.app.complete_activity,
        {
            "activity_id": ws.auto_activity,
            "outcome": "Interested",
            "move_to": None,
            "cancel_pending": None,
            "loss_reason": None,
            "actor": None,
        },
    ),
    "cancel_activity": lambda ws: (
        ws.app.cancel_activity,
        {"activity_id": ws.extra_activity, "actor": None},
    ),
    "delete_activity": lambda ws: (
        ws.app.delete_activity,
        {"activity_id": ws.extra_activity, "actor": None},
    ),
    "activities": lambda ws: (
        ws.app.activities,
        {
            "opportunity_id": ws.opportunity_id,
            "status": ActivityStatus.PLANNED,
            "owner": "olga",
            "due_from": START,
            "due_to": START + dt.timedelta(days=30),
        },
    ),
    "indicator": lambda ws: (ws.app.indicator, {"opportunity_id": ws.opportunity_id}),
    "history": lambda ws: (ws.app.history, {"opportunity_id": ws.opportunity_id}),
    "search": _search,
    "subscribe": lambda ws: (ws.app.subscribe, {"handler": lambda event: None}),
    "pipeline": lambda ws: (
        ws.app.pipeline,
        {
            "process": "probe",
            "currency": "USD",
            "basis": "value",
            "probability": "opportunity",
            "owner": "olga",
        },
    ),
}


def _argument_names(method: str) -> list[str]:
    return _argument_names_of(CALLS[method])


def _argument_names_of(call: Callable[[Prepared], Call]) -> list[str]:
    with workspace("memory", Path("unused")) as ws:
        return sorted(call(ws)[1])


ARGUMENTS = {method: _argument_names(method) for method in CALLS}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", sorted(CALLS))
def test_valid_calls_succeed(method: str, backend: str, sqlite_file: Path) -> None:
    """The baseline: each call with its valid arguments goes through."""
    with workspace(backend, sqlite_file) as ws:
        function, arguments = CALLS[method](ws)
        function(**arguments)
        assert_usable(ws)


def snapshot(ws: Prepared) -> tuple[object, ...]:
    oid = ws.opportunity_id
    return (
        ws.app.get(oid),
        ws.app.history(oid),
        tuple(ws.app.activities()),
        ws.app.search(limit=10_000).total,
    )


def call_with(ws: Prepared, method: str, argument: str, value: object) -> None:
    """Call ``method`` with ``argument`` set to ``value``: it may succeed, or raise a
    ``SalesflowError`` -- and then have changed nothing -- but nothing else."""
    function, arguments = CALLS[method](ws)
    arguments[argument] = value
    before = snapshot(ws)
    try:
        function(**arguments)
    except SalesflowError:
        assert snapshot(ws) == before, f"the refused {method}() changed the workspace"


#: Every (method, argument) pair, so that each argument gets its share of wrong values.
PAIRS = [(method, argument) for method in sorted(CALLS) for argument in ARGUMENTS[method]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("method", "argument"), PAIRS)
@settings(max_examples=5)
@given(value=bad_values)
def test_wrong_arguments_raise_only_salesflow_errors(
    method: str, argument: str, backend: str, sqlite_file: Path, value: object
) -> None:
    with workspace(backend, sqlite_file) as ws:
        call_with(ws, method, argument, value)
        assert_usable(ws)


CONSTRUCTOR_ARGUMENTS = (
    "repository",
    "clock",
    "timezone",
    "rates",
    "correspondence",
    "invitations",
    "policy",
    "ids",
    "retries",
    "backoff",
)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("argument", CONSTRUCTOR_ARGUMENTS)
@settings(max_examples=8)
@given(value=bad_values)
def test_constructor_refuses_wrong_arguments(
    argument: str, backend: str, sqlite_file: Path, value: object
) -> None:
    """A wrong constructor argument is refused with a ``SalesflowError``, or the app it
    gives works like any other; the workspace is untouched either way."""
    with workspace(backend, sqlite_file) as ws:
        arguments: dict[str, Any] = {"repository": ws.repository, "clock": FixedClock(START)}
        arguments[argument] = value
        try:
            app = SalesFlow(**arguments)
        except SalesflowError:
            app = None
        assert_usable(ws)
        if app is not None and argument != "repository":
            assert_usable(ws, app)
        elif app is not None:
            assert_usable(prepare(app))


# -- regressions: reported defects --------------------------------------------------


def refused(function: Callable[..., object], *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        function(*args, **kwargs)
    return caught.value


def readable(ws: Prepared) -> None:
    oid = ws.opportunity_id
    assert ws.app.get(oid).id == oid
    assert ws.app.search(limit=10_000).total >= 1
    ws.app.pipeline("probe")
    assert ws.app.activities(opportunity_id=oid)
    assert ws.app.history(oid)


@pytest.fixture(params=BACKENDS)
def prepared(request: pytest.FixtureRequest, sqlite_file: Path) -> Iterator[Prepared]:
    with workspace(request.param, sqlite_file) as ws:
        yield ws


def test_loss_reason_must_be_text(prepared: Prepared) -> None:
    refused(prepared.app.change_stage, prepared.opportunity_id, "lost", loss_reason=wrong(123))
    refused(prepared.app.change_stage, prepared.opportunity_id, "second", loss_reason=wrong(123))
    assert prepared.app.get(prepared.opportunity_id).stage == "first"
    readable(prepared)


def test_actor_must_be_text(prepared: Prepared) -> None:
    before = prepared.app.search(limit=10_000).total
    refused(prepared.app.create_opportunity, title="X", process="probe", actor=wrong(123))
    assert prepared.app.search(limit=10_000).total == before
    readable(prepared)


def test_schedule_activity_owner_must_be_text(prepared: Prepared) -> None:
    before = len(prepared.app.activities())
    refused(
        prepared.app.schedule_activity,
        title="Call",
        due=START,
        opportunity_id=prepared.opportunity_id,
        owner=wrong(123),
    )
    assert len(prepared.app.activities()) == before
    readable(prepared)


def test_track_outcome_must_be_a_bool(prepared: Prepared) -> None:
    refused(
        prepared.app.schedule_activity,
        title="Call",
        due=START,
        opportunity_id=prepared.opportunity_id,
        track_outcome=wrong("yes"),
    )
    readable(prepared)


def test_outcome_must_be_text(prepared: Prepared) -> None:
    refused(prepared.app.complete_activity, prepared.auto_activity, outcome=wrong(123))
    statuses = {a.id: a.status for a in prepared.app.activities()}
    assert statuses[prepared.auto_activity] is ActivityStatus.PLANNED
    readable(prepared)


def test_cancel_pending_must_be_a_bool(prepared: Prepared) -> None:
    refused(
        prepared.app.change_stage,
        prepared.opportunity_id,
        "second",
        cancel_pending=wrong("no"),
    )
    assert prepared.app.get(prepared.opportunity_id).stage == "first"
    readable(prepared)


def test_an_astronomic_value_is_refused(prepared: Prepared) -> None:
    refused(
        prepared.app.create_opportunity,
        title="Huge",
        process="probe",
        value=Money("1E+50000000", "USD"),
    )
    refused(
        prepared.app.update,
        prepared.opportunity_id,
        value=Money(Decimal("1E+50000000"), "USD"),
    )
    readable(prepared)


def test_search_text_must_be_text(prepared: Prepared) -> None:
    refused(prepared.app.search, text=wrong(123))
    readable(prepared)


def test_search_limit_must_be_an_int(prepared: Prepared) -> None:
    refused(prepared.app.search, limit=wrong("5"))
    readable(prepared)


def test_activity_status_may_be_given_by_value(prepared: Prepared) -> None:
    by_value = prepared.app.activities(status=wrong("planned"))
    by_member = prepared.app.activities(status=ActivityStatus.PLANNED)
    assert [a.id for a in by_value] == [a.id for a in by_member]
    assert {prepared.auto_activity, prepared.extra_activity} <= {a.id for a in by_value}
    assert all(a.status is ActivityStatus.PLANNED for a in by_value)
    readable(prepared)


def test_update_needs_an_opportunity_id(prepared: Prepared) -> None:
    refused(prepared.app.update, wrong(None), title="x")
    assert prepared.app.get(prepared.opportunity_id).title == "Probe deal"
    readable(prepared)


def test_bulk_change_stage_needs_ids(prepared: Prepared) -> None:
    refused(prepared.app.bulk_change_stage, wrong(None), "proposal")
    readable(prepared)


def test_a_title_with_a_lone_surrogate_is_refused(prepared: Prepared) -> None:
    before = prepared.app.search(limit=10_000).total
    refused(prepared.app.create_opportunity, title="Deal \ud800", process="probe")
    refused(prepared.app.update, prepared.opportunity_id, title="\ud800")
    refused(
        prepared.app.schedule_activity,
        title="Call \ud800",
        due=START,
        opportunity_id=prepared.opportunity_id,
    )
    assert prepared.app.search(limit=10_000).total == before
    assert prepared.app.get(prepared.opportunity_id).title == "Probe deal"
    readable(prepared)


def test_timezone_by_iana_name() -> None:
    app = SalesFlow(
        clock=FixedClock(dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)), timezone="Europe/Oslo"
    )
    assert app.timezone.utcoffset(dt.datetime(2026, 3, 1, 23, 30)) == dt.timedelta(hours=1)  # noqa: DTZ001
    opportunity = app.create_opportunity(title="Oslo", customer=ACME).opportunity
    app.mark_won(opportunity.id)
    # 23:30 UTC is already the next day in Oslo.
    assert app.get(opportunity.id).closed_on == dt.date(2026, 3, 2)
    refused(SalesFlow, timezone="Nowhere/Else")


@pytest.mark.parametrize("when", [START, START.replace(tzinfo=None)])
def test_a_datetime_is_not_a_clock(when: dt.datetime) -> None:
    """Found by the property above: a datetime has a ``now()`` (the class method), so
    ``SalesFlow(clock=<a datetime>)`` -- an easy slip for ``FixedClock(<a datetime>)``
    -- must be refused when the app is built, not make every later call fail."""
    refused(SalesFlow, clock=wrong(when))


# -- users' names ----------------------------------------------------------------

#: The arguments that name a user: an owner, an actor, an assignee.
USER_ARGUMENTS = frozenset({"owner", "actor", "user"})


def _forecast(ws: Prepared) -> Call:
    return ws.app.forecast, {
        "start": dt.date(2026, 1, 1),
        "end": dt.date(2026, 12, 31),
        "currency": "USD",
        "owner": "olga",
    }


#: Every call taking a user's name: the public methods above, and the forecast.
USER_CALLS: dict[str, Callable[[Prepared], Call]] = {
    **{m: c for m, c in CALLS.items() if USER_ARGUMENTS & set(ARGUMENTS[m])},
    "forecast": _forecast,
}
USER_PAIRS = [
    (method, argument)
    for method in sorted(USER_CALLS)
    for argument in sorted(USER_ARGUMENTS & set(_argument_names_of(USER_CALLS[method])))
]
#: Reads: the answer with a padded name is the answer with the name itself.
USER_QUERIES = frozenset({"activities", "search", "pipeline", "forecast"})

blanks = st.text(st.sampled_from(" \t\n\u00a0\u3000"), min_size=1, max_size=3)


def stored_names(ws: Prepared) -> list[str]:
    """Every user's name the workspace holds: owners, team members, activity owners
    and the actors of the history."""
    names: list[str] = []
    for opportunity in ws.app.search(limit=10_000).items:
        names.extend(n for n in (opportunity.owner, *opportunity.team) if n is not None)
        names.extend(e.actor for e in ws.app.history(opportunity.id) if e.actor is not None)
    names.extend(a.owner for a in ws.app.activities() if a.owner is not None)
    return names


def outcome(function: Callable[..., object], arguments: dict[str, Any]) -> object:
    """What a call answered, or the kind of error it raised."""
    try:
        return function(**arguments)
    except SalesflowError as error:
        return type(error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("method", "argument"), USER_PAIRS)
@settings(max_examples=4)
@given(
    named=st.tuples(blanks, st.sampled_from(["olga", "per", "Kari Nordmann"]), blanks),
)
def test_users_names_are_taken_without_surrounding_blanks(
    method: str, argument: str, backend: str, sqlite_file: Path, named: tuple[str, str, str]
) -> None:
    """A user's name with blanks around it is that user: the call does what it does
    with the name alone (in a workspace of its own), and no name is stored with blanks
    around it."""
    name = named[1]
    results = []
    for given_name in ("".join(named), name):
        with workspace(backend, sqlite_file) as ws:
            function, arguments = USER_CALLS[method](ws)
            answer = outcome(function, {**arguments, argument: given_name})
            if method in USER_QUERIES:  # the same answer as the name alone, here
                assert answer == function(**{**arguments, argument: name})
            names = stored_names(ws)
            assert all(n == n.strip() for n in names), names
            results.append((answer if isinstance(answer, type) else None, sorted(names)))
    assert results[0] == results[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("method", "argument"), USER_PAIRS)
@settings(max_examples=3)
@given(only=blanks)
def test_a_users_name_of_blanks_alone_is_refused(
    method: str, argument: str, backend: str, sqlite_file: Path, only: str
) -> None:
    with workspace(backend, sqlite_file) as ws:
        function, arguments = USER_CALLS[method](ws)
        before = snapshot(ws)
        with pytest.raises(ValidationError, match=rf"{argument}.*must not be blank"):
            function(**{**arguments, argument: only})
        assert snapshot(ws) == before
