"""What every case shares: the sizes, timing, and the row a case reports."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import statistics
import time
from collections.abc import Callable
from typing import Literal

#: Where large stores are built once and reused (gitignored).
CACHE = pathlib.Path(__file__).resolve().parent / ".cache"

#: The PostgreSQL database the PostgreSQL cases use, when set.
POSTGRES_ENV = "SALESFLOW_TEST_POSTGRES_DSN"

SizeName = Literal["small", "full"]


@dataclasses.dataclass(frozen=True)
class Size:
    """How big each case's store and how many samples, for one ``--size``."""

    name: SizeName
    #: change_stage in memory against a pytransitions trigger: timed calls per side.
    command_calls: int
    #: A command per transaction on SQLite: timed commits per side.
    commit_calls: int
    #: change_stage at N stored: the small store and the large one.
    stored_small: int
    stored_large: int
    #: change_stage at N stored: timed calls per store.
    stored_calls: int
    #: create_opportunities into SQLite: how many opportunities.
    bulk: int
    #: load from SQLite: how many opportunities (the large change_stage store).
    load: int
    #: search, pipeline, forecast and analytics: how many opportunities stored.
    query: int
    #: pipeline(as_of=...): how many opportunities stored, each with ten events.
    history: int
    #: memory per opportunity: how many opportunities are measured.
    memory: int
    #: import salesflow: fresh processes per side.
    imports: int
    #: The most seconds a slow side of a case spends repeating itself.
    budget: float


SIZES: dict[str, Size] = {
    "small": Size(
        name="small",
        command_calls=2_000,
        commit_calls=200,
        stored_small=1_000,
        stored_large=10_000,
        stored_calls=100,
        bulk=2_000,
        load=10_000,
        query=20_000,
        history=5_000,
        memory=1_000,
        imports=10,
        budget=5.0,
    ),
    "full": Size(
        name="full",
        command_calls=20_000,
        commit_calls=1_000,
        stored_small=1_000,
        stored_large=100_000,
        stored_calls=400,
        bulk=100_000,
        load=100_000,
        query=1_000_000,
        history=100_000,
        memory=10_000,
        imports=30,
        budget=90.0,
    ),
}

Goal = Literal["at_most", "at_least", "bytes", "unknown"]


@dataclasses.dataclass(frozen=True)
class Target:
    """A case's target: salesflow's time at most ``limit`` x the baseline's
    (``at_most``), salesflow's throughput at least ``limit`` x the baseline's
    (``at_least``), or at most ``limit`` bytes (``bytes``, no baseline). ``seconds``
    adds an absolute bound on salesflow's median."""

    goal: Goal
    limit: float
    seconds: float | None = None

    def text(self) -> str:
        if self.goal == "unknown":
            return "-"
        if self.goal == "bytes":
            return f"<= {self.limit / 1024:g} KB"
        sign = "<=" if self.goal == "at_most" else ">="
        suffix = " throughput" if self.goal == "at_least" else ""
        under = f", under {self.seconds:g} s" if self.seconds is not None else ""
        return f"{sign} {self.limit:g}x{suffix}{under}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One printed line: a case, both medians (seconds; bytes for a memory case),
    their ratio, the target and whether it was met. ``ratio`` is salesflow's time
    over the baseline's for ``at_most`` targets and the baseline's time over
    salesflow's (salesflow's relative throughput) for ``at_least`` ones."""

    case: str
    salesflow: float | None
    baseline: float | None
    target: Target
    note: str = ""
    skipped: str = ""

    @property
    def ratio(self) -> float | None:
        if self.salesflow is None or self.baseline is None:
            return None
        if self.target.goal == "at_least":
            return self.baseline / self.salesflow
        return self.salesflow / self.baseline

    @property
    def met(self) -> bool | None:
        if self.skipped or self.salesflow is None:
            return None
        if self.target.goal == "bytes":
            return self.salesflow <= self.target.limit
        ratio = self.ratio
        if ratio is None:
            return None
        ok = (
            ratio <= self.target.limit
            if self.target.goal == "at_most"
            else (ratio >= self.target.limit)
        )
        if self.target.seconds is not None:
            ok = ok and self.salesflow < self.target.seconds
        return ok

    def cells(self) -> list[str]:
        if self.skipped:
            return [self.case, "-", "-", "-", self.target.text(), "skipped"]
        if self.target.goal == "bytes":
            value = "-" if self.salesflow is None else f"{self.salesflow:,.0f} B"
            ratio = "-"
        else:
            value = duration(self.salesflow)
            ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        verdict = {True: "met", False: "missed", None: "-"}[self.met]
        return [self.case, value, duration(self.baseline), ratio, self.target.text(), verdict]

    def as_dict(self) -> dict[str, object]:
        return {
            "case": self.case,
            "salesflow": self.salesflow,
            "baseline": self.baseline,
            "target": dataclasses.asdict(self.target),
            "note": self.note,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Row:
        target = data["target"]
        assert isinstance(target, dict)
        return cls(
            case=str(data["case"]),
            salesflow=_number(data["salesflow"]),
            baseline=_number(data["baseline"]),
            target=Target(**target),
            note=str(data["note"]),
            skipped=str(data["skipped"]),
        )


def _number(value: object) -> float | None:
    return None if value is None else float(str(value))


def duration(seconds: float | None) -> str:
    """A duration for people: 11.6 µs, 2.70 ms, 3.41 s."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def repeat(
    call: Callable[[], object], *, at_least: int, at_most: int, budget: float
) -> list[float]:
    """Time ``call`` at least ``at_least`` times, and more (up to ``at_most``) while the
    time spent stays under ``budget`` seconds."""
    samples: list[float] = []
    spent = 0.0
    while len(samples) < at_least or (len(samples) < at_most and spent < budget):
        sample = timed(call)
        samples.append(sample)
        spent += sample
    return samples


def postgres_dsn() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None
