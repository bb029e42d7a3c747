"""The in-memory search page -- one filtering pass, then only the first ``offset +
limit`` matches ordered -- is the page of the plain definition: every match, ordered
by id, then stably by the value ordered by (reversed for a descending order) with the
deals without one last, then cut."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow import Opportunity, Status
from salesflow.queries import ORDERINGS, SearchQuery
from tests import strategies

T = TypeVar("T")

TODAY = dt.date(2026, 6, 1)


def _sometimes(filter_: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    """No filter three times in four, so that several filters together still let
    enough deals through to order."""
    return st.sampled_from([False, False, False, True]).flatmap(
        lambda given: filter_ if given else st.none()
    )


def _plain_page(query: SearchQuery, found: list[Opportunity]) -> list[Opportunity]:
    matches = sorted((o for o in found if query.matches(o)), key=lambda o: o.id)
    present = [o for o in matches if query.sort_value(o) is not None]
    present.sort(key=query.sort_value, reverse=query.descending)
    ordered = present + [o for o in matches if query.sort_value(o) is None]
    return ordered[query.offset : query.offset + query.limit]


@settings(max_examples=80, deadline=None)
@given(
    found=st.lists(strategies.opportunities(), min_size=2, max_size=14),
    owners=st.lists(st.sampled_from([None, "ann", "bob"]), min_size=14, max_size=14),
    stages=st.lists(st.sampled_from(["lead", "deal", "won"]), min_size=14, max_size=14),
    closes=st.lists(
        st.none() | st.sampled_from([dt.date(2026, 5, 1), TODAY, dt.date(2026, 7, 1)]),
        min_size=14,
        max_size=14,
    ),
    order=st.sampled_from(ORDERINGS),
    descending=st.booleans(),
    owner=_sometimes(st.sampled_from(["ann", "bob"])),
    stage_filter=_sometimes(st.frozensets(st.sampled_from(["lead", "deal", "won"]))),
    statuses=_sometimes(st.frozensets(st.sampled_from(Status))),
    overdue=_sometimes(st.booleans()),
    text=_sometimes(st.sampled_from(["a", "E", "deal", "ß"])),
    limit=st.integers(0, 16),
    offset=st.integers(0, 16),
    data=st.data(),
)
def test_the_page_is_that_of_the_plain_definition(
    *,
    found: list[Opportunity],
    owners: list[str | None],
    stages: list[str],
    closes: list[dt.date | None],
    order: str,
    descending: bool,
    owner: str | None,
    stage_filter: frozenset[str] | None,
    statuses: frozenset[Status] | None,
    overdue: bool | None,
    text: str | None,
    limit: int,
    offset: int,
    data: st.DataObject,
) -> None:
    deals = [
        # Few distinct values, so that ties (broken by id) and missing values are common.
        attrs.evolve(o, id=f"o-{n:02}", process="p", owner=who, stage=stage, expected_close=close)
        for n, (o, who, stage, close) in enumerate(zip(found, owners, stages, closes, strict=False))
    ]
    query = SearchQuery(
        today=TODAY,
        text=text,
        owner=owner,
        stages=stage_filter,
        statuses=statuses,
        overdue=overdue,
        order_by=f"-{order}" if descending else order,
        limit=limit,
        offset=offset,
        stage_order={("p", "lead"): 0, ("p", "deal"): 1},  # "won" has no place: last
    )
    stored = data.draw(st.permutations(deals))  # a store keeps no order of its own
    page = query.page(stored)
    assert list(page.items) == _plain_page(query, deals)
    assert page.total == sum(1 for o in deals if query.matches(o))
