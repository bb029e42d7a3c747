"""A write that waited out the repository's lock timeout is a ``LockTimeout``: still a
``ConcurrencyError``, but ``SalesFlow`` does not run the command again, so the caller
hears after about one timeout rather than one per retry."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from moneyed import Money

from salesflow import SalesFlow
from salesflow.errors import ConcurrencyError, LockTimeout
from salesflow.sqlite import SQLiteRepository

#: The repositories' lock timeout in these tests, in seconds.
TIMEOUT = 0.3
#: With the default 20 retries, a retried lock wait would take 21 timeouts.
RETRIES = 20


def test_lock_timeout_is_a_concurrency_error() -> None:
    assert issubclass(LockTimeout, ConcurrencyError)


def test_a_sqlite_writer_locked_out_hears_after_one_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    repository = SQLiteRepository(path, timeout=TIMEOUT)
    app = SalesFlow(repository, retries=RETRIES)
    deal = app.create_opportunity(title="Locked out", value=Money("10", "EUR")).opportunity
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # the file's write lock, held
        started = time.monotonic()
        with pytest.raises(LockTimeout, match=r"stayed locked by another writer for 0\.3 s"):
            app.update(deal.id, description="waits", actor="ann")
        waited = time.monotonic() - started
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()
    assert TIMEOUT * 0.9 <= waited < TIMEOUT * 5, waited
    # Once the lock is free, the same command goes through.
    app.update(deal.id, description="went through", actor="ann")
    assert app.get(deal.id).description == "went through"
    repository.close()


@pytest.mark.postgres
def test_a_postgres_writer_locked_out_hears_after_one_timeout(
    postgres_dsn: str, postgres_schema: str
) -> None:
    from salesflow.postgres import PostgresRepository

    workspace = f"w-{uuid.uuid4().hex}"
    repository = PostgresRepository(
        postgres_dsn, workspace=workspace, schema=postgres_schema, timeout=TIMEOUT
    )
    try:
        app = SalesFlow(repository, retries=RETRIES)
        deal = app.create_opportunity(title="Locked out", value=Money("10", "EUR")).opportunity
        with psycopg.connect(postgres_dsn) as blocker:
            blocker.execute(  # the opportunity's row, locked until the rollback
                f'SELECT 1 FROM "{postgres_schema}".opportunities '
                "WHERE workspace = %s AND id = %s FOR UPDATE",
                (workspace, deal.id),
            )
            started = time.monotonic()
            with pytest.raises(LockTimeout, match=r"lock timeout \(0\.3 s\).*55P03"):
                app.update(deal.id, description="waits", actor="ann")
            waited = time.monotonic() - started
            blocker.rollback()
        assert TIMEOUT * 0.9 <= waited < TIMEOUT * 5, waited
        app.update(deal.id, description="went through", actor="ann")
        assert app.get(deal.id).description == "went through"
    finally:
        repository.close()
