"""``salesflow activities`` and ``salesflow history``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from salesflow import FixedClock, Money, Organization
from tests.cli.conftest import Run, open_app


@pytest.fixture
def pipeline(tmp_path: Path, clock: FixedClock) -> dict[str, str]:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        now = clock.now()
        acme = app.create_opportunity(
            title="Acme renewal", value=Money("100", "USD"), owner="ann"
        ).opportunity.id
        beta = app.create_opportunity(
            customer=Organization("beta", "Beta Corp"), value=Money("50", "USD"), owner="bob"
        ).opportunity.id
        app.schedule_activity(
            title="Chase the invoice",
            due=now - dt.timedelta(days=3),
            opportunity_id=acme,
            owner="ann",
        )
        app.schedule_activity(
            title="Call the buyer",
            due=now + dt.timedelta(hours=2),
            opportunity_id=beta,
            owner="bob",
        )
        app.schedule_activity(
            title="Plan the review",
            due=now + dt.timedelta(days=5),
            opportunity_id=acme,
            owner="ann",
        )
        done = app.schedule_activity(title="Old call", due=now - dt.timedelta(days=9), owner="ann")
        app.complete_activity(done.id)
        app.change_stage(acme, "proposal", cancel_pending=False, actor="ann")
        app.update(acme, value=Money("250", "USD"), expected_close=dt.date(2026, 4, 30))
        app.set_probability(acme, 65, actor="ann")
        app.mark_lost(beta, reason="timing", cancel_pending=False, actor="bob")
        return {"acme": acme, "beta": beta}
    finally:
        app.repository.close()


def titles(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("  ")]


def test_activities_lists_the_planned_ones_soonest_first(
    run: Run, pipeline: dict[str, str]
) -> None:
    done = run("activities")
    assert done.code == 0, done.err
    rows = titles(done.out)
    assert len(rows) == 3
    assert "[!] Call: Chase the invoice - Acme renewal" in rows[0]
    assert "[*] Call: Call the buyer - Beta Corp" in rows[1]
    assert "[>] Call: Plan the review - Acme renewal" in rows[2]
    assert "Old call" not in done.out  # done, not planned
    assert done.lines[0] == "Feb 27, 2026"
    assert all(len(line) <= 80 for line in done.lines)


def test_due_keeps_the_overdue_and_todays(run: Run, pipeline: dict[str, str]) -> None:
    rows = titles(run("activities", "--due").out)
    assert [r.split("] ")[1].split(" - ")[0] for r in rows] == [
        "Call: Chase the invoice",
        "Call: Call the buyer",
    ]


def test_owner_narrows_the_list(run: Run, pipeline: dict[str, str]) -> None:
    rows = titles(run("activities", "--due", "--owner", "bob").out)
    assert len(rows) == 1
    assert "Call the buyer" in rows[0]
    assert rows[0].endswith("bob")


def test_nothing_due(run: Run, pipeline: dict[str, str]) -> None:
    done = run("activities", "--due", "--owner", "nobody")
    assert done.code == 0
    assert done.out == "No planned activities are due.\n"


def test_history_by_id(run: Run, pipeline: dict[str, str]) -> None:
    done = run("history", pipeline["acme"])
    assert done.code == 0, done.err
    lines = done.lines
    assert lines[0] == "History of Acme renewal (now in Proposal, Open)"
    text = "\n".join(lines)
    assert "Created             -        in Lead; $100.00" in text
    assert "Activity scheduled  -        'Chase the invoice'; due Feb 27, 2026" in text
    assert "Stage changed       ann      Lead -> Proposal" in text
    assert "expected_close - -> Apr 30, 2026; value $100.00 -> $250.00" in text
    assert "Probability set     ann      50% -> 65%" in text
    assert text.index("Created") < text.index("Stage changed")
    assert all(len(line) <= 80 for line in lines)


def test_history_by_title_text(run: Run, pipeline: dict[str, str]) -> None:
    done = run("history", "beta corp")
    assert done.code == 0
    assert done.lines[0] == "History of Beta Corp (now in Closed-Lost, Lost)"
    assert "Lead -> Closed-Lost; reason 'timing'" in done.out


def test_history_of_an_ambiguous_text_names_the_candidates(
    run: Run, pipeline: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(title="Acme expansion", value=Money("1", "USD"))
    finally:
        app.repository.close()
    done = run("history", "acme")
    assert done.code == 1
    assert "2 opportunities match 'acme'" in done.err
    assert pipeline["acme"] in done.err
    assert done.err.count("\n") == 1


def test_history_of_nothing(run: Run, pipeline: dict[str, str]) -> None:
    done = run("history", "zzz")
    assert done.code == 1
    assert done.err == ("salesflow: error: no opportunity has the id 'zzz' or 'zzz' in its title\n")
    assert run("history").code == 2
    assert run("history", " ").code == 2


def test_limit_shows_the_soonest(run: Run, pipeline: dict[str, str]) -> None:
    done = run("activities", "--limit", "1")
    assert len(titles(done.out)) == 1
    assert "Chase the invoice" in done.out
    assert done.lines[-1] == "... and 2 more"
    assert len(titles(run("activities", "--limit", "0").out)) == 3
    assert run("activities", "--limit", "x").code == 2


def test_history_of_a_long_title_stays_in_80_columns(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        deal = app.create_opportunity(title="Migration " * 20, value=Money("1", "USD"))
        app.update(deal.opportunity.id, description="A long description " * 10)
    finally:
        app.repository.close()
    done = run("history", "migration")
    assert done.code == 0
    assert done.lines[0].startswith("History of Migration Migration")
    assert all(len(line) <= 80 for line in done.lines)
    assert "(now in Lead, Open)" in done.out.replace("\n  ", " ")
