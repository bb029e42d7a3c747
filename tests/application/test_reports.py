"""Reports on every repository: the pipeline, the forecast, analytics and stuck deals.

One suite for memory, SQLite and PostgreSQL (the ``app`` / ``make_app`` fixtures), so
each report gives the same answer on every backend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import attrs
import pytest

from salesflow import (
    FixedClock,
    Money,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageKind,
    StaticRates,
)
from salesflow.errors import CurrencyMismatch, MissingExchangeRate, ValidationError
from salesflow.ports import ExchangeRates
from tests.application.conftest import MakeApp
from tests.conftest import START

DAY = dt.timedelta(days=1)
TODAY = START.date()

#: Seed 000's board: the stage's win probability weighs the annual contract value.
BOARD = Process(
    "board",
    "Recruitment board",
    (
        Stage("lead", "Lead", 10),
        Stage("pitch", "Pitch", 33, rot_after=dt.timedelta(days=7)),
        Stage("offer", "Offer", 60, rot_after=dt.timedelta(days=3)),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="GBP",
)


def gbp(amount: str | int | Decimal) -> Money:
    return Money(Decimal(amount), "GBP")


def summary(app: SalesFlow, stage: str, **options: object) -> tuple[int, Money, Money]:
    found = app.pipeline("board", **options)  # type: ignore[arg-type]
    row = next(s for s in found.stages if s.stage.key == stage)
    return row.count, row.total, row.weighted


# -- pipeline --------------------------------------------------------------------------


def test_seed_000_weighs_the_annual_value_by_the_stage_probability(app: SalesFlow) -> None:
    app.define_process(BOARD)
    app.create_opportunity(
        customer=Organization("o-1", "Acme"),
        process="board",
        stage="pitch",
        value=gbp(20_000),
        annual_value=gbp(65_000),
        probability=80,  # the deal's own guess; the board uses the stage's 33%
    )
    count, total, weighted = summary(app, "pitch", basis="annual_value", probability="stage")
    assert (count, total, weighted) == (1, gbp(65_000), gbp(21_450))
    # By the deal's own probability and value instead: 80% of 20,000.
    assert summary(app, "pitch")[1:] == (gbp(20_000), gbp(16_000))


def test_each_figure_is_rounded_once_from_the_exact_sum(app: SalesFlow) -> None:
    app.define_process(BOARD)
    for _ in range(3):
        app.create_opportunity(title="t", process="board", stage="offer", value=gbp("10.005"))
    app.create_opportunity(title="u", process="board", stage="lead", value=gbp("0.004"))
    found = app.pipeline("board", probability="stage")
    offer = found.stages[2]
    # 3 x 10.005 = 30.015 -> 30.02; 60% of it = 18.009 -> 18.01. Rounding each deal
    # first would give 3 x 10.01 = 30.03 and 3 x 6.00 = 18.00.
    assert (offer.total, offer.weighted) == (gbp("30.02"), gbp("18.01"))
    # The overall total rounds the exact 30.019, not the sum of the rounded figures.
    assert found.total == gbp("30.02")
    assert found.stages[0].total == gbp("0.00")


def test_the_pipeline_lists_every_stage_and_counts_paused_deals_apart(app: SalesFlow) -> None:
    app.define_process(BOARD)
    a = app.create_opportunity(title="a", process="board", value=gbp(100)).opportunity
    app.create_opportunity(title="b", process="board", stage="offer", value=gbp(300))
    c = app.create_opportunity(title="c", process="board", stage="offer", value=gbp(500))
    app.pause(c.opportunity.id)
    app.mark_won(a.id, cancel_pending=True)
    found = app.pipeline("board")
    assert [s.stage.key for s in found.stages] == ["lead", "pitch", "offer", "won", "lost"]
    assert [s.count for s in found.stages] == [0, 0, 1, 1, 0]
    assert found.paused == 1
    # Open stages only: the won deal is in its stage's summary, not in the totals.
    assert (found.total, found.weighted) == (gbp(300), gbp(180))
    assert found.stages[3].total == gbp(100)


def test_the_pipeline_of_one_owner(app: SalesFlow) -> None:
    app.define_process(BOARD)
    app.create_opportunity(title="a", process="board", value=gbp(100), owner="ann")
    app.create_opportunity(title="b", process="board", value=gbp(300), owner="bob")
    assert app.pipeline("board", owner="ann").total == gbp(100)
    assert app.pipeline("board", owner="cid").total == gbp(0)


def test_mixed_currencies_need_a_currency_and_rates(make_app: MakeApp) -> None:
    app = make_app()
    app.create_opportunity(title="a", value=Money(100, "GBP"))
    app.create_opportunity(title="b", value=Money(100, "EUR"))
    with pytest.raises(CurrencyMismatch, match="currency="):
        app.pipeline()
    with pytest.raises(MissingExchangeRate, match=r"EUR to GBP|GBP to EUR"):
        app.pipeline(currency="GBP")
    rated = make_app(rates=StaticRates({("EUR", "GBP"): Decimal("0.85")}))
    rated.create_opportunity(title="a", value=Money(100, "GBP"))
    rated.create_opportunity(title="b", value=Money(100, "EUR"))
    assert rated.pipeline(currency="GBP").total == gbp(185)
    # The inverse is derived: 100 GBP is 117.647... EUR, rounded once.
    assert rated.pipeline(currency="EUR").total == Money(Decimal("217.65"), "EUR")
    with pytest.raises(MissingExchangeRate, match=r"(EUR|GBP) to USD"):
        rated.pipeline(currency="USD")


class DatedRates(ExchangeRates):
    """EUR in GBP: 0.80 before 2026-03-05, 0.90 from then on; remembers each day asked."""

    def __init__(self) -> None:
        self.asked: list[dt.date] = []

    def rate(self, base: str, quote: str, on: dt.date) -> Decimal:
        self.asked.append(on)
        found = Decimal("0.80") if on < dt.date(2026, 3, 5) else Decimal("0.90")
        return found if (base, quote) == ("EUR", "GBP") else 1 / found


def test_rates_are_taken_at_the_reports_date(make_app: MakeApp, clock: FixedClock) -> None:
    rates = DatedRates()
    app = make_app(rates=rates)
    app.create_opportunity(title="a", value=Money(100, "EUR"))
    start = clock.now()
    clock.advance(5 * DAY)
    assert app.pipeline(currency="GBP").total == gbp(90)
    assert rates.asked[-1] == clock.now().date()
    assert app.pipeline(currency="GBP", as_of=start).total == gbp(80)
    assert rates.asked[-1] == start.date()


def test_a_failing_rates_port_is_a_missing_rate(make_app: MakeApp) -> None:
    class Broken(ExchangeRates):
        def rate(self, base: str, quote: str, on: dt.date) -> Decimal:
            raise LookupError("down")

    app = make_app(rates=Broken())
    app.create_opportunity(title="a", value=Money(100, "EUR"))
    with pytest.raises(MissingExchangeRate, match="EUR to GBP"):
        app.pipeline(currency="GBP")


def test_a_rate_too_large_to_sum_exactly_is_a_validation_error(make_app: MakeApp) -> None:
    class Huge(ExchangeRates):
        def rate(self, base: str, quote: str, on: dt.date) -> Decimal:
            return Decimal("1e30")

    app = make_app(rates=Huge())
    day = START.date()
    app.create_opportunity(title="a", value=Money(100, "EUR"), expected_close=day)
    app.create_opportunity(title="b", value=Money(100, "GBP"), expected_close=day)
    with pytest.raises(ValidationError, match=r"pipeline: the amounts.* too large"):
        app.pipeline(currency="GBP")
    with pytest.raises(ValidationError, match=r"forecast: the amounts.* too large"):
        app.forecast(start=day, end=day, currency="GBP")


# -- as of ---------------------------------------------------------------------------


def test_the_pipeline_as_it_stood(app: SalesFlow, clock: FixedClock) -> None:
    app.define_process(BOARD)
    a = app.create_opportunity(title="a", process="board", value=gbp(100)).opportunity
    first = clock.now()
    before = app.pipeline("board")
    clock.advance(DAY)
    app.change_stage(a.id, "offer", cancel_pending=True)
    app.update(a.id, value=gbp(250))
    app.create_opportunity(title="b", process="board", value=gbp(40))
    app.pause(a.id)
    clock.advance(DAY)
    assert app.pipeline("board", as_of=first) == before
    assert app.pipeline("board", as_of=first - dt.timedelta(microseconds=1)).stages[0].count == 0
    # Inclusive: everything done at that very moment is in.
    middle = app.pipeline("board", as_of=first + DAY)
    assert middle == app.pipeline("board")
    assert middle.paused == 1
    assert middle.stages[0].total == gbp(40)


def test_reports_as_of_a_moment_read_the_stages_as_they_were_defined_then(
    app: SalesFlow, clock: FixedClock
) -> None:
    app.define_process(BOARD)
    deal = app.create_opportunity(title="a", process="board", value=gbp(100)).opportunity
    clock.advance(DAY)
    app.change_stage(deal.id, "pitch")
    clock.advance(2 * DAY)
    then = clock.now()
    before = app.pipeline("board")
    by_stage = app.pipeline("board", probability="stage")
    clock.advance(DAY)
    # The next version drops "pitch" (its deal goes to "offer") and reweighs "offer".
    stages = tuple(
        attrs.evolve(s, probability=70) if s.key == "offer" else s
        for s in BOARD.stages
        if s.key != "pitch"
    )
    app.define_process(attrs.evolve(BOARD, stages=stages), stage_map={"pitch": "offer"})
    assert [s.stage.key for s in app.pipeline("board").stages] == ["lead", "offer", "won", "lost"]
    assert app.pipeline("board", as_of=then) == before
    assert app.pipeline("board", as_of=then, probability="stage") == by_stage
    assert summary(app, "pitch", as_of=then) == (1, gbp(100), gbp(33))
    # Before the process was first defined, the board was not there: no deal in it.
    assert app.pipeline("board", as_of=then - 4 * DAY).stages[1].count == 0
    clock.advance(4 * DAY)
    app.mark_won(deal.id)
    # One day in lead; the three in the dropped "pitch" are not given to any stage.
    days = app.analytics("board").average_days_in_stage
    assert dict(days) == {"lead": 1.0, "offer": 4.0}


def test_the_built_in_process_as_it_stood_before_it_was_replaced(
    app: SalesFlow, clock: FixedClock
) -> None:
    standard = app.process("standard")
    app.create_opportunity(title="a", stage="proposal", value=Money(1000, "USD"))
    clock.advance(DAY)
    then = clock.now()
    before = app.pipeline()
    clock.advance(DAY)
    fewer = tuple(s for s in standard.stages if s.key != "proposal")
    app.define_process(attrs.evolve(standard, stages=fewer), stage_map={"proposal": "lead"})
    assert app.pipeline(as_of=then) == before
    assert app.pipeline(as_of=then).stages[2].stage == standard.stages[2]


def test_a_forecast_as_it_stood_at_the_start_of_a_period(app: SalesFlow, clock: FixedClock) -> None:
    # Forecast accuracy: the forecast as it stood when the period began, beside what
    # was won in it.
    close = TODAY + 10 * DAY
    a = app.create_opportunity(title="a", value=gbp(1000), expected_close=close)
    b = app.create_opportunity(title="b", value=gbp(500), expected_close=close)
    app.create_opportunity(title="c", value=gbp(700), expected_close=close + 40 * DAY)
    period = {"start": TODAY + DAY, "end": TODAY + 30 * DAY, "currency": "GBP"}
    opening = clock.now()
    clock.advance(5 * DAY)
    app.change_stage(a.opportunity.id, "negotiation", cancel_pending=True)
    clock.advance(5 * DAY)
    app.mark_won(a.opportunity.id, cancel_pending=True)
    app.mark_lost(b.opportunity.id, cancel_pending=True)
    then = app.forecast(**period, as_of=opening)  # type: ignore[arg-type]
    now = app.forecast(**period)  # type: ignore[arg-type]
    assert (then.count, then.expected, then.best_case, then.won) == (
        2,
        gbp(225),  # 15% of 1,500
        gbp(1500),
        gbp(0),
    )
    assert (now.count, now.won, now.won_count) == (0, gbp(1000), 1)


# -- forecast --------------------------------------------------------------------------


def forecast_fixture(app: SalesFlow) -> None:
    app.define_process(BOARD)
    day = TODAY + 3 * DAY
    app.create_opportunity(title="a", value=gbp(1000), expected_close=day, owner="ann")
    app.create_opportunity(
        title="b", value=gbp(300), expected_close=day + 31 * DAY, owner="bob", probability=40
    )
    app.create_opportunity(title="c", value=gbp(999), expected_close=day + 90 * DAY)
    app.create_opportunity(title="d", value=gbp(50), expected_close=day)
    paused = app.create_opportunity(title="e", value=gbp(777), expected_close=day)
    app.pause(paused.opportunity.id)
    won = app.create_opportunity(title="f", value=gbp(400), owner="ann", stage="negotiation")
    app.mark_won(won.opportunity.id, cancel_pending=True)
    app.create_opportunity(
        title="g", process="board", stage="offer", value=gbp(200), expected_close=day
    )


def test_forecast_sums_the_period(app: SalesFlow) -> None:
    forecast_fixture(app)
    found = app.forecast(start=TODAY, end=TODAY + 60 * DAY, currency="GBP")
    # a (15% of 1,000), b (40% of 300), d (15% of 50), g (60% of 200); c is later,
    # e is paused; f was won today.
    assert found.count == 4
    assert found.expected == gbp("397.50")
    assert found.best_case == gbp(1550)
    assert (found.won, found.won_count) == (gbp(400), 1)
    assert found.rows == ()
    assert found.p10 is None


def test_forecast_filters_by_process_and_owner(app: SalesFlow) -> None:
    forecast_fixture(app)
    period = {"start": TODAY, "end": TODAY + 60 * DAY, "currency": "GBP"}
    board = app.forecast(**period, process="board")  # type: ignore[arg-type]
    assert (board.count, board.expected, board.won) == (1, gbp(120), gbp(0))
    ann = app.forecast(**period, owner="ann")  # type: ignore[arg-type]
    assert (ann.count, ann.best_case, ann.won) == (1, gbp(1000), gbp(400))


def test_forecast_groups_by_owner_stage_and_month(app: SalesFlow) -> None:
    forecast_fixture(app)
    period = {"start": TODAY, "end": TODAY + 60 * DAY, "currency": "GBP"}
    by_owner = app.forecast(**period, group_by="owner")  # type: ignore[arg-type]
    assert [(r.key, r.count, r.expected, r.won) for r in by_owner.rows] == [
        (None, 2, gbp("127.50"), gbp(0)),
        ("ann", 1, gbp(150), gbp(400)),
        ("bob", 1, gbp(120), gbp(0)),
    ]
    by_stage = app.forecast(**period, group_by="stage")  # type: ignore[arg-type]
    assert [(r.key, r.count, r.best_case, r.won_count) for r in by_stage.rows] == [
        ("lead", 3, gbp(1350), 0),
        ("offer", 1, gbp(200), 0),
        ("won", 0, gbp(0), 1),
    ]
    by_month = app.forecast(**period, group_by="month")  # type: ignore[arg-type]
    assert [(r.key, r.count, r.expected, r.won) for r in by_month.rows] == [
        ("2026-03", 3, gbp("277.50"), gbp(400)),
        ("2026-04", 1, gbp(120), gbp(0)),
    ]
    assert sum((r.expected for r in by_month.rows), gbp(0)) == by_month.expected


def exact_percentiles(
    base: int, deals: list[tuple[int, int]], levels: tuple[int, ...], *, out_of: int = 10
) -> list[Decimal]:
    """The nearest-rank quantiles (at each of ``levels`` / ``out_of``) of the exact
    distribution of base + each deal's amount won with its probability (a
    percentage), by enumerating every outcome."""
    outcomes: dict[Decimal, Decimal] = {}
    for mask in range(2 ** len(deals)):
        chance, total = Decimal(1), Decimal(base)
        for i, (amount, probability) in enumerate(deals):
            if mask >> i & 1:
                chance *= Decimal(probability) / 100
                total += amount
            else:
                chance *= 1 - Decimal(probability) / 100
        outcomes[total] = outcomes.get(total, Decimal(0)) + chance
    found = []
    for level in levels:
        running = Decimal(0)
        for total in sorted(outcomes):
            running += outcomes[total]
            if running >= Decimal(level) / out_of:
                found.append(total)
                break
    return found


def test_forecast_ranges_match_the_exact_distribution(app: SalesFlow) -> None:
    deals = [(100, 50), (200, 30), (400, 80)]
    for amount, probability in deals:
        created = app.create_opportunity(
            title="x", value=gbp(amount), expected_close=TODAY + DAY, probability=probability
        )
        assert created.opportunity.probability == probability
    won = app.create_opportunity(title="w", value=gbp(50), stage="negotiation")
    app.mark_won(won.opportunity.id, cancel_pending=True)
    found = app.forecast(start=TODAY, end=TODAY + DAY, currency="GBP", simulations=20_000, seed=7)
    # CDF: 50 .07, 150 .14, 250 .17, 350 .20, 450 .48, 550 .76, 650 .88, 750 1.0 --
    # no step lies within 0.02 of 10%, 50% or 90%, far beyond the sampling error.
    p10, p50, p90 = exact_percentiles(50, deals, (1, 5, 9))
    assert [p10, p50, p90] == [Decimal(150), Decimal(550), Decimal(750)]
    assert (found.p10, found.p50, found.p90) == (gbp(p10), gbp(p50), gbp(p90))
    assert found.simulations == 20_000
    again = app.forecast(start=TODAY, end=TODAY + DAY, currency="GBP", simulations=50, seed=3)
    assert again == app.forecast(
        start=TODAY, end=TODAY + DAY, currency="GBP", simulations=50, seed=3
    )


def test_forecast_ranges_of_certain_deals_are_their_sum(app: SalesFlow) -> None:
    app.create_opportunity(title="a", value=gbp(100), expected_close=TODAY, probability=100)
    app.create_opportunity(title="b", value=gbp(900), expected_close=TODAY, probability=0)
    found = app.forecast(start=TODAY, end=TODAY, currency="GBP", simulations=10)
    assert found.p10 == found.p50 == found.p90 == gbp(100)


# -- analytics -----------------------------------------------------------------------


def analytics_fixture(app: SalesFlow, clock: FixedClock) -> None:
    """Four closed deals and one open one, moved along a day at a time."""
    app.define_process(BOARD)
    ids = [
        app.create_opportunity(title=t, process="board", value=gbp(v)).opportunity.id
        for t, v in (("a", 1000), ("b", 3000), ("c", 500), ("d", 200), ("e", 50))
    ]
    a, b, c, d, _ = ids
    clock.advance(DAY)
    app.change_stage(a, "pitch", cancel_pending=True)
    app.change_stage(b, "pitch", cancel_pending=True)
    app.change_stage(c, "pitch", cancel_pending=True)
    clock.advance(2 * DAY)
    app.change_stage(a, "offer", cancel_pending=True)
    app.change_stage(b, "offer", cancel_pending=True)
    clock.advance(DAY)
    app.mark_won(a, cancel_pending=True)  # created + 4 days
    app.mark_lost(c, reason="price", cancel_pending=True)
    app.mark_lost(d, reason="price", cancel_pending=True)
    clock.advance(6 * DAY)
    app.mark_won(b, cancel_pending=True)  # created + 10 days


def test_analytics_of_the_closed_deals(app: SalesFlow, clock: FixedClock) -> None:
    analytics_fixture(app, clock)
    found = app.analytics("board")
    assert (found.closed, found.won, found.lost) == (4, 2, 2)
    assert found.win_rate == 0.5
    assert found.average_won_value == gbp(2000)
    assert found.median_cycle_days == 7.0  # 4 and 10 days
    # lead: all 4 reached it; a, b and c moved on. pitch: a, b, c; a and b moved on.
    assert dict(found.reached) == {"lead": 4, "pitch": 3, "offer": 2, "won": 2, "lost": 2}
    assert dict(found.conversion) == {"lead": 0.75, "pitch": 2 / 3, "offer": 1.0}
    # lead: a, b, c one day each, d four; pitch: a and b two days, c three; offer: 1 and 7.
    assert dict(found.average_days_in_stage) == {"lead": 1.75, "pitch": 7 / 3, "offer": 4.0}
    assert dict(found.loss_reasons) == {"price": 2}
    assert dict(found.stage_win_rates) == {
        "lead": 0.5,
        "pitch": 2 / 3,
        "offer": 1.0,
        "won": 1.0,
        "lost": 0.0,
    }
    with pytest.raises(TypeError):
        found.conversion["lead"] = 0.0  # type: ignore[index]


def test_analytics_of_a_period_and_of_nothing(app: SalesFlow, clock: FixedClock) -> None:
    analytics_fixture(app, clock)
    first_days = app.analytics("board", start=TODAY, end=TODAY + 4 * DAY)
    assert (first_days.closed, first_days.won, first_days.win_rate) == (3, 1, 1 / 3)
    assert first_days.median_cycle_days == 4.0
    empty = app.analytics("board", start=TODAY + 100 * DAY)
    assert (empty.closed, empty.win_rate, empty.average_won_value) == (0, None, None)
    assert empty.median_cycle_days is None
    assert set(empty.conversion.values()) == {None}
    assert set(empty.stage_win_rates.values()) == {None}
    assert dict(empty.loss_reasons) == {}


def test_analytics_in_mixed_currencies_need_a_currency(make_app: MakeApp) -> None:
    app = make_app(rates=StaticRates({("EUR", "GBP"): Decimal("0.5")}))
    for value in (Money(100, "GBP"), Money(100, "EUR")):
        o = app.create_opportunity(title="x", value=value, stage="negotiation")
        app.mark_won(o.opportunity.id, cancel_pending=True)
    with pytest.raises(CurrencyMismatch):
        app.analytics()
    assert app.analytics(currency="GBP").average_won_value == gbp(75)


# -- stuck ---------------------------------------------------------------------------


def test_stuck_deals_have_outstayed_their_stage(app: SalesFlow, clock: FixedClock) -> None:
    app.define_process(BOARD)
    early = app.create_opportunity(title="a", process="board", stage="pitch").opportunity
    clock.advance(2 * DAY)
    offer = app.create_opportunity(title="b", process="board", stage="offer").opportunity
    lead = app.create_opportunity(title="c", process="board").opportunity  # no rot_after
    held = app.create_opportunity(title="d", process="board", stage="offer").opportunity
    app.pause(held.id)
    clock.advance(3 * DAY)
    # offer rots after exactly 3 days: not yet more than that.
    assert [o.id for o in app.stuck("board")] == []
    clock.advance(dt.timedelta(seconds=1))
    assert [o.id for o in app.stuck("board")] == [offer.id]
    clock.advance(2 * DAY)
    assert [o.id for o in app.stuck("board")] == [early.id, offer.id]
    app.change_stage(early.id, "offer", cancel_pending=True)
    assert [o.id for o in app.stuck("board")] == [offer.id]
    later = app.stuck("board", now=clock.now() + 4 * DAY)
    assert [o.id for o in later] == [offer.id, early.id]
    assert lead.id not in [o.id for o in app.stuck("board", now=clock.now() + 400 * DAY)]
    assert app.stuck("board", now=START) == []
    assert app.stuck() == []


# -- arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda a: a.pipeline(as_of=dt.datetime(2026, 1, 1)), "as_of"),  # noqa: DTZ001
        (lambda a: a.pipeline(as_of="2026-01-01"), "as_of"),
        (lambda a: a.pipeline(probability="deal"), "probability"),
        (lambda a: a.pipeline(basis="annual"), "basis"),
        (lambda a: a.pipeline(currency="XXQ"), "currency"),
        (lambda a: a.forecast(start=TODAY, end=TODAY - DAY, currency="GBP"), "before start"),
        (lambda a: a.forecast(start="2026-01-01", end=TODAY, currency="GBP"), "start"),
        (lambda a: a.forecast(start=TODAY, end=TODAY, currency=None), "currency"),
        (lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", group_by="week"), "group_by"),
        (
            lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", simulations=-1),
            "simulations",
        ),
        (
            lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", simulations=10**9),
            "simulations",
        ),
        (lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", seed="x"), "seed"),
        (lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", seed=True), "seed"),
        (lambda a: a.forecast(start=TODAY, end=TODAY, currency="GBP", owner=3), "owner"),
        (lambda a: a.analytics(start=TODAY, end=TODAY - DAY), "before start"),
        (lambda a: a.analytics(start=START), "start"),
        (lambda a: a.analytics(currency="gbp!"), "currency"),
        (lambda a: a.stuck(now=dt.datetime(2026, 1, 1)), "now"),  # noqa: DTZ001
    ],
)
def test_report_arguments_are_checked(app: SalesFlow, call: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        call(app)  # type: ignore[operator]


def test_reports_of_an_unknown_process_are_not_found(app: SalesFlow) -> None:
    from salesflow.errors import NotFound

    for call in (
        lambda: app.pipeline("nope"),
        lambda: app.analytics("nope"),
        lambda: app.stuck("nope"),
        lambda: app.forecast(start=TODAY, end=TODAY, currency="GBP", process="nope"),
    ):
        with pytest.raises(NotFound):
            call()
