"""Fixtures of the tests that need a PostgreSQL server, when one is configured.

PostgreSQL tests read ``SALESFLOW_TEST_POSTGRES_DSN``. Without it, or when the server
does not answer, they are skipped with the reason -- except under ``CI=true``, where
either is a failure: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

DSN_VARIABLE = "SALESFLOW_TEST_POSTGRES_DSN"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs PostgreSQL for the storage tests: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of a reachable PostgreSQL server (skip or fail as described above)."""
    dsn = os.environ.get(DSN_VARIABLE, "").strip()
    if not dsn:
        _unavailable(f"{DSN_VARIABLE} is not set")
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        _unavailable(f"PostgreSQL at {DSN_VARIABLE} does not answer: {error}")
    return dsn


@pytest.fixture(scope="session")
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema of its own for this test session, created by the first repository and
    dropped at the end; every test then works in workspaces of its own."""
    import psycopg

    schema = f"salesflow_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def fresh_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name of its own for one test (migration tests), dropped after it."""
    import psycopg

    schema = f"salesflow_test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
