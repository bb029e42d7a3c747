from salesflow import Money, SalesFlow


def test_a_new_opportunity_starts_in_the_first_open_stage(app: SalesFlow) -> None:
    result = app.create_opportunity(title="Acme licence", value=Money("100", "USD"))
    assert result.opportunity is not None
    assert app.get(result.opportunity.id).stage == "lead"
