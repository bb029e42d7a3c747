"""``salesflow forecast``: the period's open deals, best case and expected value, what
was won, groups, a simulated range and the forecast as it stood at a past moment."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from salesflow import FixedClock, Money, SalesFlow, StaticRates
from salesflow.postgres import PostgresRepository
from tests.cli.conftest import Run, open_app


def usd(amount: str) -> Money:
    return Money(amount, "USD")


def fill(app: SalesFlow) -> dict[str, str]:
    """Three open deals closing this quarter (Q1 2026), one next quarter, one won."""

    def deal(title: str, amount: str, close: dt.date, owner: str, probability: int) -> str:
        return app.create_opportunity(
            title=title,
            value=usd(amount),
            expected_close=close,
            owner=owner,
            stage="proposal",
            probability=probability,
        ).opportunity.id

    ids = {
        "acme": deal("Acme", "10000", dt.date(2026, 3, 20), "ann", 50),
        "beta": deal("Beta", "4000", dt.date(2026, 2, 10), "bob", 25),
        "gamma": deal("Gamma", "2000", dt.date(2026, 3, 31), "ann", 100),
        "later": deal("Later", "8000", dt.date(2026, 4, 1), "ann", 90),
        "won": deal("Won", "3000", dt.date(2026, 3, 5), "bob", 50),
    }
    app.change_stage(ids["gamma"], "negotiation")
    app.set_probability(ids["gamma"], 100)
    app.mark_won(ids["won"])
    return ids


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> Path:
    path = tmp_path / "salesflow.db"
    app = open_app(path, clock)
    try:
        fill(app)
    finally:
        app.repository.close()
    return path


def figure(lines: list[str], label: str) -> str:
    return next(line for line in lines if line.startswith(label)).split()[-1]


def test_this_quarter_by_default(run: Run, pipeline: Path) -> None:
    done = run("forecast")
    assert done.code == 0, done.err
    lines = done.lines
    assert lines[0].startswith("Forecast, all processes")
    assert lines[0].endswith("Jan 1, 2026 to Mar 31, 2026")
    # Acme 10,000 at 50%, Beta 4,000 at 25%, Gamma 2,000 at 100%; Later is in April.
    assert figure(lines, "Open deals expected") == "3"
    assert figure(lines, "Best case") == "$16,000.00"
    assert figure(lines, "Expected") == "$8,000.00"
    assert figure(lines, "Won in the period (1 deal)") == "$3,000.00"
    assert "P50" not in done.out
    assert all(len(line) <= 80 for line in lines)


def test_a_period_of_ones_own(run: Run, pipeline: Path) -> None:
    done = run("forecast", "--from", "2026-03-15", "--to", "2026-04-30")
    assert done.lines[0].endswith("Mar 15, 2026 to Apr 30, 2026")
    assert figure(done.lines, "Open deals expected") == "3"  # Acme, Gamma, Later
    assert figure(done.lines, "Best case") == "$20,000.00"
    assert figure(done.lines, "Won in the period (0 deals)") == "$0.00"
    only_to = run("forecast", "--to", "2026-05-31")  # that day's quarter
    assert only_to.lines[0].endswith("Apr 1, 2026 to May 31, 2026")
    only_from = run("forecast", "--from", "2026-02-01")
    assert only_from.lines[0].endswith("Feb 1, 2026 to Mar 31, 2026")
    last = run("forecast", "--from", "9999-11-01")  # the calendar's last quarter
    assert last.code == 0, last.err
    assert last.lines[0].endswith("Nov 1, 9999 to Dec 31, 9999")


def table(lines: list[str], heading: str) -> list[list[str]]:
    start = lines.index(heading) + 3  # the heading, its rule, the column names
    return [line.split() for line in lines[start:]]


def test_by_owner_stage_and_month(run: Run, pipeline: Path) -> None:
    owners = run("forecast", "--by", "owner")
    assert owners.code == 0, owners.err
    assert owners.lines[owners.lines.index("By owner") + 2].split() == [
        "Open",
        "Expected",
        "Best",
        "case",
        "Won",
    ]
    assert table(owners.lines, "By owner") == [
        ["ann", "2", "$7,000.00", "$12,000.00", "$0.00"],
        ["bob", "1", "$1,000.00", "$4,000.00", "$3,000.00"],
    ]
    stages = run("forecast", "--by", "stage", "--process", "standard")
    assert stages.lines[0].startswith("Forecast, Standard sales process")
    assert table(stages.lines, "By stage") == [  # in the process' order
        ["Proposal", "2", "$6,000.00", "$14,000.00", "$0.00"],
        ["Negotiation", "1", "$2,000.00", "$2,000.00", "$0.00"],
        ["Closed-Won", "0", "$0.00", "$0.00", "$3,000.00"],
    ]
    months = run("forecast", "--by", "month")
    heading = next(line for line in months.lines if line.startswith("By month"))
    assert table(months.lines, heading) == [
        ["Feb", "2026", "1", "$1,000.00", "$4,000.00", "$0.00"],
        ["Mar", "2026", "2", "$7,000.00", "$12,000.00", "$3,000.00"],
    ]
    for done in (owners, stages, months):
        assert all(len(line) <= 80 for line in done.lines)


def test_owner_filter_and_an_owner_without_deals(run: Run, pipeline: Path) -> None:
    ann = run("forecast", "--owner", "ann", "--by", "owner")
    assert ann.lines[0].startswith("Forecast, all processes, owner ann")
    assert figure(ann.lines, "Best case") == "$12,000.00"
    nobody = run("forecast", "--owner", "zoe", "--by", "owner")
    assert nobody.code == 0
    assert figure(nobody.lines, "Open deals expected") == "0"
    assert "  Nothing in the period." in nobody.lines


def test_the_simulated_range_is_the_librarys_and_repeatable(
    run: Run, pipeline: Path, clock: FixedClock
) -> None:
    done = run("forecast", "--simulations", "500", "--seed", "7")
    assert done.code == 0, done.err
    assert done.out == run("forecast", "--simulations", "500", "--seed", "7").out
    assert "Revenue of the period in 500 simulated outcomes:" in done.lines
    app = open_app(pipeline, clock)
    try:
        report = app.forecast(
            start=dt.date(2026, 1, 1),
            end=dt.date(2026, 3, 31),
            currency="USD",
            simulations=500,
            seed=7,
        )
    finally:
        app.repository.close()
    assert report.p10 is not None
    assert report.p50 is not None
    assert report.p90 is not None
    shown = [figure(done.lines, f"  P{n}") for n in (10, 50, 90)]
    assert shown == [f"${p.amount:,.2f}" for p in (report.p10, report.p50, report.p90)]
    # Won 3,000 plus Gamma at 100% are in every outcome; everything at most.
    assert report.p10.amount >= 5000
    assert report.p90.amount <= 19000


def test_as_it_stood_at_a_past_moment(run: Run, pipeline: Path, clock: FixedClock) -> None:
    before = run("forecast").out
    clock.advance(dt.timedelta(days=2))
    app = open_app(pipeline, clock)
    try:
        acme = app.search(text="Acme").items[0]
        app.update(acme.id, value=usd("30000"))
    finally:
        app.repository.close()
    assert figure(run("forecast").lines, "Best case") == "$36,000.00"
    then = run("forecast", "--as-of", "2026-03-02T12:00")
    assert then.code == 0, then.err
    assert then.lines[1].replace("\u202f", " ") == "as it stood at Mar 2, 2026 12:00 PM"
    assert then.lines[0] == before.splitlines()[0]
    assert then.lines[2:] == before.splitlines()[1:]
    # A day alone is its end: the update on March 4 is in, on March 3 it is not.
    assert figure(run("forecast", "--as-of", "2026-03-03").lines, "Best case") == "$16,000.00"
    assert figure(run("forecast", "--as-of", "2026-03-04").lines, "Best case") == "$36,000.00"
    # A moment with an offset is that moment; one without is in --timezone.
    oslo = run("--timezone", "Europe/Oslo", "forecast", "--as-of", "2026-03-04T09:30")
    assert figure(oslo.lines, "Best case") == "$16,000.00"  # 08:30 UTC, before 09:00
    assert figure(run("forecast", "--as-of", "2026-03-04T09:30+00:00").lines, "Best case") == (
        "$36,000.00"
    )


def test_another_currency_needs_a_rate(run: Run, pipeline: Path) -> None:
    missing = run("forecast", "--currency", "eur")
    assert missing.code == 1
    assert missing.err.count("\n") == 1
    assert "USD" in missing.err
    assert "EUR" in missing.err
    done = run("forecast", "--currency", "EUR", "--rate", "USD/EUR=0.5")
    assert done.code == 0, done.err
    assert figure(done.lines, "Best case") == "€8,000.00"


def test_in_norwegian(run: Run, pipeline: Path) -> None:
    done = run("--locale", "nb_NO", "forecast", "--by", "stage", "--simulations", "10")
    assert done.code == 0, done.err
    out = done.out.replace("\xa0", " ").replace("\u202f", " ")
    assert done.lines[0].startswith("Prognose, alle prosesser")
    assert done.lines[0].replace("\xa0", " ").endswith("1. jan. 2026 til 31. mars 2026")
    assert "Beste utfall (alle vinnes)" in out
    assert "16 000,00 USD" in out
    assert "Vunnet i perioden (1 mulighet)" in out
    assert "Periodens inntekt i 10 simulerte utfall:" in out
    for text in ("Per trinn", "Forhandling", "Lukket-Vunnet"):
        assert text in out
    assert all(len(line) <= 80 for line in done.lines)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--from", "2026-02-30"), "--from '2026-02-30': expected a date"),
        (("--to", "soon"), "--to 'soon': expected a date"),
        (("--from", "2026-03-01", "--to", "2026-02-01"), "before --from"),
        (("--by", "team"), "invalid choice: 'team'"),
        (("--simulations", "-1"), "'-1' is not between 0 and 100000"),
        (("--simulations", "100001"), "is not between 0 and 100000"),
        (("--simulations", "many"), "'many' is not a whole number"),
        (("--seed", "4"), "--seed: only with --simulations N"),
        (("--simulations", "5", "--seed", "x"), "'x' is not a whole number"),
        (("--as-of", "yesterday"), "--as-of 'yesterday': expected a day or a moment"),
        (("--rate", "USD-EUR"), "expected BASE/QUOTE=RATE"),
        (("--process",), "expected one argument"),
    ],
)
def test_bad_arguments(run: Run, pipeline: Path, arguments: tuple[str, ...], message: str) -> None:
    done = run("forecast", *arguments)
    assert done.code == 2
    assert done.out == ""
    assert done.err.count("\n") == 1
    assert message in done.err


def test_refusals_of_the_library(run: Run, pipeline: Path) -> None:
    for arguments in (("--process", "nope"), ("--currency", "ZZZ")):
        done = run("forecast", *arguments)
        assert done.code == 1
        assert done.err.count("\n") == 1
        assert done.err.startswith("salesflow: error: ")
    assert run("forecast", "--db", "missing.db").code == 1


@pytest.mark.postgres
def test_a_postgresql_forecast(
    run: Run, postgres_dsn: str, postgres_schema: str, clock: FixedClock
) -> None:
    if not postgres_dsn.startswith(("postgresql://", "postgres://")):
        pytest.skip("the DSN of the test server is not a postgresql:// URL")
    workspace = uuid.uuid4().hex
    repository = PostgresRepository(postgres_dsn, workspace=workspace, schema=postgres_schema)
    try:
        fill(SalesFlow(repository, clock=clock, rates=StaticRates({})))
    finally:
        repository.close()
    where = ("--db", postgres_dsn, "--schema", postgres_schema, "--workspace", workspace)
    done = run(*where, "forecast", "--by", "owner")
    assert done.code == 0, done.err
    assert figure(done.lines, "Best case") == "$16,000.00"
    assert table(done.lines, "By owner")[1] == ["bob", "1", "$1,000.00", "$4,000.00", "$3,000.00"]


def test_this_quarter_is_the_timezones(run: Run, pipeline: Path, clock: FixedClock) -> None:
    clock.set(dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC))  # April 1 in Oslo
    assert run("forecast").lines[0].endswith("Jan 1, 2026 to Mar 31, 2026")
    oslo = run("--timezone", "Europe/Oslo", "forecast")
    assert oslo.lines[0].endswith("Apr 1, 2026 to Jun 30, 2026")
    assert figure(oslo.lines, "Open deals expected") == "1"  # Later, on April 1
