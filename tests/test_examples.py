"""Run every example as a user would: each script in examples/, checking what it
prints, and each test module there (``test_*.py``) under pytest, as its docstring
says to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("test_"))
#: Examples that are test modules: they show how to test one's own rules.
TEST_EXAMPLES = sorted((ROOT / "examples").glob("test_*.py"))

#: Lines (or parts of lines) a script's output must contain, in this order.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "Scheduled 'Introductory call' for 2026-03-03.",
        "Created 'Northwind Traders' in First contact.",
        "Sent 'Send the course brochure'.",
        "An activity already exists for this action.",
        # completing the call completes its action, and auto-advance moves on
        "Completed 'Introductory call'.",
        "Scheduled 'Demo meeting' for 2026-03-06.",
        "Moved to Demo.",
        "Invited the customer to Spring webinar.",
        "warning: Required action 'Demo meeting' of Demo is not completed.",
        "warning: Activity 'Confirm the attendee list' is overdue (due 2026-03-04).",
        "warning: No expected close date is set.",
        "activity indicator: OVERDUE",
        "would leave 1 planned activity of 'Demo'; answer cancel_pending=True or False",
        "nothing changed: still in demo",
        "Cancelled 1 planned activity of Demo.",
        "Moved to Proposal.",
        "Paused.",
        "is paused: resume it before changing its stage",
        "Resumed.",
        "Stayed in Proposal:",
        "Moved to Negotiation.",
        "Moved to Lost.",
        "Moved to Won.",
        "status WON, probability 100%, closed 2026-03-13",
        "Board",
        "Won             1  total  48,000.00 USD  weighted  48,000.00 USD",
        "Lost            1  total  12,500.00 USD  weighted       0.00 USD",
        "Open stages        total   7,200.00 USD  weighted     720.00 USD",
        "History of Northwind Traders",
        "CREATED",
        "STAGE_CHANGED      contact -> demo",
        "ACTIVITY_CANCELLED 'Confirm the attendee list'",
        "STAGE_CHANGED      negotiation -> won",
    ],
    "custom_process.py": [
        "moving from 'Enquiry' to 'Quote' would skip ['Discovery']",
        "Bulk move to Discovery: 3 moved, 0 failed",
        "Globex: Cancelled 1 planned activity of Enquiry. Moved to Discovery.",
        "Bulk move to Quote: 2 moved, 1 failed",
        "refused Initech seats:",
        "stage 'Quote' requires customer, expected_close to be set",
        "requires a loss reason to move to 'Lost'",
        "Initech seats: LOST, reason 'no budget'",
        "Won Globex on 2026-06-06; contracts sent: ['Globex']",
        "Quote      1    2,400.00    1,440.00 EUR",
        "Won        1   18,000.00   18,000.00 EUR",
    ],
    "feed_consumer.py": [
        "consumer killed with SIGKILL, -9, behind the feed: True",
        "consumer restarted, exit code 0",
        "events in the feed: 99; applied by the model: 99",
        "cursor at the last position: True",
        "matches the pipeline: True",
        "kari    9 open deals, weighted    22,050.00 EUR",
        "nora    8 open deals, weighted    41,587.50 EUR",
        "ola     8 open deals, weighted    28,800.00 EUR",
    ],
}


def run(script: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )


def test_there_are_examples() -> None:
    assert ROOT / "examples" / "quickstart.py" in EXAMPLES
    assert ROOT / "examples" / "test_my_rules.py" in TEST_EXAMPLES


@pytest.mark.parametrize("module", TEST_EXAMPLES, ids=[p.name for p in TEST_EXAMPLES])
def test_example_tests_pass(module: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert done.returncode == 0, f"{module.name} failed:\n{done.stdout}\n{done.stderr}"
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "failed" not in summary
    assert "skipped" not in summary


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path) -> None:
    done = run(script)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stderr == ""
    assert done.stdout.strip(), f"{script.name} printed nothing"
    output = done.stdout
    position = 0
    for expected in EXPECTED.get(script.name, []):
        found = output.find(expected, position)
        assert found >= 0, f"{script.name}: {expected!r} missing after offset {position}"
        position = found + len(expected)
