"""What an upgraded store must answer, shared by the SQLite and PostgreSQL migration
tests: the query side over records written before it existed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from salesflow import Opportunity
from salesflow.ports import Repository
from salesflow.queries import SearchQuery, pipeline_totals


def assert_the_query_side_answers(repository: Repository, stored: Sequence[Opportunity]) -> None:
    """Search and the pipeline totals over an upgraded store equal the reference."""
    today = dt.date(2026, 3, 2)
    for query in (
        SearchQuery(today=today, text="hull & deck"),
        SearchQuery(today=today, text="FJORD"),
        SearchQuery(today=today, related_id="p-1"),
        SearchQuery(today=today, related_id="c-9"),
        SearchQuery(today=today, owner="kari", order_by="-value"),
        SearchQuery(today=today, order_by="title"),
    ):
        page = repository.search(query)
        assert page == query.page(stored), query
        assert page.total > 0
    for basis in ("value", "annual_value"):
        totals = repository.pipeline_totals("standard", basis=basis)
        assert totals == pipeline_totals(stored, basis=basis)
