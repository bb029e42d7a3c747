"""A strict process of your own, bulk moves, and a host app reacting to events.

Run it with ``python examples/custom_process.py``. A software reseller defines a
process that forbids skipping stages, needs a customer and an expected close date
before a quote, wants a loss reason from a fixed list, and cancels leftover
activities on every move. A subscriber plays the host app: it "sends the contract"
when a deal is won.
"""

from __future__ import annotations

import datetime as dt
import itertools

from salesflow import (
    CancelPolicy,
    Event,
    EventKind,
    FixedClock,
    Individual,
    Money,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageKind,
)
from salesflow.errors import LossReasonRequired, TransitionNotAllowed

RESELLER = Process(
    "reseller",
    "Licence reselling",
    (
        Stage("enquiry", "Enquiry", 10),
        Stage("discovery", "Discovery", 30),
        Stage("quote", "Quote", 60, requires=("customer", "expected_close")),
        Stage("order", "Order", 90),
        Stage("won", "Won", 100, StageKind.WON),
        Stage("lost", "Lost", 0, StageKind.LOST),
    ),
    currency="EUR",
    cancel_pending=CancelPolicy.CANCEL,
    allow_skip=False,
    require_loss_reason=True,
    loss_reasons=("price", "no budget", "competitor"),
)


def main() -> None:
    clock = FixedClock(dt.datetime(2026, 6, 1, 8, 30, tzinfo=dt.UTC))
    numbers = itertools.count(1)
    app = SalesFlow(clock=clock, ids=lambda: f"r{next(numbers)}")
    app.define_process(RESELLER)

    contracts: list[str] = []

    def send_contract(event: Event) -> None:
        if event.kind is EventKind.STAGE_CHANGED and event.details["to"] == "won":
            assert event.opportunity_id is not None
            contracts.append(app.get(event.opportunity_id).display_title)

    app.subscribe(send_contract)

    deals = [
        app.create_opportunity(
            process="reseller",
            customer=Organization("org-globex", "Globex"),
            value=Money("18000", "EUR"),
            expected_close=dt.date(2026, 6, 30),
        ).opportunity,
        app.create_opportunity(
            title="Initech seats",
            process="reseller",
            value=Money("5400", "EUR"),
        ).opportunity,
        app.create_opportunity(
            title="Dr. Hall's practice",
            process="reseller",
            customer=Individual("p-hall", "Ruth Hall"),
            value=Money("2400", "EUR"),
            expected_close=dt.date(2026, 7, 15),
        ).opportunity,
    ]
    ids = [d.id for d in deals]
    for deal in deals:
        app.schedule_activity(
            title=f"Qualify {deal.display_title}",
            due=clock.now() + dt.timedelta(days=2),
            opportunity_id=deal.id,
        )

    print("Skipping ahead is refused by this process:")
    try:
        app.change_stage(ids[0], "quote")
    except TransitionNotAllowed as refused:
        print(f"  {refused}")

    clock.advance(dt.timedelta(days=1))
    moved = app.bulk_change_stage(ids, "discovery", actor="ops")
    print(f"Bulk move to Discovery: {len(moved.succeeded)} moved, {len(moved.failed)} failed")
    for deal_id in moved.succeeded:
        print(f"  {app.get(deal_id).display_title}: {' '.join(moved.results[deal_id].notices)}")

    clock.advance(dt.timedelta(days=1))
    quoted = app.bulk_change_stage(ids, "quote", actor="ops")
    print(f"Bulk move to Quote: {len(quoted.succeeded)} moved, {len(quoted.failed)} failed")
    for deal_id, error in quoted.failed.items():
        print(f"  refused {app.get(deal_id).display_title}: {error}")

    print("Losing a deal needs a reason from the list:")
    try:
        app.mark_lost(ids[1])
    except LossReasonRequired as missing:
        print(f"  {missing}")
    lost = app.mark_lost(ids[1], reason="no budget", actor="ops").opportunity
    print(f"  {lost.display_title}: {lost.status.name}, reason {lost.loss_reason!r}")

    clock.advance(dt.timedelta(days=3))
    app.change_stage(ids[0], "order", actor="ops")
    won = app.mark_won(ids[0], actor="ops").opportunity
    print(f"Won {won.display_title} on {won.closed_on}; contracts sent: {contracts}")

    board = app.pipeline("reseller", probability="stage")
    print("Board (weighted by each stage's probability)")
    for row in board.stages:
        print(
            f"  {row.stage.name:<10} {row.count}  {row.total.amount:>10,.2f}  "
            f"{row.weighted.amount:>10,.2f} {board.currency}"
        )


if __name__ == "__main__":
    main()
