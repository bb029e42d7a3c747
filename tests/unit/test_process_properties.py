"""Properties of the values a host app configures: processes and their validation
rules, money, and the refusal of naive datetimes (api.md section 1)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moneyed import get_currency
from moneyed.classes import CurrencyDoesNotExist

from salesflow import (
    ActionKind,
    ActivityStatus,
    FixedClock,
    Money,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.domain.process import GATEABLE_FIELDS
from salesflow.domain.values import round_money
from salesflow.errors import ValidationError
from tests.conftest import START
from tests.unit.engine_strategies import GATES, ProcessParts, keys, process_parts

naive_datetimes = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),  # noqa: DTZ001 - naive on purpose
    max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001 - naive on purpose
)


def _is_currency(code: str) -> bool:
    try:
        get_currency(code)
    except CurrencyDoesNotExist:
        return False
    return True


def _refused(parts: ProcessParts, stages: list[Stage] | tuple[Stage, ...]) -> str:
    """Build the process from ``parts`` with ``stages``; return the error message."""
    with pytest.raises(ValidationError) as refused:
        parts.build(stages=tuple(stages))
    return str(refused.value)


# -- valid processes -----------------------------------------------------------------


@given(process_parts(gates=True))
def test_a_valid_process_builds_and_keeps_its_stages_in_order(parts: ProcessParts) -> None:
    process = parts.build()

    assert [s.key for s in process.stages] == [s.key for s in parts.stages]
    assert process.stages == parts.stages
    assert process.won_stage.kind is StageKind.WON
    assert process.won_stage.probability == 100
    assert process.first_stage == next(s for s in parts.stages if s.kind is StageKind.OPEN)
    for index, stage in enumerate(parts.stages):
        assert process.stage(stage.key) is process.stages[index]
        assert process.index(stage.key) == index


@given(process_parts())
def test_a_defined_process_gives_each_new_opportunity_its_stages_and_actions(
    parts: ProcessParts,
) -> None:
    process = parts.build()
    app = SalesFlow(clock=FixedClock(START))
    app.define_process(process)

    assert app.process(process.key) == process
    opportunity = app.create_opportunity(title="Deal", process=process.key).opportunity
    assert opportunity is not None
    first = process.first_stage
    assert opportunity.stage == first.key
    assert opportunity.probability == first.probability
    assert opportunity.value == Money(0, process.currency)
    copied = [(a.stage, a.spec) for a in opportunity.actions]
    assert copied == [(s.key, a) for s in process.stages for a in s.actions]


# -- each validation rule, broken alone ---------------------------------------------


@given(process_parts(), st.data())
def test_duplicate_stage_keys_are_refused(parts: ProcessParts, data: st.DataObject) -> None:
    stages = list(parts.stages)
    i, j = data.draw(st.lists(st.integers(0, len(stages) - 1), min_size=2, max_size=2, unique=True))
    stages[j] = attrs.evolve(stages[j], key=stages[i].key)

    message = _refused(parts, stages)
    assert f"Process {parts.key!r}" in message
    assert "unique" in message
    assert repr(stages[i].key) in message


@given(process_parts())
def test_a_process_without_an_open_stage_is_refused(parts: ProcessParts) -> None:
    message = _refused(parts, [s for s in parts.stages if s.kind is not StageKind.OPEN])
    assert f"Process {parts.key!r}" in message
    assert "OPEN" in message


@given(process_parts())
def test_a_process_without_a_won_stage_is_refused(parts: ProcessParts) -> None:
    message = _refused(parts, [s for s in parts.stages if s.kind is not StageKind.WON])
    assert f"Process {parts.key!r}" in message
    assert "WON" in message


@given(process_parts(), st.data())
def test_a_process_with_two_won_stages_is_refused(parts: ProcessParts, data: st.DataObject) -> None:
    stages = list(parts.stages)
    position = data.draw(st.integers(0, len(stages)))
    # "second-won" cannot clash: generated keys have no hyphen.
    stages.insert(position, Stage("second-won", "Won again", 100, StageKind.WON))

    message = _refused(parts, stages)
    assert f"Process {parts.key!r}" in message
    assert "WON" in message


@given(process_parts())
def test_a_process_without_a_lost_stage_is_refused(parts: ProcessParts) -> None:
    message = _refused(parts, [s for s in parts.stages if s.kind is not StageKind.LOST])
    assert f"Process {parts.key!r}" in message
    assert "LOST" in message


@given(process_parts(), st.integers(0, 99))
def test_a_won_stage_below_100_percent_is_refused(parts: ProcessParts, probability: int) -> None:
    won = parts.of_kind(StageKind.WON)[0]
    stages = [attrs.evolve(s, probability=probability) if s is won else s for s in parts.stages]

    message = _refused(parts, stages)
    assert f"Process {parts.key!r}" in message
    assert repr(won.key) in message
    assert "100" in message


@given(process_parts(), st.integers(1, 100), st.data())
def test_a_lost_stage_above_0_percent_is_refused(
    parts: ProcessParts, probability: int, data: st.DataObject
) -> None:
    lost = data.draw(st.sampled_from(parts.of_kind(StageKind.LOST)))
    stages = [attrs.evolve(s, probability=probability) if s is lost else s for s in parts.stages]

    message = _refused(parts, stages)
    assert f"Process {parts.key!r}" in message
    assert repr(lost.key) in message
    assert "probability 0" in message


@given(
    keys,
    st.one_of(st.integers(max_value=-1), st.integers(min_value=101)),
    st.sampled_from(StageKind),
)
def test_a_stage_probability_outside_0_to_100_is_refused(
    key: str, probability: int, kind: StageKind
) -> None:
    with pytest.raises(ValidationError) as refused:
        Stage(key, "Somewhere", probability, kind)
    message = str(refused.value)
    assert f"Stage {key!r}" in message
    assert "probability" in message
    assert str(probability) in message


@given(keys, st.integers(0, 100))
def test_every_stage_probability_from_0_to_100_is_accepted(key: str, probability: int) -> None:
    assert Stage(key, "Somewhere", probability).probability == probability


@given(process_parts(), st.data())
def test_duplicate_action_keys_within_a_stage_are_refused(
    parts: ProcessParts, data: st.DataObject
) -> None:
    stage = data.draw(st.sampled_from(parts.stages))
    key = data.draw(keys)
    twin = StageAction(key, "Again", ActionKind.MANUAL)
    actions = (*stage.actions, twin) if any(a.key == key for a in stage.actions) else None
    if actions is None:
        actions = (*stage.actions, StageAction(key, "Once"), twin)

    with pytest.raises(ValidationError) as refused:
        attrs.evolve(stage, actions=actions)
    message = str(refused.value)
    assert f"Stage {stage.key!r}" in message
    assert "unique" in message
    assert repr(key) in message


@given(process_parts(), st.data())
def test_the_same_action_key_in_two_stages_is_allowed(
    parts: ProcessParts, data: st.DataObject
) -> None:
    stages = list(parts.stages)
    i, j = data.draw(st.lists(st.integers(0, len(stages) - 1), min_size=2, max_size=2, unique=True))
    shared = StageAction("shared", "In both stages")
    for index in (i, j):
        actions = tuple(a for a in stages[index].actions if a.key != "shared")
        stages[index] = attrs.evolve(stages[index], actions=(*actions, shared))

    process = parts.build(stages=tuple(stages))
    assert shared in process.stages[i].actions
    assert shared in process.stages[j].actions


@given(
    process_parts(),
    st.from_regex(r"[A-Z]{3}", fullmatch=True).filter(lambda c: not _is_currency(c)),
)
def test_an_unknown_currency_code_is_refused(parts: ProcessParts, code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parts.build(options={**parts.options, "currency": code})
    message = str(refused.value)
    assert f"Process {parts.key!r}" in message
    assert "currency" in message
    assert repr(code) in message


@given(
    keys,
    st.text(min_size=1, max_size=12).filter(lambda name: name not in GATEABLE_FIELDS),
    st.lists(st.sampled_from(GATES), unique=True),
)
def test_a_gate_on_a_field_opportunities_do_not_have_is_refused(
    key: str, field: str, known: list[str]
) -> None:
    with pytest.raises(ValidationError) as refused:
        Stage(key, "Gated", 50, requires=(*known, field))
    message = str(refused.value)
    assert f"Stage {key!r}" in message
    assert "requires" in message
    assert message.endswith(repr([field]))  # only the unknown field is named


@given(keys, st.lists(st.sampled_from(sorted(GATEABLE_FIELDS)), unique=True))
def test_a_gate_on_opportunity_fields_is_accepted(key: str, fields: list[str]) -> None:
    assert Stage(key, "Gated", 50, requires=fields).requires == tuple(fields)


# -- money -----------------------------------------------------------------------------

negative_amounts = st.decimals(
    max_value=Decimal("-0.0001"), min_value=Decimal("-1e12"), allow_nan=False, places=4
)
amounts = st.decimals(
    min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False
)


@given(negative_amounts, st.sampled_from(["value", "annual_value"]))
def test_a_negative_deal_value_is_refused_when_creating(amount: Decimal, field: str) -> None:
    app = SalesFlow(clock=FixedClock(START))
    fields: dict[str, Any] = {field: Money(amount, "USD")}

    with pytest.raises(ValidationError) as refused:
        app.create_opportunity(title="Deal", **fields)

    assert field in str(refused.value)
    assert "negative" in str(refused.value)
    assert app.search().total == 0


@given(negative_amounts, st.sampled_from(["value", "annual_value"]))
def test_a_negative_deal_value_is_refused_when_updating(amount: Decimal, field: str) -> None:
    app = SalesFlow(clock=FixedClock(START))
    created = app.create_opportunity(title="Deal", value=Money(10, "USD")).opportunity
    assert created is not None
    history = app.history(created.id)
    fields: dict[str, Any] = {field: Money(amount, "USD")}

    with pytest.raises(ValidationError) as refused:
        app.update(created.id, **fields)

    assert f"Opportunity {created.id!r}" in str(refused.value)
    assert field in str(refused.value)
    assert app.get(created.id) == created
    assert app.history(created.id) == history


@given(st.decimals(min_value=0, max_value=Decimal("1e12"), allow_nan=False, places=2))
def test_a_deal_value_of_zero_or_more_is_kept(amount: Decimal) -> None:
    app = SalesFlow(clock=FixedClock(START))
    created = app.create_opportunity(title="Deal", value=Money(amount, "USD")).opportunity
    assert created is not None
    assert app.get(created.id).value == Money(amount, "USD")


@given(amounts, st.sampled_from([("USD", "0.01"), ("JPY", "1")]))
def test_round_money_rounds_half_up_to_the_minor_unit(
    amount: Decimal, currency: tuple[str, str]
) -> None:
    code, unit = currency
    rounded = round_money(Money(amount, code))

    assert rounded.currency.code == code
    assert rounded.amount == amount.quantize(Decimal(unit), rounding=ROUND_HALF_UP)
    assert rounded.amount.as_tuple().exponent == Decimal(unit).as_tuple().exponent
    assert abs(rounded.amount - amount) <= Decimal(unit) / 2


@given(st.integers(-(10**9), 10**9), st.sampled_from([("USD", "0.01"), ("JPY", "1")]))
def test_round_money_rounds_an_exact_half_away_from_zero(
    units: int, currency: tuple[str, str]
) -> None:
    code, unit = currency
    step = Decimal(unit)
    half = units * step + (step / 2 if units >= 0 else -step / 2)

    rounded = round_money(Money(half, code)).amount

    assert abs(rounded) == abs(units * step) + step
    assert (rounded > 0) == (units >= 0)


# -- naive datetimes ------------------------------------------------------------------


@given(naive_datetimes)
def test_a_fixed_clock_refuses_a_naive_datetime(moment: dt.datetime) -> None:
    with pytest.raises(ValidationError) as refused:
        FixedClock(moment)
    assert "timezone" in str(refused.value)

    clock = FixedClock(START)
    with pytest.raises(ValidationError):
        clock.set(moment)
    assert clock.now() == START


@given(naive_datetimes, st.booleans())
def test_scheduling_an_activity_due_at_a_naive_datetime_is_refused(
    due: dt.datetime, on_an_opportunity: bool
) -> None:
    app = SalesFlow(clock=FixedClock(START))
    opportunity_id = None
    if on_an_opportunity:
        created = app.create_opportunity(title="Deal").opportunity
        assert created is not None
        opportunity_id = created.id
    before = app.history(opportunity_id) if opportunity_id else ()

    with pytest.raises(ValidationError) as refused:
        app.schedule_activity(title="Call", due=due, opportunity_id=opportunity_id)

    assert "timezone" in str(refused.value)
    assert app.activities() == []
    if opportunity_id is not None:
        assert app.history(opportunity_id) == before
    aware = due.replace(tzinfo=dt.UTC)
    scheduled = app.schedule_activity(title="Call", due=aware, opportunity_id=opportunity_id)
    assert scheduled.due == aware
    assert scheduled.status is ActivityStatus.PLANNED


@given(naive_datetimes)
def test_performing_a_calendar_action_due_at_a_naive_datetime_is_refused(
    due: dt.datetime,
) -> None:
    app = SalesFlow(clock=FixedClock(START))
    app.define_process(
        Process(
            "calls",
            "Calls",
            (
                Stage(
                    "talk", "Talk", 20, actions=(StageAction("call", "Call", ActionKind.CALENDAR),)
                ),
                Stage("won", "Won", 100, StageKind.WON),
                Stage("lost", "Lost", 0, StageKind.LOST),
            ),
        )
    )
    created = app.create_opportunity(title="Deal", process="calls").opportunity
    assert created is not None
    (action,) = created.actions

    with pytest.raises(ValidationError):
        app.perform_action(created.id, action.id, due=due)

    assert app.activities() == []
    assert app.get(created.id) == created
