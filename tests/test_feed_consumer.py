"""examples/feed_consumer.py: a consumer killed with SIGKILL again and again, while
the pipeline keeps changing, misses nothing and counts nothing twice."""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path
from types import ModuleType

import pytest

from salesflow import SalesFlow
from salesflow.sqlite import SQLiteRepository

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "feed_consumer", ROOT / "examples" / "feed_consumer.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


consumer = _example()


@pytest.mark.parametrize("pause", ["0", "0.01"])
def test_a_consumer_killed_and_restarted_ends_where_one_that_never_died_would(
    tmp_path: Path, pause: str
) -> None:
    pipeline, model_path = tmp_path / "pipeline.db", tmp_path / "owners.db"
    repository = SQLiteRepository(pipeline)
    try:
        app = SalesFlow(repository)
        consumer.write_some(app, 0, 15)
        for round_, start in enumerate((15, 30, 45)):
            process = consumer.start_consumer(pipeline, model_path, "--pause", pause)
            # Killed while writers are still at work and it is behind.
            consumer.wait_for(model_path, 10 + 40 * round_)
            consumer.write_some(app, start, 3)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=30) == -signal.SIGKILL
            consumer.write_some(app, start + 3, 12)
        model = consumer.ReadModel(model_path)
        try:
            behind = model.cursor()
        finally:
            model.close()
        feed = app.changes(limit=10_000)
        assert behind < feed[-1].position
        last = consumer.start_consumer(pipeline, model_path, "--until-idle")
        assert last.wait(timeout=60) == 0

        model = consumer.ReadModel(model_path)
        try:
            assert model.cursor() == feed[-1].position
            assert model.applied() == len(feed)  # each event once
            figures = model.owners()
            assert figures == consumer.expected(app)
            assert sum(count for count, _ in figures.values()) > 10
        finally:
            model.close()
    finally:
        repository.close()


def test_the_model_refuses_an_event_it_has_already_applied(tmp_path: Path) -> None:
    repository = SQLiteRepository(tmp_path / "pipeline.db")
    try:
        app = SalesFlow(repository)
        consumer.write_some(app, 0, 2)
        feed = app.changes()
        model = consumer.ReadModel(tmp_path / "owners.db")
        try:
            model.apply(feed[:3])
            with pytest.raises(RuntimeError, match="is not after"):
                model.apply(feed[2:])
            assert (model.cursor(), model.applied()) == (3, 3)  # the page changed nothing
            model.apply(feed[3:])
            assert model.owners() == consumer.expected(app)
        finally:
            model.close()
    finally:
        repository.close()
