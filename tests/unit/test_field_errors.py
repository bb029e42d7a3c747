"""The errors of a caller's opportunity fields name the opportunity and the field, also
when the value was an iterator the failing check used up."""

from __future__ import annotations

from typing import Any

import pytest

from salesflow import Money, Related
from salesflow.domain.opportunity import clean_fields
from salesflow.errors import ValidationError
from salesflow.locale import translation
from salesflow.messages import Message


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"title": 5}, "Opportunity 'o-1'.title: expected text, got int 5"),
        ({"value": Money(-1, "USD")}, "Opportunity 'o-1'.value: "),
        ({"owner": " "}, "Opportunity 'o-1'.owner: must not be blank"),
        ({"related": iter([Related("contact", "p-1"), "x"])}, "Opportunity 'o-1'.related: "),
        ({"team": (name for name in ["ann", 7])}, "Opportunity 'o-1'.team: "),
        ({"probability_override": 101}, "Opportunity 'o-1'.probability_override: "),
    ],
)
def test_a_refused_field_is_named(fields: dict[str, Any], text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        clean_fields({"title": "Deal", **fields}, "o-1")
    assert str(refused.value).startswith(text)
    assert "\x00" not in str(refused.value)


def test_a_translatable_refusal_names_the_field_translatably() -> None:
    with pytest.raises(ValidationError) as refused:
        clean_fields({"owner": "   "}, "o-1")
    message = refused.value.message
    assert isinstance(message, Message)
    assert str(refused.value) == "Opportunity 'o-1'.owner: must not be blank"
    assert message.render(translation("nb_NO")).startswith("Muligheten «o-1».owner")


def test_good_values_are_kept_as_checked() -> None:
    clean = clean_fields(
        {"title": "  Deal ", "owner": " ann ", "related": Related("contact", "p-1")}, "o-1"
    )
    assert clean == {"title": "Deal", "owner": "ann", "related": (Related("contact", "p-1"),)}
