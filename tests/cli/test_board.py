"""``salesflow board``: stage figures, cards and activity indicators in 80 columns."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest

from salesflow import FixedClock, Money, Organization, SalesFlow
from salesflow.cli._views import SYMBOLS
from tests.cli.conftest import Run, open_app


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> Path:
    """Four open deals, one per indicator state, a won and a lost one, and a paused one."""
    path = tmp_path / "salesflow.db"
    app = open_app(path, clock)
    try:
        now = clock.now()

        def deal(title: str, stage: str, amount: str, owner: str) -> str:
            return app.create_opportunity(
                title=title, stage=stage, value=Money(amount, "USD"), owner=owner
            ).opportunity.id

        late = deal("Late deal", "lead", "1000", "ann")
        today = deal("Today deal", "qualification", "2000", "bob")
        soon = deal("Soon deal", "qualification", "3000", "ann")
        deal("Quiet deal", "proposal", "4000", "bob")
        won = deal("Won deal", "negotiation", "5000", "ann")
        lost = deal("Lost deal", "lead", "600", "bob")
        paused = deal("Paused deal", "lead", "700", "ann")
        app.schedule_activity(title="Call", due=now - dt.timedelta(days=2), opportunity_id=late)
        app.schedule_activity(title="Call", due=now + dt.timedelta(hours=1), opportunity_id=today)
        app.schedule_activity(title="Call", due=now + dt.timedelta(days=3), opportunity_id=soon)
        app.mark_won(won)
        app.mark_lost(lost)
        app.pause(paused)
    finally:
        app.repository.close()
    return path


def card(out: str, title: str) -> str:
    return next(line for line in out.splitlines() if title in line)


def test_the_board_shows_each_stage_with_its_figures(run: Run, pipeline: Path) -> None:
    done = run("board")
    assert done.code == 0, done.err
    lines = done.lines
    assert lines[0].startswith("Standard sales process")
    assert lines[0].endswith("as of Mar 2, 2026")
    qualification = next(line for line in lines if line.startswith("Qualification"))
    assert qualification.split() == [
        "Qualification",
        "(30%)",
        "2",
        "deals",
        "total",
        "$5,000.00",
        "weighted",
        "$1,500.00",
    ]
    lead = next(line for line in lines if line.startswith("Lead"))
    assert "1 deal " in lead  # the paused deal is left out
    assert "$1,000.00" in lead
    open_total = next(line for line in lines if line.startswith("Open stages"))
    # 1000 + 2000 + 3000 + 4000 open; weighted 150 + 600 + 900 + 2000
    assert open_total.split()[-4:] == ["total", "$10,000.00", "weighted", "$3,650.00"]
    assert "1 paused deal is left out of the figures." in lines
    assert all(len(line) <= 80 for line in lines)


def test_each_card_has_title_value_owner_and_indicator(run: Run, pipeline: Path) -> None:
    out = run("board").out
    assert card(out, "Late deal").split() == [
        SYMBOLS_OF["overdue"],
        "Late",
        "deal",
        "$1,000.00",
        "ann",
    ]
    assert card(out, "Today deal").split()[0] == "[*]"
    assert card(out, "Soon deal").split()[0] == "[>]"
    assert card(out, "Quiet deal").split()[0] == "[-]"
    # closed deals carry no activity box
    assert card(out, "Won deal").split() == ["Won", "deal", "$5,000.00", "ann"]
    assert "Paused deal" not in out
    legend = out.splitlines()[-1]
    assert legend == "[!] overdue  [*] due today  [>] upcoming  [-] no activity planned"


SYMBOLS_OF = {state.value: symbol for state, symbol in SYMBOLS.items()}


def test_the_cards_of_a_stage_are_the_largest_first(run: Run, pipeline: Path) -> None:
    out = run("board").out
    assert out.index("Soon deal") < out.index("Today deal")


def test_cards_limits_the_cards_per_stage(run: Run, pipeline: Path) -> None:
    out = run("board", "--cards", "1").out
    assert "Soon deal" in out
    assert "Today deal" not in out
    assert "... and 1 more" in out
    assert "Late deal" in out  # Lead holds one card (the paused one is not shown)
    none = run("board", "--cards", "0").out
    assert "Late deal" not in none
    assert "Qualification (30%)" in none


def test_owner_narrows_figures_and_cards(run: Run, pipeline: Path) -> None:
    done = run("board", "--owner", "ann")
    assert done.code == 0
    assert done.lines[0].startswith("Standard sales process, owner ann")
    assert "Today deal" not in done.out
    assert "Soon deal" in done.out
    qualification = next(line for line in done.lines if line.startswith("Qualification"))
    assert "1 deal " in qualification
    assert "$3,000.00" in qualification


def test_long_titles_and_large_values_stay_in_80_columns(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(
            title="A very long opportunity title " * 5,
            value=Money("123456789012.34", "USD"),
            owner="someone-with-a-long-name",
        )
        app.create_opportunity(
            title="广告牌广告牌广告牌广告牌广告牌广告牌广告牌广告牌", value=Money("5", "USD")
        )
    finally:
        app.repository.close()
    for locale in ("en_US", "nb_NO"):
        done = run("--locale", locale, "board")
        assert done.code == 0
        assert all(len(line) <= 80 for line in done.lines)
        assert "~" in card(done.out, "A very long")
        assert "123" in card(done.out, "A very long")


def test_a_terminal_gets_colours_unless_asked_not_to(
    run: Run, pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    coloured = run("board", stdout=Terminal()).out
    assert "\x1b[1;37;41m[-]\x1b[0m" in coloured  # solid red: nothing planned
    assert "\x1b[1;37;42m[*]\x1b[0m" in coloured  # solid green: due today
    assert "\x1b[" not in run("board", "--no-color", stdout=Terminal()).out
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run("board", stdout=Terminal()).out
    assert "\x1b[" not in run("board").out  # not a terminal


def test_another_process(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(title="Simple one", process="simple", value=Money("10", "USD"))
    finally:
        app.repository.close()
    done = run("board", "--process", "simple")
    assert done.code == 0
    assert "Pitching (30%)" in done.out
    assert "Simple one" in done.out
    assert "Simple one" not in run("board").out


def test_an_unknown_process_is_one_line_and_status_1(run: Run, pipeline: Path) -> None:
    done = run("board", "--process", "nope")
    assert done.code == 1
    assert done.out == ""
    assert done.err == "salesflow: error: Process 'nope' is not defined\n"


def test_mixed_currencies_need_a_currency(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(title="Dollars", value=Money("10", "USD"))
        app.create_opportunity(title="Kroner", value=Money("10", "NOK"))
    finally:
        app.repository.close()
    done = run("board")
    assert done.code == 1
    assert done.err.startswith("salesflow: error: ")
    assert done.err.count("\n") == 1
    assert "Traceback" not in done.err
    assert run("board", "--currency", "USD").code == 1  # no rate for NOK
    converted = run("board", "--currency", "USD", "--rate", "usd/nok=10")
    assert converted.code == 0, converted.err
    lead = next(line for line in converted.lines if line.startswith("Lead"))
    assert "2 deals" in lead
    assert "total $11.00" in lead  # 10 USD + 10 NOK at 10 NOK a dollar
    for bad in ("usd=10", "usd/nok=0", "usd/nok=ten", "/nok=1"):
        refused = run("board", "--currency", "USD", "--rate", bad)
        assert refused.code == 2, bad
        assert "expected BASE/QUOTE=RATE" in refused.err


def test_a_missing_pipeline_is_not_created(run: Run, tmp_path: Path) -> None:
    done = run("board", "--db", "missing.db")
    assert done.code == 1
    assert "no pipeline at missing.db" in done.err
    assert not (tmp_path / "missing.db").exists()


def test_a_file_that_is_not_a_pipeline(run: Run, tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_text("not a database " * 100)
    done = run("board", "--db", "junk.db")
    assert done.code == 1
    assert done.err.startswith("salesflow: error: ")
    assert done.err.count("\n") == 1


def test_bad_arguments_are_usage_errors(run: Run, pipeline: Path) -> None:
    for argv in (
        ("board", "--cards", "many"),
        ("board", "--cards", "-1"),
        ("board", "--bogus"),
        ("board", "extra"),
        ("--timezone", "Mars/Olympus", "board"),
        ("--locale", "not a locale", "board"),
    ):
        done = run(*argv)
        assert done.code == 2, argv
        assert done.out == ""
        assert done.err.count("\n") == 1, done.err
        assert done.err.startswith("salesflow"), done.err


def test_the_options_may_follow_the_command(run: Run, pipeline: Path, tmp_path: Path) -> None:
    (tmp_path / "salesflow.db").rename(tmp_path / "other.db")
    before = run("--db", "other.db", "board").out
    after = run("board", "--db", "other.db").out
    assert before == after
    assert "Late deal" in after


def test_the_board_is_that_of_the_time_zone(run: Run, pipeline: Path, clock: FixedClock) -> None:
    # 09:00 UTC on Monday is already Monday evening in Auckland, and the day of the
    # header follows the zone.
    clock.set(dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC))
    assert run("--timezone", "Pacific/Auckland", "board").lines[0].endswith("Mar 3, 2026")
    assert run("--timezone", "UTC", "board").lines[0].endswith("Mar 2, 2026")


def test_the_app_of_the_board_is_plain(pipeline: Path, clock: FixedClock) -> None:
    """The board's figures are the library's own pipeline report, formatted."""
    app: SalesFlow = open_app(pipeline, clock)
    try:
        report = app.pipeline()
        assert report.total == Money("10000", "USD")
        assert report.paused == 1
    finally:
        app.repository.close()


def test_an_organisation_without_title_shows_its_name(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(customer=Organization("o1", "Globex"), value=Money("1", "USD"))
    finally:
        app.repository.close()
    assert "Globex" in run("board").out


def test_the_board_as_it_stood_at_a_past_moment(
    run: Run, pipeline: Path, clock: FixedClock
) -> None:
    before = run("board").lines
    clock.advance(dt.timedelta(days=1))
    app = open_app(pipeline, clock)
    try:
        late = app.search(text="Late deal").items[0]
        app.change_stage(late.id, "proposal", cancel_pending=False)
        app.create_opportunity(title="New deal", value=Money("9000", "USD"), owner="ann")
    finally:
        app.repository.close()
    then = run("board", "--as-of", "2026-03-02")
    assert then.code == 0, then.err
    assert then.lines[0].startswith("Standard sales process")
    assert then.lines[0].replace("\u202f", " ").endswith("as of Mar 2, 2026 11:59 PM")
    figures = [line for line in before if line.startswith(("Lead", "Proposal", "Open stages"))]
    assert [line for line in then.lines if line.startswith(("Lead", "Proposal", "Open"))] == (
        figures
    )
    assert not any(line.startswith("  [") for line in then.lines)  # no cards
    assert then.lines[-1] == (
        "Figures as they stood then; no cards, which show deals as they are now."
    )
    now = run("board").out
    assert "New deal" in now
    lead = next(line for line in run("board").lines if line.startswith("Lead"))
    assert "1 deal " in lead  # the new one in, Late deal out
    assert "$9,000.00" in lead
    assert lead not in before  # so the board as of then is not today's


@pytest.mark.parametrize("moment", ["2026-03-32", "noon", "2026-03-02T25:00"])
def test_a_wrong_as_of_is_a_usage_error(run: Run, pipeline: Path, moment: str) -> None:
    done = run("board", "--as-of", moment)
    assert done.code == 2
    assert done.err.count("\n") == 1
    assert "--as-of" in done.err
