"""``salesflow stuck`` and ``salesflow analytics``: deals that outstayed their stage,
and what the closed deals of a period tell."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from salesflow import FixedClock, Money, Process, SalesFlow, Stage, StageKind
from tests.cli.conftest import Run, open_app

BOARD = Process(
    "board",
    "Recruitment board",
    (
        Stage("lead", "Lead", 10),
        Stage("pitch", "Pitch", 33, rot_after=dt.timedelta(days=14)),
        Stage("offer", "Offer", 60, rot_after=dt.timedelta(days=7)),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="GBP",
)


def gbp(amount: int) -> Money:
    return Money(amount, "GBP")


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> Path:
    """Seed 000's board: four deals closed over ten days (the example of
    docs/reports.md), then three open ones left to age."""
    path = tmp_path / "salesflow.db"
    app = open_app(path, clock)
    try:
        app.define_process(BOARD)
        fill(app, clock)
    finally:
        app.repository.close()
    return path


def fill(app: SalesFlow, clock: FixedClock) -> None:
    def deal(title: str, amount: int, owner: str = "ann") -> str:
        return app.create_opportunity(
            title=title, process="board", value=gbp(amount), owner=owner
        ).opportunity.id

    w1, w2, l1, l2 = deal("w1", 1_000), deal("w2", 3_000), deal("l1", 500), deal("l2", 200)
    clock.advance(dt.timedelta(days=1))
    for one in (w1, w2, l1):
        app.change_stage(one, "pitch")
    clock.advance(dt.timedelta(days=2))
    app.change_stage(w1, "offer")
    app.change_stage(w2, "offer")
    clock.advance(dt.timedelta(days=1))
    app.mark_won(w1)
    app.mark_lost(l1, reason="price")
    app.mark_lost(l2, reason="price")
    clock.advance(dt.timedelta(days=6))
    app.mark_won(w2)
    # Open deals: one in Offer for 10 days (limit 7), one in Pitch for 20 (limit 14),
    # one in Pitch for 5 days, one in Lead (no limit) for 30.
    deal("Lead forever", 100)
    old_pitch = deal("Old pitch", 7_000, owner="bob")
    app.change_stage(old_pitch, "pitch")
    clock.advance(dt.timedelta(days=10))
    old_offer = deal("Old offer", 2_500)
    app.change_stage(old_offer, "offer")
    clock.advance(dt.timedelta(days=5))
    app.change_stage(deal("Fresh pitch", 900), "pitch")
    clock.advance(dt.timedelta(days=5))
    clock.advance(dt.timedelta(days=5))


def test_stuck_lists_the_deals_past_their_stages_limit(run: Run, pipeline: Path) -> None:
    done = run("stuck", "--process", "board")
    assert done.code == 0, done.err
    lines = done.lines
    assert lines[0].startswith("Stuck deals, Recruitment board")
    assert lines[1] == "=" * 80
    assert lines[2].split() == ["Stage", "Days", "(limit)", "Value", "Owner"]
    assert [line.split() for line in lines[3:]] == [
        ["Old", "pitch", "Pitch", "25", "(14)", "£7,000.00", "bob"],
        ["Old", "offer", "Offer", "15", "(7)", "£2,500.00", "ann"],
    ]
    assert all(len(line) <= 80 for line in lines)
    ann = run("stuck", "--process", "board", "--owner", "ann")
    assert ann.lines[0].startswith("Stuck deals, Recruitment board, owner ann")
    assert [line.split()[:2] for line in ann.lines[3:]] == [["Old", "offer"]]
    first = run("stuck", "--process", "board", "--limit", "1")
    assert first.lines[-1] == "... and 1 more"


def test_stuck_says_when_nothing_is_or_can_be(run: Run, pipeline: Path) -> None:
    nobody = run("stuck", "--process", "board", "--owner", "zoe")
    assert nobody.lines[-1] == "No open deal has outstayed its stage."
    standard = run("stuck")
    assert standard.code == 0
    assert standard.lines[-1] == "No stage of this process has a time limit (rot_after)."


def test_stuck_in_norwegian(run: Run, pipeline: Path) -> None:
    done = run("--locale", "nb_NO", "stuck", "--process", "board")
    assert done.code == 0, done.err
    assert done.lines[0].startswith("Fastlåste muligheter, Recruitment board")
    assert done.lines[2].split() == ["Trinn", "Dager", "(grense)", "Verdi", "Eier"]
    assert "7 000,00 £" in done.out.replace("\xa0", " ")


def test_analytics_of_every_closed_deal(run: Run, pipeline: Path) -> None:
    done = run("analytics", "--process", "board")
    assert done.code == 0, done.err
    lines = done.lines
    assert lines[0].startswith("Analytics, Recruitment board")
    assert lines[0].endswith("every closed deal")

    def value(label: str) -> list[str]:
        line = next(line for line in lines if line.startswith(label))
        return line[len(label) :].split()

    assert value("Closed deals (won, lost)") == ["4", "(2,", "2)"]
    assert value("Win rate") == ["50%"]
    assert value("Average won value") == ["£2,000.00"]
    assert value("Median days from creation to won") == ["7"]
    start = lines.index("Stages") + 2
    assert lines[start].split() == ["Reached", "Went", "on", "Days", "in", "stage", "Won"]
    assert [line.split() for line in lines[start + 1 : start + 6]] == [
        ["Lead", "4", "75%", "1.8", "50%"],
        ["Pitch", "3", "67%", "2.3", "67%"],
        ["Offer", "2", "100%", "4", "100%"],
        ["Won", "2", "100%"],
        ["Lost", "2", "0%"],
    ]
    reasons = lines.index("Loss reasons")
    assert lines[reasons + 3].split() == ["price", "2"]
    assert all(len(line) <= 80 for line in lines)


def test_analytics_of_a_period(run: Run, pipeline: Path) -> None:
    # w1, l1 and l2 closed on March 6; w2 on March 12.
    early = run("analytics", "--process", "board", "--from", "2026-03-01", "--to", "2026-03-06")
    assert early.code == 0, early.err
    assert early.lines[0].endswith("closed Mar 1, 2026 to Mar 6, 2026")
    assert "Closed deals (won, lost)" in early.lines[2]
    assert early.lines[2].split()[-3:] == ["3", "(1,", "2)"]
    assert run("analytics", "--process", "board", "--from", "2026-03-07").lines[2].split()[-3:] == [
        "1",
        "(1,",
        "0)",
    ]
    none = run("analytics", "--process", "board", "--to", "2026-01-01")
    assert none.lines[2].split()[-3:] == ["0", "(0,", "0)"]
    assert none.lines[3].split()[-1] == "-"
    assert "  No lost deal gave a reason." in none.lines


def test_analytics_in_norwegian(run: Run, pipeline: Path) -> None:
    done = run("--locale", "nb", "analytics", "--process", "board")
    assert done.code == 0, done.err
    out = done.out.replace("\xa0", " ")
    assert done.lines[0].startswith("Analyse, Recruitment board")
    assert "Vinnerandel" in out
    assert "50 %" in out
    assert "2 000,00 £" in out
    assert "Tapsårsaker" in out
    assert all(len(line) <= 80 for line in done.lines)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("stuck", "--limit", "x"), "'x' is not a whole number"),
        (("stuck", "--limit", "-1"), "is not between 0 and 1000"),
        (("analytics", "--from", "March"), "--from 'March': expected a date"),
        (("analytics", "--from", "2026-03-02", "--to", "2026-03-01"), "before --from"),
        (("analytics", "--rate", "x"), "expected BASE/QUOTE=RATE"),
        (("stuck", "--due"), "unrecognized arguments: --due"),
    ],
)
def test_bad_arguments(run: Run, pipeline: Path, arguments: tuple[str, ...], message: str) -> None:
    done = run(*arguments)
    assert done.code == 2
    assert done.err.count("\n") == 1
    assert message in done.err


def test_refusals(run: Run, pipeline: Path) -> None:
    for arguments in (("stuck", "--process", "nope"), ("analytics", "--process", "nope")):
        done = run(*arguments)
        assert done.code == 1
        assert done.err == "salesflow: error: Process 'nope' is not defined\n"


@pytest.mark.postgres
def test_on_postgresql(
    run: Run, postgres_dsn: str, postgres_schema: str, clock: FixedClock
) -> None:
    if not postgres_dsn.startswith(("postgresql://", "postgres://")):
        pytest.skip("the DSN of the test server is not a postgresql:// URL")
    from salesflow.postgres import PostgresRepository

    workspace = uuid.uuid4().hex
    repository = PostgresRepository(postgres_dsn, workspace=workspace, schema=postgres_schema)
    try:
        app = SalesFlow(repository, clock=clock)
        app.define_process(BOARD)
        fill(app, clock)
    finally:
        repository.close()
    where = ("--db", postgres_dsn, "--schema", postgres_schema, "--workspace", workspace)
    stuck = run(*where, "stuck", "--process", "board")
    assert stuck.code == 0, stuck.err
    assert [line.split()[:2] for line in stuck.lines[3:]] == [["Old", "pitch"], ["Old", "offer"]]
    analytics = run(*where, "analytics", "--process", "board")
    assert analytics.code == 0, analytics.err
    assert analytics.lines[2].split()[-3:] == ["4", "(2,", "2)"]
    board = run(*where, "board", "--process", "board", "--as-of", "2026-03-02")
    assert board.code == 0, board.err
    lead = next(line for line in board.lines if line.startswith("Lead"))
    assert lead.split()[2:4] == ["4", "deals"]  # the four deals, all in Lead then


def test_an_owner_is_read_without_the_blanks_around_it(run: Run, demo: Path) -> None:
    for command in ("board", "stuck", "forecast", "activities"):
        plain = run("--db", str(demo), command, "--owner", "dana")
        padded = run("--db", str(demo), command, "--owner", "  dana ")
        assert plain.code == 0, plain.err
        assert padded.out == plain.out, command
    blank = run("--db", str(demo), "stuck", "--owner", "  ")
    assert blank.code == 2
    assert blank.err == "salesflow: --owner: give a name, not blanks\n"
