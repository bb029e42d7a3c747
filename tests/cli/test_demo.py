"""``salesflow demo``: a sample pipeline, run through the engine, and its boards."""

from __future__ import annotations

from pathlib import Path

from salesflow import ActivityStatus, EventKind, FixedClock, Indicator, Status
from tests.cli.conftest import Run, count, open_app


def test_the_demo_runs_the_scenario_and_prints_both_boards(run: Run, tmp_path: Path) -> None:
    done = run("demo", "--timezone", "UTC")
    assert done.code == 0, done.err
    assert done.err == ""
    out = done.out
    # The engine did the work: stage actions, auto-advance, cancellations, won and lost.
    for said in (
        "Sent 'Send the company brochure'.",
        "Invited the customer to Customer seminar.",
        "Moved to Needs workshop.",  # auto-advance after the introductory call
        "Cancelled 2 planned activities of Needs workshop.",
        "Stayed in Offer: Contract requires expected_close to be set.",
        "Moved to Won.",
        "Moved to Closed-Lost.",
    ):
        assert said in out
    assert out.index("Consulting sales") < out.index("Standard sales process")
    for symbol in ("[!]", "[*]", "[>]", "[-]"):
        assert f"  {symbol} " in out
    assert all(len(line) <= 80 for line in done.lines)
    assert (tmp_path / "salesflow-demo.db").is_file()
    assert "salesflow --db salesflow-demo.db board --process consulting" in out


def test_the_demo_pipeline_holds_what_it_printed(demo: Path, clock: FixedClock) -> None:
    app = open_app(demo, clock)
    try:
        deals = {o.display_title: o for o in app.search(limit=100).items}
        assert deals["Northwind Traders"].status is Status.WON
        assert deals["Contoso rollout"].status is Status.LOST
        assert deals["Contoso rollout"].loss_reason == "price"
        assert deals["Proseware upgrade"].status is Status.LOST
        northwind = app.history(deals["Northwind Traders"].id)
        moves = [
            (e.details["from"], e.details["to"])
            for e in northwind
            if e.kind is EventKind.STAGE_CHANGED
        ]
        assert moves == [
            ("contact", "workshop"),
            ("workshop", "offer"),
            ("offer", "contract"),
            ("contract", "won"),
        ]
        cancelled = app.activities(
            opportunity_id=deals["Contoso rollout"].id, status=ActivityStatus.CANCELLED
        )
        assert len(cancelled) == 2
        owners = {o.owner for o in deals.values()}
        assert owners == {"dana", "lee", "sam"}
        assert {o.value.currency.code for o in deals.values()} == {"USD"}
        states = {app.indicator(o.id).state for o in deals.values() if o.status is Status.OPEN}
        assert states == set(Indicator)
    finally:
        app.repository.close()


def test_the_board_of_the_saved_demo_matches_the_printed_one(run: Run) -> None:
    first = run("demo", "--timezone", "UTC")
    board = run("board", "--db", "salesflow-demo.db", "--process", "consulting")
    assert board.code == 0, board.err
    assert board.out in first.out


def test_running_the_demo_again_replaces_its_pipeline(run: Run, tmp_path: Path) -> None:
    assert run("demo").code == 0
    before = count(tmp_path / "salesflow-demo.db")
    again = run("demo")
    assert again.code == 0, again.err
    assert count(tmp_path / "salesflow-demo.db") == before


def test_the_demo_leaves_another_file_alone(run: Run, tmp_path: Path) -> None:
    mine = tmp_path / "notes.db"
    mine.write_text("my own data")
    done = run("demo", "--db", str(mine))
    assert done.code == 1
    assert done.err.count("\n") == 1
    assert "is not a salesflow demo pipeline" in done.err
    assert mine.read_text() == "my own data"


def test_the_demo_leaves_a_real_pipeline_alone(run: Run, tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_text("title,value\nAcme,100\n")
    assert run("import", "deals.csv", "--db", "real.db").code == 0
    before = (tmp_path / "real.db").read_bytes()
    done = run("demo", "--db", "real.db")
    assert done.code == 1
    assert (tmp_path / "real.db").read_bytes() == before
    assert count(tmp_path / "real.db") == 1


def test_the_demo_needs_a_file(run: Run) -> None:
    done = run("demo", "--db", "postgresql://localhost/sales")
    assert done.code == 2
    assert "the demo writes a SQLite pipeline" in done.err


def test_the_demo_refuses_a_missing_folder(run: Run, tmp_path: Path) -> None:
    done = run("demo", "--db", str(tmp_path / "nowhere" / "demo.db"))
    assert done.code == 1
    assert "does not exist" in done.err
    assert not (tmp_path / "nowhere").exists()


def test_the_demo_fills_the_workspace_asked_for(run: Run) -> None:
    assert run("demo", "--workspace", "training").code == 0
    assert (
        "Northwind"
        in run(
            "board",
            "--db",
            "salesflow-demo.db",
            "--workspace",
            "training",
            "--process",
            "consulting",
        ).out
    )
    empty = run("board", "--db", "salesflow-demo.db", "--process", "consulting")
    assert empty.code == 1  # the default workspace has no consulting process
    assert "'consulting' is not defined" in empty.err
