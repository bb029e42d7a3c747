"""The in-memory repository's pipeline totals are those of the shared one-pass fold,
exactly, whatever the deals' stages, currencies, probabilities and owners."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from salesflow import InMemoryRepository, Opportunity, Status
from salesflow.ports import ChangeSet
from salesflow.queries import pipeline_totals
from tests import strategies


def _deals(found: list[Opportunity]) -> list[Opportunity]:
    """The drawn deals with ids of their own, in one process, at version 1."""
    return [attrs.evolve(o, id=f"o-{n}", process="p", version=1) for n, o in enumerate(found)]


@settings(max_examples=60, deadline=None)
@given(
    found=st.lists(strategies.opportunities(), max_size=12),
    basis=st.sampled_from(["value", "annual_value"]),
    owner=st.none() | st.sampled_from(["ann", "bob"]),
    owners=st.lists(st.sampled_from([None, "ann", "bob"]), min_size=12, max_size=12),
    stages=st.lists(st.sampled_from(["lead", "won"]), min_size=12, max_size=12),
    overrides=st.lists(st.sampled_from([None, 0, 35, 100]), min_size=12, max_size=12),
)
def test_memory_pipeline_totals_equal_the_shared_fold(
    *,
    found: list[Opportunity],
    basis: str,
    owner: str | None,
    owners: list[str | None],
    stages: list[str],
    overrides: list[int | None],
) -> None:
    deals = [
        attrs.evolve(o, owner=who, stage=stage, probability_override=override)
        for o, who, stage, override in zip(_deals(found), owners, stages, overrides, strict=False)
    ]
    repository = InMemoryRepository()
    repository.commit(ChangeSet(opportunities=tuple(deals)))
    got = repository.pipeline_totals("p", basis=basis, owner=owner)  # type: ignore[arg-type]
    want = pipeline_totals(deals, basis=basis, owner=owner)  # type: ignore[arg-type]
    assert got == want
    for mine, theirs in zip(got.rows, want.rows, strict=True):
        assert str(mine.amount) == str(theirs.amount)  # the same digits, not just equal
        assert str(mine.weighted) == str(theirs.weighted)
    assert got.paused == sum(
        1 for d in deals if d.status is Status.PAUSED and owner in (None, d.owner)
    )
