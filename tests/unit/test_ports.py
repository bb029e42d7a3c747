"""The default ports check what they are given, like every public call."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from salesflow import FixedClock, StaticRates
from salesflow.errors import MissingExchangeRate, ValidationError
from tests.conftest import START


@pytest.mark.parametrize(
    "rates",
    [
        "x",
        {("USD",): Decimal(1)},
        {("USD", "XYZ"): Decimal(1)},
        {("USD", "EUR"): None},
        {("USD", "EUR"): Decimal("NaN")},
        {("USD", "EUR"): Decimal("-1")},
        {("USD", "EUR"): Decimal("1e-30")},
        {("USD", "EUR"): Decimal("1e30")},
        {("GBP", "GBP"): Decimal(2)},
    ],
)
def test_static_rates_refuse_what_they_cannot_use(rates: object) -> None:
    with pytest.raises(ValidationError):
        StaticRates(rates)  # type: ignore[arg-type]


def test_static_rates_derive_inverses() -> None:
    rates = StaticRates({("EUR", "USD"): "1.25"})
    assert rates.rate("USD", "EUR", START.date()) == Decimal("0.8")
    with pytest.raises(MissingExchangeRate):
        rates.rate("USD", "GBP", START.date())


def test_static_rates_given_both_ways_are_used_as_given() -> None:
    # Buying and selling rates may differ; a currency's own rate of 1 may be given.
    rates = StaticRates({("EUR", "GBP"): "0.86", ("GBP", "EUR"): "1.15", ("GBP", "GBP"): 1})
    assert rates.rate("EUR", "GBP", START.date()) == Decimal("0.86")
    assert rates.rate("GBP", "EUR", START.date()) == Decimal("1.15")
    assert rates.rate("GBP", "GBP", START.date()) == 1


def test_a_fixed_clock_refuses_bad_moves() -> None:
    clock = FixedClock(START)
    with pytest.raises(ValidationError):
        clock.advance(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        clock.advance(dt.timedelta(days=4_000_000))
    with pytest.raises(ValidationError):
        clock.set(dt.datetime(2026, 3, 2))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValidationError):
        FixedClock(dt.datetime.max.replace(tzinfo=dt.UTC))
    assert clock.now() == START
