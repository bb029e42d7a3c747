"""The two processes every ``SalesFlow`` defines: ``STANDARD`` (seed 002) and
``SIMPLE`` (seed 004)."""

from __future__ import annotations

from salesflow.domain.process import Process, Stage
from salesflow.domain.values import CancelPolicy, StageKind

__all__ = ["SIMPLE", "STANDARD"]

STANDARD = Process(
    "standard",
    "Standard sales process",
    (
        Stage("lead", "Lead", 15),
        Stage("qualification", "Qualification", 30),
        Stage("proposal", "Proposal", 50),
        Stage("negotiation", "Negotiation", 75),
        Stage("won", "Closed-Won", 100, StageKind.WON),
        Stage("lost", "Closed-Lost", 0, StageKind.LOST),
    ),
    cancel_pending=CancelPolicy.ASK,
)

SIMPLE = Process(
    "simple",
    "Simple sales process",
    (
        Stage("lead", "Lead", 10),
        Stage("pitching", "Pitching", 30),
        Stage("quoting", "Quoting", 50),
        Stage("closing", "Closing", 75),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    cancel_pending=CancelPolicy.ASK,
)
