"""Fixtures of the tests that run workers in processes of their own."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.integration.workers import Target


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """Shared storage, in a workspace of this test's own."""
    workspace = f"w-{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "shared.db"), workspace)
    dsn: str = request.getfixturevalue("postgres_dsn")
    schema: str = request.getfixturevalue("postgres_schema")
    return ("postgres", dsn, schema, workspace)
