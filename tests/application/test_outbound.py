"""Letters and invitations go out after their command has committed, once."""

from __future__ import annotations

import logging

import pytest

from salesflow import (
    ChangeSet,
    Event,
    InMemoryRepository,
    Opportunity,
    OpportunityAction,
    SalesFlow,
)
from salesflow.errors import ConcurrencyError, StorageError
from tests.application.conftest import MakeApp
from tests.unit.support import action, new_deal, seed003_process


class Post:
    """A correspondence and invitations port that remembers every call."""

    def __init__(self, *, fail: bool = False, invited: bool = True) -> None:
        self.fail = fail
        self.invited = invited
        self.calls: list[tuple[str, str]] = []

    def send(self, opportunity: Opportunity, action: OpportunityAction) -> None:
        self.calls.append(("send", action.key))
        if self.fail:
            raise RuntimeError("mail server down")

    def invite(self, event: str, opportunity: Opportunity) -> bool:
        self.calls.append(("invite", event))
        if self.fail:
            raise RuntimeError("calendar down")
        return self.invited


class Conflicts(InMemoryRepository):
    """Refuses the first ``conflicts`` commits with a version conflict; then, if told,
    fails the next one with a storage error."""

    def __init__(self, conflicts: int, *, then_fail: bool = False) -> None:
        super().__init__()
        self.conflicts = conflicts
        self.then_fail = then_fail
        self.armed = False

    def commit(self, changes: ChangeSet) -> tuple[Event, ...]:
        if self.armed and self.conflicts:
            self.conflicts -= 1
            raise ConcurrencyError("someone else wrote first")
        if self.armed and self.then_fail:
            raise StorageError("the disk is full")
        return super().commit(changes)


def _app_with(repository: InMemoryRepository, post: Post) -> tuple[SalesFlow, str]:
    app = SalesFlow(repository, correspondence=post, invitations=post, retries=5)
    app.define_process(seed003_process())
    return app, new_deal(app, "seed003").id


@pytest.mark.parametrize("key", ["brochure"])
def test_a_letter_goes_out_once_however_often_the_command_runs(key: str) -> None:
    post, repository = Post(), Conflicts(2)
    app, deal = _app_with(repository, post)
    repository.armed = True

    result = app.perform_action(deal, action(app, deal, key).id)

    assert post.calls == [("send", key)]
    assert result.notices[-1] == "Sent 'Send the brochure'."


def test_a_command_whose_commit_fails_sends_nothing() -> None:
    post, repository = Post(), Conflicts(0, then_fail=True)
    app, deal = _app_with(repository, post)
    repository.armed = True

    with pytest.raises(StorageError):
        app.perform_action(deal, action(app, deal, "brochure").id)

    assert post.calls == []
    assert not action(app, deal, "brochure").completed


def test_a_command_that_gives_up_on_conflicts_sends_nothing() -> None:
    post, repository = Post(), Conflicts(99)
    app, deal = _app_with(repository, post)
    repository.armed = True

    with pytest.raises(ConcurrencyError):
        app.perform_action(deal, action(app, deal, "brochure").id)

    assert post.calls == []


def test_a_failing_port_does_not_undo_its_command(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    post = Post(fail=True)
    app = make_app(correspondence=post, invitations=post)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003")

    with caplog.at_level(logging.ERROR, logger="salesflow"):
        result = app.perform_action(deal.id, action(app, deal.id, "brochure").id)

    assert action(app, deal.id, "brochure").completed
    assert result.notices == (
        "Completed 'Send the brochure'.",
        "'Send the brochure' could not be sent: mail server down. "
        "It is pending and will be sent by deliver_pending().",
    )
    assert "mail server down" in caplog.text


def test_an_invitation_already_made_gives_a_notice(make_app: MakeApp) -> None:
    post = Post(invited=False)
    app = make_app(invitations=post)
    app.define_process(seed003_process())
    deal = new_deal(app, "seed003")

    result = app.perform_action(deal.id, action(app, deal.id, "seminar").id)

    assert post.calls == [("invite", "Spring seminar")]
    assert result.notices[-1] == "The customer is already invited to Spring seminar."
