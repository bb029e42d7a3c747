"""Hypothesis strategies for salesflow's values, shared by the test modules.

Everything generated is valid by the domain's own rules (a process has its WON and
LOST stages, a line item is not negative, ...). Text never holds NUL characters:
PostgreSQL cannot store them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta, weekday
from hypothesis import strategies as st

from salesflow import (
    ActionKind,
    Activity,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Event,
    EventKind,
    Indicator,
    Individual,
    InvoiceDraft,
    InvoiceLine,
    LineItem,
    Money,
    Note,
    Opportunity,
    OpportunityAction,
    Organization,
    Process,
    Related,
    Stage,
    StageAction,
    StageKind,
    Status,
    TicketRef,
)
from salesflow.domain import checks
from salesflow.domain.process import GATEABLE_FIELDS

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "SEK")

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
names = text.filter(lambda s: bool(s.strip()))
ids = names
optional_text = st.none() | text
optional_names = st.none() | names

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
#: Aware datetimes between 1900 and 2200, in UTC or any whole-minute offset.
datetimes = st.datetimes(
    min_value=dt.datetime(1900, 1, 2),  # noqa: DTZ001 - bounds of an aware strategy
    max_value=dt.datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(dt.UTC) | offsets,
)
dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1))
decimals = st.integers(0, 6).flatmap(
    lambda places: st.decimals(
        min_value=0, max_value=10**12, places=places, allow_nan=False, allow_infinity=False
    )
)
#: Money as salesflow holds it (its immutable form).
money = st.builds(Money, decimals, st.sampled_from(CURRENCIES)).map(
    lambda m: checks.money(m, "money")
)
timedeltas = st.timedeltas(min_value=dt.timedelta(seconds=1), max_value=dt.timedelta(days=999))


@st.composite
def relativedeltas(draw: st.DrawFn) -> relativedelta:
    fields: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "years": st.integers(-5, 5),
                "months": st.integers(-11, 11),
                "days": st.integers(-30, 30),
                "hours": st.integers(-23, 23),
                "minutes": st.integers(-59, 59),
                "day": st.integers(1, 28),
                "hour": st.integers(0, 23),
            },
        )
    )
    if draw(st.booleans()):
        fields["weekday"] = weekday(draw(st.integers(0, 6)), draw(st.none() | st.integers(1, 3)))
    return relativedelta(**fields)


individuals = st.builds(Individual, names, names)
organizations = st.builds(Organization, names, names)
customers = individuals | organizations
related = st.builds(Related, names, names, text)
notes = st.builds(Note, text, optional_names, datetimes)


tickets = st.builds(TicketRef, ids, names)


def line_items(currency: str) -> st.SearchStrategy[LineItem]:
    return st.builds(
        LineItem,
        text,
        decimals,
        st.builds(Money, decimals, st.just(currency)),
        discount_percent=st.integers(0, 100).map(Decimal),
        service_code=optional_names,
        id=st.none() | ids,
    )


@st.composite
def stage_actions(draw: st.DrawFn, key: str | None = None) -> StageAction:
    kind = draw(st.sampled_from(ActionKind))
    return StageAction(
        key if key is not None else draw(names),
        draw(names),
        kind,
        required=draw(st.booleans()),
        auto_create=kind is ActionKind.CALENDAR and draw(st.booleans()),
        activity_kind=draw(st.sampled_from(ActivityKind)),
        due_after=draw(relativedeltas()),
        track_outcome=draw(st.booleans()),
        template=draw(st.none() | names),
        event=draw(names) if kind is ActionKind.EVENT else draw(st.none() | names),
    )


@st.composite
def stages(draw: st.DrawFn, key: str, kind: StageKind) -> Stage:
    action_keys = draw(st.lists(names, max_size=3, unique=True))
    probability = {StageKind.WON: 100, StageKind.LOST: 0}.get(kind)
    return Stage(
        key,
        draw(names),
        probability if probability is not None else draw(st.integers(0, 100)),
        kind,
        actions=tuple(draw(stage_actions(k)) for k in action_keys),
        rot_after=draw(st.none() | timedeltas),
        requires=tuple(draw(st.lists(st.sampled_from(sorted(GATEABLE_FIELDS)), max_size=3))),
    )


@st.composite
def processes(draw: st.DrawFn) -> Process:
    open_count = draw(st.integers(1, 3))
    lost_count = draw(st.integers(1, 2))
    keys = draw(st.lists(names, min_size=open_count + 1 + lost_count, unique=True))
    kinds = [StageKind.OPEN] * open_count + [StageKind.WON] + [StageKind.LOST] * lost_count
    return Process(
        draw(names),
        draw(names),
        tuple(draw(stages(key, kind)) for key, kind in zip(keys, kinds, strict=False)),
        currency=draw(st.sampled_from(CURRENCIES)),
        auto_advance=draw(st.booleans()),
        cancel_pending=draw(st.sampled_from(CancelPolicy)),
        allow_backward=draw(st.booleans()),
        allow_skip=draw(st.booleans()),
        require_customer=draw(st.booleans()),
        require_loss_reason=draw(st.booleans()),
        loss_reasons=tuple(draw(st.lists(names, max_size=3, unique=True))),
    )


opportunity_actions = st.builds(
    OpportunityAction,
    ids,
    names,
    stage_actions(),
    completed_at=st.none() | datetimes,
    activity_id=st.none() | ids,
)


@st.composite
def opportunities(draw: st.DrawFn, id: str | None = None) -> Opportunity:
    currency = draw(st.sampled_from(CURRENCIES))
    amounts = st.builds(Money, decimals, st.just(currency))
    return Opportunity(
        id=id if id is not None else draw(ids),
        process=draw(names),
        stage=draw(names),
        stage_probability=draw(st.integers(0, 100)),
        value=draw(amounts),
        created_at=draw(datetimes),
        stage_entered_at=draw(datetimes),
        title=draw(optional_names),
        description=draw(text),
        customer=draw(st.none() | customers),
        related=tuple(draw(st.lists(related, max_size=2))),
        annual_value=draw(st.none() | amounts),
        probability_override=draw(st.none() | st.integers(0, 100)),
        status=draw(st.sampled_from(Status)),
        expected_close=draw(st.none() | dates),
        pay_date=draw(st.none() | dates),
        closed_on=draw(st.none() | dates),
        owner=draw(optional_names),
        team=tuple(draw(st.lists(names, max_size=3))),
        external_ref=draw(optional_names),
        avatar=draw(optional_names),
        loss_reason=draw(optional_names),
        notes=tuple(draw(st.lists(notes, max_size=2))),
        line_items=tuple(draw(st.lists(line_items(currency), max_size=2))),
        actions=tuple(draw(st.lists(opportunity_actions, max_size=3))),
        tickets=tuple(draw(st.lists(tickets, max_size=2))),
        value_from_billables=draw(st.booleans()),
        version=draw(st.integers(1, 1000)),
    )


@st.composite
def invoice_drafts(draw: st.DrawFn) -> InvoiceDraft:
    """A draft of one to three lines in one currency, as ``SalesFlow.invoice`` makes."""
    currency = draw(st.sampled_from(CURRENCIES))
    billable = line_items(currency).filter(lambda item: item.gross.amount < checks.AMOUNT_LIMIT)
    items = draw(st.lists(billable, min_size=1, max_size=3))
    return InvoiceDraft(
        number=draw(names),
        opportunity_id=draw(ids),
        issued=draw(dates),
        due=draw(dates),
        customer=draw(customers),
        lines=tuple(
            InvoiceLine.of(attrs.evolve(item, id=item.id or f"line-{n}"))
            for n, item in enumerate(items)
        ),
    )


activities = st.builds(
    Activity,
    id=ids,
    title=names,
    due=datetimes,
    kind=st.sampled_from(ActivityKind),
    opportunity_id=st.none() | ids,
    stage=st.none() | names,
    action_id=st.none() | ids,
    owner=optional_names,
    status=st.sampled_from(ActivityStatus),
    outcome=optional_text,
    track_outcome=st.booleans(),
    created_at=st.none() | datetimes,
    done_at=st.none() | datetimes,
    cancelled_at=st.none() | datetimes,
    version=st.integers(1, 1000),
)

ENUMS = (
    StageKind,
    Status,
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    Indicator,
    EventKind,
)

#: The values a detail may hold that are not containers.
detail_leaves: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    text,
    st.integers(-(2**63), 2**63 - 1),  # whole numbers within 64 bits
    st.booleans(),
    st.decimals(allow_nan=False, allow_infinity=False),
    money,
    dates,
    datetimes,
    st.sampled_from(ENUMS).flatmap(st.sampled_from),
    individuals,
    organizations,
    related,
    tickets,
    invoice_drafts(),
)

detail_values: st.SearchStrategy[Any] = st.recursive(
    detail_leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(text, children, max_size=3)
    ),
    max_leaves=8,
)

changes = st.dictionaries(
    st.sampled_from(("title", "value", "stage", "customer", "expected_close", "team")),
    st.tuples(detail_leaves, detail_leaves),
    max_size=4,
)


@st.composite
def event_details(draw: st.DrawFn) -> dict[str, Any]:
    details: dict[str, Any] = draw(st.dictionaries(text, detail_values, max_size=4))
    if draw(st.booleans()):
        details["changes"] = draw(changes)
    return details


@st.composite
def events(draw: st.DrawFn, opportunity_id: str | None = None) -> Event:
    return Event(
        id=draw(ids),
        kind=draw(st.sampled_from(EventKind)),
        opportunity_id=opportunity_id if opportunity_id is not None else draw(st.none() | ids),
        at=draw(datetimes),
        actor=draw(optional_names),
        details=draw(event_details()),
    )
