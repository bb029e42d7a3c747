"""Every field of every value class is checked when the value is built (api.md
section 1): a wrong type or range for any argument is a ``ValidationError`` naming the
record and the field, never a ``TypeError`` or an ``AttributeError``."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from salesflow import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Individual,
    LineItem,
    Money,
    Note,
    Organization,
    Process,
    Related,
    Stage,
    StageAction,
    StageKind,
    Status,
    processes,
)
from salesflow.domain import checks
from salesflow.domain.checks import NAME_MAX, TEXT_MAX, FrozenDelta, FrozenMoney
from salesflow.domain.values import minor_digits, round_money, same_currency
from salesflow.errors import CurrencyMismatch, ValidationError

AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NAIVE = dt.datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - naive on purpose


def wrong(value: object) -> Any:
    """``value`` typed as Any: the tests hand the constructors what mypy would refuse."""
    return value


def refused(function: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    """Call ``function(*args, **kwargs)``; it must raise ``ValidationError``; return the
    message."""
    with pytest.raises(ValidationError) as error:
        function(*args, **kwargs)
    return str(error.value)


def stages(*extra: Stage) -> tuple[Stage, ...]:
    return (
        Stage("lead", "Lead", 10),
        *extra,
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    )


#: Valid keyword arguments for each value class; the tests change one at a time.
VALID: dict[type, dict[str, Any]] = {
    StageAction: {
        "key": "call",
        "title": "Call the customer",
        "kind": ActionKind.CALENDAR,
        "required": True,
        "auto_create": True,
        "activity_kind": ActivityKind.MEETING,
        "due_after": relativedelta(days=2, hour=9),
        "track_outcome": True,
        "template": "offer",
        "event": None,
    },
    Stage: {
        "key": "lead",
        "name": "Lead",
        "probability": 20,
        "kind": StageKind.OPEN,
        "actions": (StageAction("call", "Call"),),
        "rot_after": dt.timedelta(days=14),
        "requires": ("customer",),
    },
    Process: {
        "key": "sales",
        "name": "Sales",
        "stages": stages(),
        "currency": "EUR",
        "auto_advance": True,
        "cancel_pending": CancelPolicy.KEEP,
        "allow_backward": False,
        "allow_skip": False,
        "require_customer": True,
        "require_loss_reason": True,
        "loss_reasons": ("price", "timing"),
    },
    Individual: {"id": "p-1", "name": "Pat Doe"},
    Organization: {"id": "org-1", "name": "Acme GmbH"},
    Related: {"role": "contact", "id": "p-1", "name": "Pat Doe"},
    Note: {"text": "First call went well", "author": "ann", "at": AT},
    LineItem: {
        "description": "Consulting",
        "quantity": Decimal(3),
        "unit_price": Money("120.50", "EUR"),
        "discount_percent": Decimal(10),
        "service_code": "S-1",
        "id": "line-1",
    },
}
RECORDS = {
    StageAction: "StageAction 'call'",
    Stage: "Stage 'lead'",
    Process: "Process 'sales'",
    Individual: "Individual 'p-1'",
    Organization: "Organization 'org-1'",
    Related: "Related 'p-1'",
    Note: "Note",
    LineItem: "LineItem 'line-1'",
}


def build(cls: type, **changes: Any) -> Any:
    return cls(**{**VALID[cls], **changes})


def test_the_valid_arguments_build() -> None:
    for cls, arguments in VALID.items():
        assert attrs.asdict(cls(**arguments), recurse=False).keys() == arguments.keys()


# -- collections ---------------------------------------------------------------------


def test_a_lone_action_is_one_item() -> None:
    action = StageAction("call", "Call")
    assert Stage("lead", "Lead", 10, actions=action).actions == (action,)


def test_a_lone_string_is_one_loss_reason_and_one_gate() -> None:
    assert build(Process, loss_reasons="price").loss_reasons == ("price",)
    assert Stage("lead", "Lead", 10, requires="customer").requires == ("customer",)


def test_lists_and_other_iterables_become_tuples() -> None:
    action = StageAction("call", "Call")
    assert build(Process, stages=list(stages())).stages == stages()
    assert Stage("lead", "Lead", 10, actions=[action]).actions == (action,)
    assert Stage("lead", "Lead", 10, actions=iter([action])).actions == (action,)
    assert Stage("lead", "Lead", 10, requires=["owner"]).requires == ("owner",)
    assert build(Process, loss_reasons=["price"]).loss_reasons == ("price",)


def test_a_process_without_a_sequence_of_stages_is_refused() -> None:
    assert refused(Process, "sales", "Sales", wrong(None)).startswith(
        "Process 'sales'.stages: expected a sequence of Stage values"
    )
    message = refused(build, Process, stages=[*stages(), "lead"])
    assert message.startswith("Process 'sales'.stages: expected Stage values")


@pytest.mark.parametrize(
    ("cls", "field", "item"),
    [
        (Stage, "actions", "call"),
        (Stage, "requires", 5),
        (Process, "loss_reasons", 5),
    ],
)
def test_a_collection_of_the_wrong_items_is_refused(cls: type, field: str, item: object) -> None:
    for value in (item, [item], {item: 1}, b"customer"):
        assert refused(build, cls, **{field: value}).startswith(f"{RECORDS[cls]}.{field}:")


def test_an_action_list_read_from_a_generator_is_checked_as_read() -> None:
    items = (x for x in [StageAction("call", "Call"), wrong("call")])
    message = refused(Stage, "lead", "Lead", 10, actions=items)
    assert message.startswith("Stage 'lead'.actions: expected StageAction values")


# -- rot_after -----------------------------------------------------------------------


def test_rot_after_must_be_a_timedelta() -> None:
    message = refused(Stage, "lead", "Lead", 10, rot_after=wrong(5))
    assert message == "Stage 'lead'.rot_after: expected a timedelta, got 5"
    refused(Stage, "lead", "Lead", 10, rot_after=wrong(relativedelta(days=3)))


def test_rot_after_must_be_positive() -> None:
    for delta in (dt.timedelta(0), dt.timedelta(seconds=-1)):
        message = refused(Stage, "lead", "Lead", 10, rot_after=delta)
        assert message.startswith("Stage 'lead'.rot_after: must be a positive timedelta")
    assert Stage("lead", "Lead", 10, rot_after=None).rot_after is None
    assert Stage("lead", "Lead", 10, rot_after=dt.timedelta(seconds=1)).rot_after


# -- flags ---------------------------------------------------------------------------

FLAGS = [
    (StageAction, "required"),
    (StageAction, "auto_create"),
    (StageAction, "track_outcome"),
    (Process, "auto_advance"),
    (Process, "allow_backward"),
    (Process, "allow_skip"),
    (Process, "require_customer"),
    (Process, "require_loss_reason"),
]


@pytest.mark.parametrize(("cls", "field"), FLAGS)
def test_flags_must_be_real_booleans(cls: type, field: str) -> None:
    for value in ("yes", "no", 1, 0, None, 1.0):
        message = refused(build, cls, **{field: value})
        assert message == f"{RECORDS[cls]}.{field}: expected True or False, got {value!r}"
    for value in (True, False):
        assert getattr(build(cls, **{field: value}), field) is value


# -- enums ---------------------------------------------------------------------------

ENUMS = [
    (StageAction, "kind", ActionKind),
    (StageAction, "activity_kind", ActivityKind),
    (Stage, "kind", StageKind),
    (Process, "cancel_pending", CancelPolicy),
]


@pytest.mark.parametrize(("cls", "field", "kind"), ENUMS)
def test_enum_fields_take_the_member_or_its_value_and_keep_the_member(
    cls: type, field: str, kind: type[enum.Enum]
) -> None:
    for member in kind:
        changes: dict[str, Any] = {field: member.value}
        if cls is StageAction:  # only CALENDAR actions auto-create; EVENTs need an event
            changes |= {"auto_create": False, "event": "webinar"}
        if cls is Stage and member is StageKind.WON:
            changes["probability"] = 100
        assert getattr(build(cls, **changes), field) is member
        assert getattr(build(cls, **{**changes, field: member}), field) is member


@pytest.mark.parametrize(("cls", "field", "kind"), ENUMS)
def test_enum_fields_refuse_anything_else(cls: type, field: str, kind: type[enum.Enum]) -> None:
    first = next(iter(kind))
    for value in (first.value.upper(), first.name, 0, None, Status.OPEN, ActivityStatus.DONE):
        if isinstance(value, kind):
            continue
        message = refused(build, cls, **{field: value})
        assert message.startswith(f"{RECORDS[cls]}.{field}: expected a {kind.__name__}")


# -- names and text ------------------------------------------------------------------

NAMES = [
    (StageAction, "key"),
    (StageAction, "title"),
    (Stage, "key"),
    (Stage, "name"),
    (Process, "key"),
    (Process, "name"),
    (Individual, "id"),
    (Individual, "name"),
    (Organization, "id"),
    (Organization, "name"),
    (Related, "role"),
    (Related, "id"),
]
BAD_NAMES = ["", "   ", "\t\n", "a\ud800b", "a\x00b", "x" * (NAME_MAX + 1), 5, None, b"key"]


@pytest.mark.parametrize(("cls", "field"), NAMES)
def test_keys_names_titles_and_ids_must_be_names(cls: type, field: str) -> None:
    for value in BAD_NAMES:
        message = refused(build, cls, **{field: value})
        assert message.startswith(cls.__name__)
        assert f".{field}: " in message
    assert getattr(build(cls, **{field: "x" * NAME_MAX}), field) == "x" * NAME_MAX


@pytest.mark.parametrize(
    ("cls", "field"),
    [(Note, "author"), (LineItem, "service_code"), (LineItem, "id")],
)
def test_optional_names_are_none_or_names(cls: type, field: str) -> None:
    assert getattr(build(cls, **{field: None}), field) is None
    for value in BAD_NAMES:
        if value is None:
            continue
        message = refused(build, cls, **{field: value})
        assert f".{field}: " in message


def test_the_name_of_a_related_record_may_be_blank_text() -> None:
    assert Related("contact", "p-1").name == ""
    assert Related("contact", "p-1", "  ").name == ""  # kept without surrounding blanks
    assert Related("  contact ", "p-1", " Pat ") == Related("contact", "p-1", "Pat")
    for value in (None, 5, "a\x00", "a\ud800", "x" * (NAME_MAX + 1)):
        assert refused(Related, "contact", "p-1", value).startswith("Related 'p-1'.name: ")


def test_customer_names_are_kept_without_surrounding_blanks() -> None:
    assert Individual("c-1", "  Ann  ") == Individual("c-1", "Ann")
    assert Organization("c-2", "\tAcme Ltd ").name == "Acme Ltd"
    assert refused(Organization, "c-2", "   ").startswith("Organization 'c-2'.name: ")


@pytest.mark.parametrize("field", ["template", "event"])
def test_template_and_event_are_optional_text(field: str) -> None:
    assert getattr(build(StageAction, **{field: None}), field) is None
    assert getattr(build(StageAction, **{field: "open-day"}), field) == "open-day"
    for value in (5, b"x", ["x"], "a\x00", "a\ud800", "x" * (NAME_MAX + 1)):
        message = refused(build, StageAction, **{field: value})
        assert message.startswith(f"StageAction 'call'.{field}: ")


def test_note_text_is_text_up_to_text_max() -> None:
    assert Note("", None, AT).text == ""
    assert len(Note("x" * TEXT_MAX, None, AT).text) == TEXT_MAX
    for value in ("x" * (TEXT_MAX + 1), None, 5, "a\x00", "a\ud800"):
        assert refused(Note, value, None, AT).startswith("Note.text: ")


def test_line_item_description_is_text() -> None:
    assert build(LineItem, description="").description == ""
    for value in (None, 5, "a\x00", "x" * (TEXT_MAX + 1)):
        message = refused(build, LineItem, description=value)
        assert message.startswith("LineItem 'line-1'.description: ")


def test_note_at_is_an_aware_datetime() -> None:
    assert "timezone-aware" in refused(Note, "Hi", "ann", NAIVE)
    for value in (None, "2026-03-02T09:00:00+00:00", AT.date(), 0):
        assert refused(Note, "Hi", "ann", value).startswith("Note.at: ")


# -- due_after -----------------------------------------------------------------------


def test_due_after_is_kept_immutable_and_defaults_to_one_day() -> None:
    action = StageAction("call", "Call", ActionKind.CALENDAR)
    assert action.due_after == relativedelta(days=1)
    given_delta = relativedelta(days=2, hour=9)
    kept = StageAction("call", "Call", due_after=given_delta).due_after
    assert isinstance(kept, FrozenDelta)
    assert kept == given_delta
    for due_after in (action.due_after, kept):
        with pytest.raises(TypeError):
            due_after.days = 5
    for value in (dt.timedelta(days=1), 1, None, "1d"):
        assert refused(StageAction, "call", "Call", due_after=value).startswith(
            "StageAction 'call'.due_after: expected a dateutil relativedelta"
        )


# -- money and amounts ---------------------------------------------------------------


def test_unit_price_is_checked_money_kept_immutable() -> None:
    item = build(LineItem, unit_price=Money("9.99", "USD"))
    assert isinstance(item.unit_price, FrozenMoney)
    assert item.unit_price == Money("9.99", "USD")
    with pytest.raises(TypeError):
        item.unit_price.amount = Decimal(1)  # type: ignore[misc]
    for value in (
        Money("-1", "USD"),
        Money(checks.AMOUNT_LIMIT, "USD"),
        Money("0.0000001", "USD"),
        Money("NaN", "USD"),
        Decimal(5),
        "9.99 USD",
        None,
    ):
        message = refused(build, LineItem, unit_price=value)
        assert message.startswith("LineItem 'line-1'.unit_price: ")


def test_quantity_is_a_non_negative_decimal_amount() -> None:
    assert build(LineItem, quantity=2).quantity == Decimal(2)
    assert build(LineItem, quantity="2.5").quantity == Decimal("2.5")
    assert type(build(LineItem, quantity=2).quantity) is Decimal
    for value in (-1, 1.5, "two", None, True, Decimal("Infinity"), checks.AMOUNT_LIMIT):
        message = refused(build, LineItem, quantity=value)
        assert message.startswith("LineItem 'line-1'.quantity: ")


def test_discount_percent_is_an_amount_from_0_to_100() -> None:
    assert build(LineItem, discount_percent=0).discount_percent == 0
    assert build(LineItem, discount_percent="100").discount_percent == 100
    assert LineItem("x", 1, Money(1, "USD")).discount_percent == 0
    for value in (Decimal("100.01"), 101, -1, 0.5, None, "ten"):
        message = refused(build, LineItem, discount_percent=value)
        assert message.startswith("LineItem 'line-1'.discount_percent: ")


def test_currency_must_be_a_known_code() -> None:
    assert build(Process, currency="JPY").currency == "JPY"
    for value in ("ZZZ", "usd", "", None, 840):
        message = refused(build, Process, currency=value)
        assert message.startswith("Process 'sales'.currency: ")


def test_probability_is_a_whole_number_from_0_to_100() -> None:
    for value in (-1, 101, True, 50.0, "50", None):
        message = refused(Stage, "lead", "Lead", value)
        assert message.startswith("Stage 'lead'.probability: expected a whole number 0..100")


# -- rules across fields (kept from before) -----------------------------------------


def test_only_calendar_actions_auto_create() -> None:
    for kind in (ActionKind.LETTER, ActionKind.MANUAL):
        message = refused(StageAction, "call", "Call", kind, auto_create=True)
        assert message.startswith("StageAction 'call'.auto_create: only CALENDAR")


def test_an_event_action_names_its_event() -> None:
    for event in (None, "", "  "):
        message = refused(StageAction, "fair", "Fair", ActionKind.EVENT, event=event)
        assert message.startswith("StageAction 'fair'.event: an EVENT action must name")
    assert StageAction("fair", "Fair", "event", event="open-day").kind is ActionKind.EVENT


def test_loss_reasons_are_unique_names() -> None:
    message = refused(build, Process, loss_reasons=("price", "price"))
    assert message == "Process 'sales'.loss_reasons: must be unique, repeated: ['price']"
    for reason in ("", " ", "a\x00"):
        refused(build, Process, loss_reasons=("price", reason))


def test_action_keys_are_unique_within_a_stage() -> None:
    twice = (StageAction("call", "Call"), StageAction("call", "Call again"))
    message = refused(Stage, "lead", "Lead", 10, actions=twice)
    assert message == "Stage 'lead'.actions: action keys must be unique, repeated: ['call']"


def test_gates_name_opportunity_fields() -> None:
    for field in ("colour", "", "a\ud800"):
        message = refused(Stage, "lead", "Lead", 10, requires=("customer", field))
        assert message.endswith(f"do not have: {[field]!r}")


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        (Stage("lead", "Again", 20), "stage keys must be unique, repeated: ['lead']"),
        (Stage("won2", "Won too", 100, StageKind.WON), "needs exactly one WON stage, has 2"),
        (Stage("late", "Late", 10, StageKind.LOST), "LOST stage 'late' must have probability 0"),
    ],
)
def test_the_stages_of_a_process_follow_its_rules(extra: Stage, rule: str) -> None:
    message = refused(build, Process, stages=stages(extra))
    assert message == f"Process 'sales'.stages: {rule}"


def test_a_key_is_checked_before_it_names_the_record() -> None:
    assert refused(Stage, wrong(5), "Lead", 10).startswith("Stage.key: expected text")
    assert refused(Stage, "  ", "Lead", wrong(None)) == "Stage.key: must not be blank"


# -- helpers other modules import ----------------------------------------------------


def test_the_shared_helpers_keep_working() -> None:
    assert checks.aware(AT, "X") is AT
    assert "timezone-aware" in refused(checks.aware, NAIVE, "X.at")
    assert refused(checks.aware, wrong(None), "X.at").startswith("X.at: ")
    assert checks.currency("EUR", "X") == "EUR"
    assert refused(checks.currency, "ZZZ", "X.currency") == (
        "X.currency: unknown currency code 'ZZZ'"
    )
    assert refused(checks.currency, wrong(None), "X.currency").startswith("X.currency: ")
    price = Money("1.50", "USD")
    assert checks.money(price, "X") == price
    assert checks.money(Money(-1, "USD"), "X", negative=True) == Money(-1, "USD")
    assert "negative" in refused(checks.money, Money(-1, "USD"), "X.value")
    assert refused(checks.money, 5, "X.value").startswith("X.value: expected Money")
    assert isinstance(round_money(price), FrozenMoney)
    assert minor_digits("USD") == 2
    assert minor_digits("JPY") == 0
    assert round_money(Money("1.005", "USD")) == Money("1.01", "USD")
    same_currency(price, Money(2, "USD"), "X")
    with pytest.raises(CurrencyMismatch):
        same_currency(price, Money(2, "EUR"), "X")


def test_the_builtin_processes_still_build() -> None:
    assert [s.probability for s in processes.STANDARD.stages] == [15, 30, 50, 75, 100, 0]
    assert [s.key for s in processes.SIMPLE.stages] == [
        "lead",
        "pitching",
        "quoting",
        "closing",
        "won",
        "lost",
    ]


# -- any wrong argument: only ValidationError ----------------------------------------

_scalars: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=5),
    st.text(st.characters(codec=None, min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
    st.sampled_from(["", " ", "\x00", "a\x00b", "x" * (NAME_MAX + 1), "\ud800"]),
    # strings that some fields take: enum values, gate fields, currency codes
    st.sampled_from(
        [m.value for e in (ActionKind, ActivityKind, StageKind, CancelPolicy) for m in e]
        + ["customer", "USD", "ZZZ", "12.5", "-3", "NaN", "1e30"]
    ),
    st.binary(max_size=3),
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.timedeltas(),
    st.builds(relativedelta, days=st.integers(-5, 5)),
    st.builds(Money, st.decimals(allow_nan=True, allow_infinity=True), st.just("USD")),
    st.sampled_from([*ActionKind, *StageKind, *Status, *CancelPolicy, *ActivityKind]),
    st.builds(object),
    st.just(StageAction("call", "Call")),
    st.just(Stage("lead", "Lead", 10)),
    st.just(processes.STANDARD),
)
wrong_values: st.SearchStrategy[object] = st.one_of(
    _scalars,
    st.lists(_scalars, max_size=3),
    st.lists(_scalars, max_size=3).map(tuple),
    st.frozensets(st.sampled_from(["customer", "owner", "price"])),
    st.dictionaries(st.text(max_size=3), _scalars, max_size=2),
)


@pytest.mark.parametrize("cls", list(VALID), ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_any_wrong_argument_gives_a_validation_error_or_a_valid_value(
    cls: type, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from([f.name for f in attrs.fields(cls)]), label="field")
    value = data.draw(wrong_values, label="value")
    try:
        built = build(cls, **{field: value})
    except ValidationError as error:
        message = str(error)
        assert message.startswith(cls.__name__)
        assert message.encode("utf-8")  # the message itself is valid text
    else:
        attrs.validate(built)  # what was kept passes the checks again
        assert attrs.evolve(built) == built
        hash(built)
