"""Stored text is printed safely: control characters in a title, an owner, an
activity, a loss reason or an actor are shown escaped, one line each, by every command
that prints stored text; they can neither drive the terminal nor break a line."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salesflow import FixedClock, Money
from salesflow.cli._text import safe, safe_line, width
from tests.cli.conftest import Run, open_app

#: Retitles the terminal, rings its bell, recolours it, and breaks the line four ways.
EVIL = "Acme\x1b]0;pwned\x07\x1b[31m red\rCR\tTAB\nNL\u2028LS\u202eRLO\x9b"
SHOWN = "Acme\\x1b]0;pwned\\x07\\x1b[31m red\\rCR\\tTAB\\nNL\\u2028LS\\u202eRLO\\x9b"
#: Any character a terminal acts on, rather than shows.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> Path:
    path = tmp_path / "salesflow.db"
    app = open_app(path, clock)
    try:
        deal = app.create_opportunity(
            title=EVIL,
            value=Money("1000", "USD"),
            owner="ann\x1b[2J",
            expected_close=dt.date(2026, 3, 20),
            actor="im\nport",
        ).opportunity.id
        app.schedule_activity(
            title="Call\x07\nback", due=clock.now() + dt.timedelta(hours=1), opportunity_id=deal
        )
        app.update(deal, description="new\x1b[0m\nline")
        app.mark_lost(deal, reason="too\rdear", cancel_pending=False)
        other = app.create_opportunity(
            title="Beta",
            value=Money("10", "USD"),
            owner="bob\tx",
            expected_close=dt.date(2026, 3, 20),
        ).opportunity.id
        app.schedule_activity(title="Visit", due=clock.now(), opportunity_id=other)
    finally:
        app.repository.close()
    return path


def check(out: str) -> None:
    lines = out.split("\n")
    assert all(not CONTROL.search(line) for line in lines)
    assert all(width(line) <= 80 for line in lines)


def test_the_board_escapes_titles_and_owners(run: Run, pipeline: Path) -> None:
    done = run("board", "--cards", "20")
    assert done.code == 0, done.err
    check(done.out)
    lost = next(line for line in done.lines if line.startswith("    "))
    assert lost.startswith("      " + SHOWN[:40])  # cut to its column, on one line
    assert lost.endswith("$1,000.00  ann\\x1b[2J")
    assert "bob\\tx" in done.out


def test_activities_escape_titles_and_owners(run: Run, pipeline: Path) -> None:
    done = run("activities")
    assert done.code == 0, done.err
    check(done.out)
    assert "Call: Visit - Beta" in done.out
    assert "Call: Call\\x07\\nback - Acme\\x1b]0;pwned" in done.out
    assert "bob\\tx" in done.out


def test_history_escapes_every_detail(run: Run, pipeline: Path) -> None:
    done = run("history", "Acme")
    assert done.code == 0, done.err
    check(done.out)
    text = " ".join(line.strip() for line in done.lines)
    assert "im\\nport" in text
    assert "'Call\\x07\\nback'" in text
    assert "reason 'too\\rdear'" in text
    assert "'new\\x1b[0m\\nline'" in text


def test_the_forecast_escapes_owners(run: Run, pipeline: Path) -> None:
    done = run("forecast", "--by", "owner")
    assert done.code == 0, done.err
    check(done.out)
    assert "  bob\\tx " in done.out


def test_a_match_list_and_import_messages_are_escaped(run: Run, pipeline: Path) -> None:
    app_dir = pipeline.parent
    (app_dir / "deals.csv").write_text('title,"co\x1b[31mlour"\nA,1\n', newline="")
    imported = run("import", "deals.csv")
    assert imported.code == 0, imported.err
    assert "co\\x1b[31mlour" in imported.err
    several = run("history", "A")  # Acme... and A
    assert several.code == 1
    assert several.err.count("\n") == 1
    assert not CONTROL.search(several.err.rstrip("\n"))
    assert SHOWN[:10] in several.err


def test_colour_codes_of_the_views_stay_on_a_terminal(run: Run, pipeline: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    assert run("board", stdout=out).code == 0
    printed = out.getvalue()
    assert "\x1b[1;37;41m[-]\x1b[0m" in printed  # the indicator's own colour
    assert "\x1b]0;" not in printed
    assert "\x1b[31m red" not in printed
    assert "\x1b[2J" not in printed


@given(st.text())
def test_safe_text_holds_no_control_character_and_keeps_the_rest(text: str) -> None:
    shown = safe(text)
    assert not CONTROL.search(shown)
    assert "\n" not in shown
    if not CONTROL.search(text):
        assert shown == text


@given(st.text(), st.booleans())
def test_safe_lines_keep_only_colour_codes(text: str, colour: bool) -> None:
    line = safe_line(f"\x1b[1m{text}\x1b[0m", colour=colour)
    assert not CONTROL.search(re.sub(r"\x1b\[[0-9;]*m", "", line) if colour else line)
