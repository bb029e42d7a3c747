"""Amounts as exact integers of millionths, as the SQL repositories sum them."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow._sql import micro_units

amounts = (
    st.decimals(allow_nan=False, allow_infinity=False)
    | st.decimals(places=6, allow_nan=False, allow_infinity=False)
    | st.integers(-(10**45), 10**45).map(lambda units: Decimal(units).scaleb(-6))
)


def reference(amount: Decimal) -> int | None:
    """Millionths by exact integer arithmetic on the digits; None when not whole."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)))
    shift = exponent + 6
    factor = int(10 ** abs(shift))
    if shift >= 0:
        number *= factor
    elif number % factor:
        return None
    else:
        number //= factor
    return -number if sign else number


@given(amounts)
def test_millionths_are_exact_whatever_the_callers_decimal_context(amount: Decimal) -> None:
    expected = reference(amount)
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN)):
        if expected is None:
            with pytest.raises(ValueError, match="decimal places"):
                micro_units(amount)
        else:
            assert micro_units(amount) == expected


def test_examples() -> None:
    assert micro_units(Decimal("505.10")) == 505_100_000
    assert micro_units(Decimal("-0.000001")) == -1
    assert micro_units(Decimal("1E+30")) == 10**36
    with pytest.raises(ValueError, match="decimal places"):
        micro_units(Decimal("0.0000001"))
    with pytest.raises(ValueError, match="finite"):
        micro_units(Decimal("NaN"))
