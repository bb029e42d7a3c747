"""Fixtures of the command-line tests: a quiet, English, UTC environment in a fresh
folder, and ``run(...)``, which runs one command line in-process on the test's clock.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from salesflow import FixedClock, SalesFlow
from salesflow.cli import main
from salesflow.sqlite import SQLiteRepository


@attrs.frozen
class Outcome:
    """What one command line did: its exit status and what it printed."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Run = Callable[..., Outcome]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """English texts, UTC, no colour preferences, in an empty folder of the test's."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE", "NO_COLOR", "SALESFLOW_TRACEBACK"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(clock: FixedClock) -> Run:
    """``run("board", "--db", path)``: the command line run by ``main`` on the test's
    clock; ``stdout=`` may pass a stream of the test's (one that says it is a terminal)."""

    def run_one(*argv: str, stdout: io.StringIO | None = None) -> Outcome:
        out = stdout if stdout is not None else io.StringIO()
        err = io.StringIO()
        code = main(list(argv), clock=clock, stdout=out, stderr=err)
        return Outcome(code, out.getvalue(), err.getvalue())

    return run_one


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo pipeline made once per session at the tests' start moment."""
    from tests.conftest import START

    folder = tmp_path_factory.mktemp("demo")
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--timezone", "UTC", "--locale", "en_US", "demo", "--db", str(folder / "demo.db")],
        clock=FixedClock(START),
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    return folder / "demo.db"


@pytest.fixture
def demo(demo_file: Path, tmp_path: Path) -> Path:
    """A copy of the demo pipeline of the test's own, in the test's folder."""
    target = tmp_path / "pipeline.db"
    shutil.copyfile(demo_file, target)
    return target


def open_app(path: Path, clock: FixedClock) -> SalesFlow:
    """A ``SalesFlow`` on a pipeline file (the caller closes ``app.repository``)."""
    return SalesFlow(SQLiteRepository(path), clock=clock)


def count(path: Path) -> int:
    """How many opportunities the pipeline file holds."""
    repository = SQLiteRepository(path)
    try:
        return SalesFlow(repository).search(limit=0).total
    finally:
        repository.close()
