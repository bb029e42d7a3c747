"""The command line as a whole: help, exit statuses, one-line errors, the console
script in a real process, and a PostgreSQL pipeline."""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from salesflow import FixedClock
from salesflow.cli import _main
from salesflow.sqlite import SQLiteRepository
from tests.cli.conftest import Run

COMMANDS = (
    "demo",
    "board",
    "forecast",
    "stuck",
    "analytics",
    "activities",
    "history",
    "import",
    "export",
    "calendar",
)


def test_help(run: Run) -> None:
    done = run("--help")
    assert done.code == 0
    assert done.out.startswith("usage: salesflow")
    for command in COMMANDS:
        assert command in done.out
    assert "Exit status: 0 done, 1 failed, 2 bad command line." in " ".join(done.out.split())


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(run: Run, command: str, tmp_path: Path) -> None:
    done = run(command, "--help")
    assert done.code == 0
    assert done.out.startswith(f"usage: salesflow {command}")
    assert "--db FILE|DSN" in done.out
    assert "--locale" in done.out
    assert list(tmp_path.iterdir()) == []


def test_version(run: Run) -> None:
    done = run("--version")
    assert done.code == 0
    assert done.out.startswith("salesflow ")


@pytest.mark.parametrize(
    "argv",
    [(), ("frobnicate",), ("--bogus", "board"), ("board", "--owner")],
)
def test_usage_errors_are_one_line_and_status_2(run: Run, argv: tuple[str, ...]) -> None:
    done = run(*argv)
    assert done.code == 2
    assert done.out == ""
    assert done.err.count("\n") == 1
    assert done.err.startswith("salesflow: ")
    assert not done.err.startswith("salesflow: salesflow")  # the program is named once
    assert "--help" in done.err


def test_an_unexpected_error_is_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    SQLiteRepository(tmp_path / "salesflow.db").close()  # an empty pipeline

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("something broke")

    monkeypatch.setattr(_main, "render_board", broken)
    done = run("board")
    assert done.code == 1
    assert done.err == (
        "salesflow: internal error: RuntimeError: something broke "
        "(set SALESFLOW_TRACEBACK=1 to see where)\n"
    )
    monkeypatch.setenv("SALESFLOW_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="something broke"):
        run("board")


def test_a_missing_extra_is_named(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_import = builtins.__import__

    def without(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("icalendar", "salesflow.postgres"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without)
    (tmp_path / "salesflow.db").touch()
    calendar = run("calendar", "--out", "a.ics")
    assert calendar.code == 1
    assert "pip install 'salesflow[calendar]'" in calendar.err
    postgres = run("--db", "postgresql://nowhere/none", "board")
    assert postgres.code == 1
    assert "pip install 'salesflow[postgres]'" in postgres.err


def script() -> str:
    found = Path(sys.executable).parent / "salesflow"
    assert found.is_file(), "the console script is installed with the package"
    return str(found)


def test_the_console_script(tmp_path: Path) -> None:
    env = {**os.environ, "LANG": "C.UTF-8", "TZ": "UTC", "PYTHONWARNINGS": "error"}
    env.pop("LC_ALL", None)
    demo = subprocess.run(
        [script(), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    assert "Standard sales process" in demo.stdout
    board = subprocess.run(
        [script(), "--locale", "nb_NO", "--db", "salesflow-demo.db", "board"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert board.returncode == 0
    assert "Lukket-Vunnet" in board.stdout
    failed = subprocess.run(
        [script(), "history", "x", "--db", "missing.db"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert "Traceback" not in failed.stderr
    usage = subprocess.run(
        [script(), "board", "--cards", "x"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert usage.returncode == 2


@pytest.mark.postgres
def test_a_postgresql_pipeline(
    run: Run, postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    if not postgres_dsn.startswith(("postgresql://", "postgres://")):
        pytest.skip("the DSN of the test server is not a postgresql:// URL")
    where = ("--db", postgres_dsn, "--schema", postgres_schema, "--workspace", uuid.uuid4().hex)
    (tmp_path / "deals.csv").write_text(
        "title,value,owner,stage\nAcme,100,ann,proposal\nBeta,5,bob,\n"
    )
    imported = run(*where, "import", "deals.csv")
    assert imported.code == 0, imported.err
    board = run(*where, "board")
    assert board.code == 0
    proposal = next(line for line in board.lines if line.startswith("Proposal"))
    assert "1 deal" in proposal
    assert "$100.00" in proposal
    assert "Beta" in board.out
    assert run(*where, "export", "back.csv").code == 0
    assert "Acme" in (tmp_path / "back.csv").read_text()
    demo = run(*where, "demo")
    assert demo.code == 2


def test_a_reader_that_goes_away_ends_the_command_quietly(demo: Path, clock: FixedClock) -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    err = io.StringIO()
    status = _main.main(["board", "--db", str(demo)], clock=clock, stdout=Closed(), stderr=err)
    assert status == 141
    assert err.getvalue() == ""
