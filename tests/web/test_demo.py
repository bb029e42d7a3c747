"""The board's command line and its demo pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_board import SERVICES, seed_demo
from web_board.cli import parse

from salesflow import SalesFlow, Status
from salesflow.sqlite import SQLiteRepository


def test_the_demo_is_seeded_once_per_store(tmp_path: Path) -> None:
    path = tmp_path / "board.db"
    repository = SQLiteRepository(path)
    try:
        flow = SalesFlow(repository)
        created = seed_demo(flow)
        assert created == flow.search(limit=0).total > 0
        assert flow.process("services") == SERVICES
        assert seed_demo(flow) == 0
        again = SQLiteRepository(path)
        try:
            assert seed_demo(SalesFlow(again)) == 0
            assert SalesFlow(again).search(limit=0).total == created
        finally:
            again.close()
    finally:
        repository.close()


def test_the_demo_has_a_won_and_a_lost_deal() -> None:
    flow = SalesFlow()
    seed_demo(flow)
    statuses = [o.status for o in flow.search(process="services", limit=100).items]
    assert statuses.count(Status.WON) == 1
    assert statuses.count(Status.LOST) == 1
    (lost,) = flow.search(process="services", statuses="lost").items
    assert lost.loss_reason in SERVICES.loss_reasons


def test_the_command_line() -> None:
    defaults = parse([])
    assert (defaults.db, defaults.host, defaults.port, defaults.process) == (
        None,
        "127.0.0.1",
        8000,
        None,
    )
    assert not defaults.no_demo
    chosen = parse(["--db", "x.db", "--port", "9000", "--process", "standard", "--no-demo"])
    assert (chosen.db, chosen.port, chosen.process, chosen.no_demo) == (
        "x.db",
        9000,
        "standard",
        True,
    )
    with pytest.raises(SystemExit):
        parse(["--port", "eighty"])
