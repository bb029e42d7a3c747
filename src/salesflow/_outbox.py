"""Outbound calls (LETTER and EVENT actions): queued by a command in its own commit,
made after the commit, and made later by ``deliver_pending`` when that failed.

Each call is claimed with a lease before it is made, so that one process makes it;
delivery is at least once (see ``docs/feed.md``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from salesflow.domain.deal import Deal
from salesflow.domain.values import ActionKind
from salesflow.errors import SalesflowError
from salesflow.messages import Message
from salesflow.ports import ChangeSet, Correspondence, Invitations, PendingCall, Repository, making

__all__ = ["Outbox", "queued"]

log = logging.getLogger("salesflow")


class Outbox:
    """Makes the calls of one repository's outbox through the app's ports."""

    def __init__(
        self, repository: Repository, correspondence: Correspondence, invitations: Invitations
    ) -> None:
        self.repository = repository
        self.correspondence = correspondence
        self.invitations = invitations

    def call_out(
        self,
        calls: Sequence[PendingCall],
        *,
        now: Callable[[], dt.datetime],
        lease: Callable[[], dt.timedelta],
    ) -> list[Message]:
        """Make the outbound calls a command has just committed to its outbox; the
        notices they give.

        The calls are claimed first (another process' ``deliver_pending`` may have
        taken one already: it is then that process' to make). A call that fails, or
        cannot be claimed, stays pending, and its notice says so; the command stands.
        """
        if not calls:
            return []
        try:
            moment = now()
            claimed = {
                call.id: call
                for call in self.repository.claim_calls(
                    now=moment,
                    until=moment + lease(),
                    limit=len(calls),
                    ids=[call.id for call in calls],
                )
            }
        except SalesflowError as error:
            log.exception("salesflow: the outbound calls of a command could not be claimed")
            return [_pending(call, f"{error}") for call in calls]
        notices = []
        for call in calls:
            mine = claimed.get(call.id)
            if mine is None:  # another process' deliver_pending took it first
                notices.append(
                    Message("{action} is being sent by another process.", action=_title(call))
                )
            else:
                notices.append(self.make(mine)[1])
        return notices

    def make(self, call: PendingCall) -> tuple[bool, Message]:
        """Make one claimed call through its port and mark it made, or release it when
        the port fails: whether it went out, and the notice."""
        try:
            action = call.action
            with making(call):
                if call.kind is ActionKind.LETTER:
                    self.correspondence.send(call.opportunity, action)
                    notice = Message("Sent '{action}'.", action=action.title)
                else:
                    event = action.spec.event or ""
                    if self.invitations.invite(event, call.opportunity) is False:
                        notice = Message("The customer is already invited to {event}.", event=event)
                    else:
                        notice = Message("Invited the customer to {event}.", event=event)
        except Exception as error:
            log.exception("salesflow: %s call %s failed", call.kind.name, call.id)
            try:
                self.repository.release_call(call.id, f"{type(error).__name__}: {error}")
            except SalesflowError:
                log.exception("salesflow: call %s could not be released", call.id)
            return False, _pending(call, f"{error}")
        try:
            self.repository.finish_call(call.id)
        except SalesflowError:
            # It went out; its lease runs out and it will be made again (at least once).
            log.exception("salesflow: call %s was made but could not be marked made", call.id)
        return True, notice

    def deliver(
        self,
        *,
        now: Callable[[], dt.datetime],
        lease: Callable[[], dt.timedelta],
        batch: Callable[[], int],
        limit: int | None,
    ) -> int:
        """Make pending calls, oldest first, claiming ``batch()`` at a time, until none
        is left or ``limit`` were tried; how many went out."""
        made = tried = after = 0
        most = limit
        while most is None or tried < most:
            moment = now()
            size = batch() if most is None else min(batch(), most - tried)
            claimed = self.repository.claim_calls(
                now=moment, until=moment + lease(), limit=size, after=after
            )
            if not claimed:
                break
            for call in claimed:
                after = max(after, call.seq)
                tried += 1
                made += self.make(call)[0]
        return made


def queued(deal: Deal, changes: ChangeSet) -> tuple[PendingCall, ...]:
    """The outbound calls of ``deal`` as its commit queues them, each with the
    opportunity as the commit leaves it."""
    committed = {o.id: o for o in changes.opportunities}
    return tuple(
        PendingCall(
            call.event_id,
            call.kind,
            committed[call.opportunity_id],
            call.action_id,
            deal.now,
        )
        for call in deal.outbox
    )


def _title(call: PendingCall) -> Message:
    """How notices name an outbound call: by its action's title."""
    try:
        return Message("'{action}'", action=call.action.title)
    except SalesflowError:
        return Message("Call {id!r}", id=call.id)


def _pending(call: PendingCall, why: str) -> Message:
    """The notice for an outbound call that failed and is still pending."""
    return Message(
        "{action} could not be sent: {why}. It is pending and will be sent by deliver_pending().",
        action=_title(call),
        why=why,
    )
