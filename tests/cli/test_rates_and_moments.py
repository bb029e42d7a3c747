"""``--rate``, ``--currency`` and ``--as-of`` at the edges: an option that would be
ignored or that the library refuses is a usage error (exit status 2); a report that
lacks a rate says which ``--rate`` to give; the years a moment may have are the ones
the message names."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesflow import FixedClock, Money
from tests.cli.conftest import Run, open_app


@pytest.fixture
def mixed(tmp_path: Path, clock: FixedClock) -> Path:
    """A pipeline (the default file) with a deal in dollars, one in kroner and a won
    deal in each."""
    path = tmp_path / "salesflow.db"
    app = open_app(path, clock)
    try:
        app.create_opportunity(title="Dollars", value=Money("10", "USD"))
        app.create_opportunity(title="Kroner", value=Money("10", "NOK"))
        for code in ("USD", "NOK"):
            won = app.create_opportunity(title=f"Won {code}", value=Money("5", code))
            app.mark_won(won.opportunity.id)
    finally:
        app.repository.close()
    return path


@pytest.mark.parametrize("command", ["board", "analytics"])
def test_a_rate_without_a_currency_is_a_usage_error(run: Run, mixed: Path, command: str) -> None:
    done = run(command, "--rate", "USD/NOK=10")
    assert done.code == 2
    assert done.out == ""
    assert done.err == (
        f"salesflow: {command}: --rate is used only with --currency, the currency to report in\n"
    )


def test_forecast_converts_into_the_process_currency_with_a_rate_alone(
    run: Run, mixed: Path
) -> None:
    assert run("forecast").code == 1  # kroner without a rate to dollars
    done = run("forecast", "--rate", "USD/NOK=10")
    assert done.code == 0, done.err


@pytest.mark.parametrize(
    ("rate", "rule"),
    [
        ("USD/NOK=1e400", "must be smaller than 1,000,000,000,000,000 in size"),
        ("USD/NOK=5000000", "a rate must be between 0.000001 and 1000000"),
        ("USD/NOK=0.0000001", "at most 6 decimal places"),
        ("USD/XXY=2", "unknown currency code 'XXY'"),
        ("USD/NOK=inf", "expected BASE/QUOTE=RATE"),
        ("USD/NOK=nan", "expected BASE/QUOTE=RATE"),
        ("NOK/NOK=2", "a currency's rate to itself is 1, not 2"),
    ],
)
def test_a_rate_the_library_refuses_is_a_usage_error(
    run: Run, mixed: Path, rate: str, rule: str
) -> None:
    for command in ("board", "forecast", "analytics"):
        done = run(command, "--currency", "USD", "--rate", rate)
        assert done.code == 2, (command, done.err)
        assert done.out == ""
        assert done.err.startswith(f"salesflow: --rate {rate!r}: ")
        assert rule in done.err
        assert done.err.count("\n") == 1


def test_a_pair_given_two_rates_is_a_usage_error(run: Run, mixed: Path) -> None:
    done = run("board", "--currency", "USD", "--rate", "NOK/USD=0.1", "--rate", "NOK/USD=0.2")
    assert done.code == 2
    assert done.out == ""
    assert done.err == ("salesflow: --rate 'NOK/USD=0.2': NOK/USD is given twice, as 0.1 and 0.2\n")
    again = run("board", "--currency", "USD", "--rate", "NOK/USD=0.1", "--rate", "NOK/USD=0.10")
    assert again.code == 0, again.err  # the same rate twice says nothing new
    both = run("board", "--currency", "USD", "--rate", "NOK/USD=0.1", "--rate", "USD/NOK=9")
    assert both.code == 2
    assert "NOK/USD is given as 0.1, whose inverse is not 9" in both.err
    inverse = run("board", "--currency", "USD", "--rate", "NOK/USD=0.1", "--rate", "USD/NOK=10")
    assert inverse.code == 0, inverse.err


def test_a_missing_rate_names_the_option_to_give(run: Run, mixed: Path) -> None:
    for command in ("board", "forecast", "analytics"):
        done = run(command, "--currency", "USD")
        assert done.code == 1, command
        assert "rates=" not in done.err
        assert "No exchange rate from NOK to USD" in done.err
        assert done.err.rstrip().endswith("give it with --rate NOK/USD=RATE"), done.err


def test_several_currencies_without_one_to_report_in_name_the_options(
    run: Run, mixed: Path
) -> None:
    for command in ("board", "analytics"):
        done = run(command)
        assert done.code == 1, command
        assert "currency=" not in done.err
        assert "rates=" not in done.err
        assert "give --currency (and --rate)" in done.err


def test_the_options_to_give_are_named_in_norwegian_too(run: Run, mixed: Path) -> None:
    missing = run("--locale", "nb_NO", "board", "--currency", "USD")
    assert missing.code == 1
    assert missing.err == (
        "salesflow: error: Ingen valutakurs fra NOK til USD; oppgi den med --rate NOK/USD=KURS\n"
    )
    several = run("--locale", "nb_NO", "analytics")
    assert several.code == 1
    assert "rates=" not in several.err
    assert "vunnede salg i NOK, USD: oppgi --currency (og --rate)" in several.err


IN_DOLLARS = ("--currency", "USD", "--rate", "USD/NOK=10")


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Pacific/Kiritimati"])
def test_every_day_of_the_years_the_message_names_is_taken(
    run: Run, mixed: Path, zone: str
) -> None:
    for day in ("0002-01-01", "9998-12-31"):
        done = run("--timezone", zone, "board", *IN_DOLLARS, "--as-of", day)
        assert done.code == 0, (day, done.err)
    for moment in ("9998-12-31T23:59:59", "9998-12-31T23:00-11:00", "0002-01-01T00:00+14:00"):
        done = run("--timezone", zone, "board", *IN_DOLLARS, "--as-of", moment)
        assert done.code == 0, (moment, done.err)


@pytest.mark.parametrize("moment", ["9999-01-01", "0001-12-31", "9999-01-01T00:00+14:00"])
def test_a_moment_outside_those_years_is_refused_with_them(
    run: Run, mixed: Path, moment: str
) -> None:
    done = run("board", *IN_DOLLARS, "--as-of", moment)
    assert done.code == 2  # the argument is what is wrong: a usage error
    assert done.out == ""
    assert done.err.startswith(f"salesflow: --as-of {moment!r}: ")
    assert "must lie in the years 2 to 9998 (both included)" in done.err


@pytest.mark.parametrize("option", ["--workspace", "--schema"])
def test_a_blank_workspace_or_schema_is_a_usage_error(run: Run, mixed: Path, option: str) -> None:
    done = run(option, "  ", "board")
    assert done.code == 2
    assert done.err == f"salesflow: {option}: give a name, not blanks\n"
