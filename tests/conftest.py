"""Shared fixtures and the hypothesis profiles ("ci": no deadline; "fast": few examples).

The PostgreSQL fixtures live in ``tests/postgres_fixtures.py``.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, settings

from salesflow import FixedClock, SalesFlow
from tests.postgres_fixtures import fresh_schema, postgres_dsn, postgres_schema

settings.register_profile(
    "ci", deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.register_profile("fast", deadline=None, max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: A Monday morning, the moment every test starts at unless it says otherwise.
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def app(clock: FixedClock) -> SalesFlow:
    return SalesFlow(clock=clock)


__all__ = ["START", "fresh_schema", "postgres_dsn", "postgres_schema"]
