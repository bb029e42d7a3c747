"""Reports as of a past moment equal the live reports taken at that moment.

Random command sequences (replacing the process' definition among them) run under a
clock that moves on by random steps (zero too, so several commands share a moment);
after each command the live reports are kept
under the clock's time. At the end, each report ``as_of`` each kept moment must equal
the one kept -- on every repository. The Monte Carlo ranges are checked against the
exact distribution of small random cases.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesflow import (
    FixedClock,
    Money,
    Process,
    SalesFlow,
    StageKind,
    StaticRates,
    processes,
    reporting,
)
from salesflow.errors import SalesflowError
from salesflow.queries import ClosedDeal
from salesflow.reporting import percentiles
from tests.application.conftest import MakeApp
from tests.application.test_reports import exact_percentiles
from tests.conftest import START

STAGES = ("lead", "qualification", "proposal", "negotiation", "won", "lost")
OWNERS = (None, "ann", "bob")
DAY = dt.timedelta(days=1)

amounts = st.decimals(min_value=0, max_value=100_000, places=2).map(str)
money = st.builds(lambda a, c: Money(Decimal(a), c), amounts, st.sampled_from(("GBP", "EUR")))
days = st.integers(min_value=0, max_value=60).map(lambda n: START.date() + n * DAY)

#: One command: its name and its arguments (``pick`` chooses the opportunity).
commands = st.one_of(
    st.tuples(
        st.just("create"),
        st.fixed_dictionaries(
            {
                "value": money,
                "stage": st.sampled_from(STAGES[:4]),
                "owner": st.sampled_from(OWNERS),
                "expected_close": st.none() | days,
                "probability": st.none() | st.integers(0, 100),
            }
        ),
    ),
    st.tuples(st.just("move"), st.sampled_from(STAGES)),
    st.tuples(st.just("value"), st.decimals(min_value=0, max_value=50_000, places=2)),
    st.tuples(st.just("annual"), st.none() | st.decimals(min_value=0, max_value=90_000, places=2)),
    st.tuples(st.just("close"), st.none() | days),
    st.tuples(st.just("probability"), st.none() | st.integers(0, 100)),
    st.tuples(st.just("pause"), st.none()),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("redefine"), st.integers(0, 2)),
)
steps = st.lists(
    st.tuples(commands, st.integers(0, 10_000), st.sampled_from((0, 0, 1, 3600, 86_400 * 3))),
    min_size=1,
    max_size=14,
)


#: The standard process with its closing stages listed between the open ones.
CLOSED_FIRST = attrs.evolve(
    processes.STANDARD,
    stages=tuple(
        processes.STANDARD.stage(key)
        for key in ("lead", "won", "qualification", "lost", "proposal", "negotiation")
    ),
)

#: Versions of the standard process to replace it with: as it ships, without
#: "proposal" (its deals go to "qualification"), and with other probabilities.
VERSIONS = (
    processes.STANDARD,
    attrs.evolve(
        processes.STANDARD,
        stages=tuple(s for s in processes.STANDARD.stages if s.key != "proposal"),
    ),
    attrs.evolve(
        processes.STANDARD,
        stages=tuple(
            attrs.evolve(s, probability={"lead": 20, "negotiation": 80}.get(s.key, s.probability))
            for s in processes.STANDARD.stages
        ),
    ),
)


def run(app: SalesFlow, ids: list[str], command: tuple[str, Any], pick: int) -> None:
    name, argument = command
    if name == "redefine":
        version = VERSIONS[argument]
        keys = {s.key for s in version.stages}
        dropped = [s.key for s in app.process("standard").stages if s.key not in keys]
        app.define_process(version, stage_map=dict.fromkeys(dropped, "qualification") or None)
        return
    if name == "create":
        ids.append(app.create_opportunity(title="deal", **argument).opportunity.id)
        return
    if not ids:
        return
    target = ids[pick % len(ids)]
    current = app.get(target)
    if name == "move":
        app.change_stage(target, argument, cancel_pending=True)
    elif name == "value":
        app.update(target, value=Money(argument, current.value.currency))
    elif name == "annual":
        annual = None if argument is None else Money(argument, current.value.currency)
        app.update(target, annual_value=annual)
    elif name == "close":
        app.update(target, expected_close=argument)
    elif name == "probability":
        app.set_probability(target, argument)
    elif name == "pause":
        app.pause(target)
    else:
        app.resume(target)


def reports(app: SalesFlow, as_of: dt.datetime | None = None) -> tuple[object, ...]:
    period = {"start": START.date() + 5 * DAY, "end": START.date() + 40 * DAY}
    return (
        app.pipeline(currency="GBP", as_of=as_of),
        app.pipeline(currency="EUR", basis="annual_value", probability="stage", as_of=as_of),
        app.pipeline(currency="GBP", owner="ann", as_of=as_of),
        app.forecast(**period, currency="GBP", as_of=as_of),  # type: ignore[arg-type]
        app.forecast(
            **period,  # type: ignore[arg-type]
            currency="EUR",
            group_by="month",
            as_of=as_of,
            simulations=25,
            seed=11,
        ),
        app.forecast(**period, currency="GBP", group_by="owner", owner="ann", as_of=as_of),  # type: ignore[arg-type]
        app.forecast(**period, currency="GBP", group_by="stage", as_of=as_of),  # type: ignore[arg-type]
    )


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=steps)
def test_reports_as_of_a_moment_equal_the_live_ones_then(
    make_app: MakeApp, sequence: list[tuple[tuple[str, Any], int, int]]
) -> None:
    clock = FixedClock(START)
    app = make_app(clock=clock, rates=StaticRates({("EUR", "GBP"): Decimal("0.87")}))
    ids: list[str] = []
    kept: dict[dt.datetime, tuple[object, ...]] = {START - DAY: reports(app)}
    for command, pick, seconds in sequence:
        clock.advance(dt.timedelta(seconds=seconds))
        with contextlib.suppress(SalesflowError):  # a refused command changes nothing
            run(app, ids, command, pick)
        kept[clock.now()] = reports(app)
    clock.advance(DAY)
    for moment, expected in kept.items():
        assert reports(app, as_of=moment) == expected, moment


@settings(max_examples=40, deadline=None)
@given(
    base=st.integers(0, 100),
    deals=st.lists(st.tuples(st.integers(1, 500), st.integers(0, 100)), min_size=1, max_size=5),
    seed=st.integers(0, 2**32),
)
def test_simulated_ranges_lie_within_the_exact_distribution(
    base: int, deals: list[tuple[int, int]], seed: int
) -> None:
    # With 4,000 outcomes the empirical distribution is within 0.05 of the exact one
    # everywhere but with a chance below 1e-8 (Dvoretzky-Kiefer-Wolfowitz), so each
    # simulated percentile lies between the exact ones at q - 5% and q + 5%.
    found = percentiles(
        Decimal(base), [(Decimal(a), p) for a, p in deals], simulations=4000, seed=seed
    )
    for q, simulated in zip((10, 50, 90), found, strict=True):
        low, high = exact_percentiles(base, deals, (q - 5, q + 5), out_of=100)
        assert low <= simulated <= high, (q, simulated, low, high)


@settings(max_examples=60, deadline=None)
@given(
    paths=st.lists(
        st.tuples(
            st.booleans(),
            st.lists(
                st.tuples(st.integers(0, 5 * 86_400), st.sampled_from((*STAGES, "gone"))),
                min_size=1,
                max_size=7,
            ),
        ),
        max_size=8,
    ),
    process=st.sampled_from((processes.STANDARD, CLOSED_FIRST)),
)
def test_stage_figures_follow_their_definitions(
    paths: list[tuple[bool, list[Any]]], process: Process
) -> None:
    # Each deal's path (moments apart, stages), checked against the definitions read
    # literally: "reached" = created in it or moved into it at any time; conversion =
    # later reached an open stage after it in process order, or a WON stage wherever
    # the process lists it (LOST does not count).
    place = {s.key: i for i, s in enumerate(process.stages)}
    deals = []
    for n, (won, steps) in enumerate(paths):
        moment, path = START, []
        for seconds, stage in steps:
            moment += dt.timedelta(seconds=seconds)
            path.append((moment, stage))
        deals.append(
            ClosedDeal(
                id=f"d{n}",
                won=won,
                currency="GBP",
                value=Decimal(n),
                created_at=START,
                closed_on=moment.date(),
                loss_reason=None,
                path=tuple(path),
            )
        )
    found = reporting.analytics(
        process,
        deals,
        start=None,
        end=None,
        currency="GBP",
        convert=reporting.converter(None),
        timezone=dt.UTC,
    )
    for stage in process.stages:
        key = stage.key
        behind = []
        for deal in deals:
            known = [(at, s) for at, s in deal.path if s in place]
            firsts = [i for i, (_, s) in enumerate(known) if s == key]
            if not firsts:
                continue
            later = known[firsts[0] + 1 :]
            # A later WON stage counts wherever the process lists it, a LOST one never.
            went_on = any(
                process.stage(s).kind is StageKind.WON
                or (place[s] > place[key] and process.stage(s).kind is StageKind.OPEN)
                for _, s in later
            )
            # A stay lasts until the next stage entered, one the process no longer has
            # ("gone") too.
            stays = [
                (deal.path[i + 1][0] - at).total_seconds() / 86_400
                for i, (at, s) in enumerate(deal.path[:-1])
                if s == key
            ]
            behind.append((deal.won, went_on, sum(stays) if stays else None))
        assert found.reached[key] == len(behind)
        won_share = sum(w for w, _, _ in behind) / len(behind) if behind else None
        assert found.stage_win_rates[key] == won_share
        if stage.kind is StageKind.OPEN:
            on_share = sum(g for _, g, _ in behind) / len(behind) if behind else None
            assert found.conversion[key] == on_share
            stays = [d for _, _, d in behind if d is not None]
            average = found.average_days_in_stage[key]
            assert (average is None) == (not stays)
            if stays:
                assert average == pytest.approx(sum(stays) / len(stays))
