"""The default ids: random (version 4) UUIDs as 32 hex digits, as ``uuid4().hex``."""

from __future__ import annotations

import uuid

from salesflow import SalesFlow


def test_default_ids_are_random_uuids_in_hex() -> None:
    app = SalesFlow()
    made = app.create_opportunities([{"title": f"Deal {i}"} for i in range(200)])
    ids = [*made.succeeded, *(e.id for i in made.succeeded for e in app.history(i))]

    assert len(set(ids)) == len(ids) == 400
    for id_ in ids:
        parsed = uuid.UUID(id_)
        assert parsed.hex == id_
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # Random bits vary all over: each hex digit but the fixed version takes many values.
    for place in (0, 11, 13, 20, 31):
        assert len({id_[place] for id_ in ids}) > 8
