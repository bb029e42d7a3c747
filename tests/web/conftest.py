"""Fixtures of the web board's tests: the package on the import path, a board served
by uvicorn on a free port over a SQLite file, and the browser.

The browser test needs Debian's ``chromium`` and Playwright's Python package. Without
either it is skipped with the reason -- except under ``CI=true``, where that is a
failure: CI must never pass by skipping it (as with PostgreSQL, see
tests/postgres_fixtures.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))

import uvicorn  # noqa: E402
from web_board import create_app, seed_demo  # noqa: E402

from salesflow import SalesFlow  # noqa: E402
from salesflow.sqlite import SQLiteRepository  # noqa: E402

#: Chromium's switches for a container: no sandbox (root, no user namespaces), no GPU,
#: and none of the background traffic a browser makes to the outside world.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true needs the browser test to run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's chromium, once Playwright is importable too (skip or fail
    as described above)."""
    path = shutil.which("chromium")
    if path is None:
        _unavailable("no chromium on PATH (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright's Python package is not installed (pip install -e '.[dev]')")
    return path


@attrs.frozen
class Served:
    """A running board: its address, the app it serves and the file it keeps."""

    url: str
    flow: SalesFlow
    database: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The demo board over a SQLite file, served by uvicorn in a thread."""
    database = tmp_path / "board.db"
    repository = SQLiteRepository(database)
    flow = SalesFlow(repository)
    seed_demo(flow)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        create_app(flow, process="services"), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", flow, database)
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
        repository.close()
