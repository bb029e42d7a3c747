"""The errors salesflow raises. Every one is a :class:`SalesflowError`.

Each message names the record concerned (an opportunity, an activity, a process,
a field) and the rule that was broken, so that a front end can show it as it is.
An error built from a :class:`~salesflow.messages.Message` keeps it as ``message``,
so that ``SalesFlow(locale=...)`` can show it in another language; ``str()`` of the
error is its English text either way.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "AlreadyAssigned",
    "ConcurrencyError",
    "ConfirmationRequired",
    "CurrencyMismatch",
    "LockTimeout",
    "LossReasonRequired",
    "MissingExchangeRate",
    "NotFound",
    "OutcomeRequired",
    "PermissionDenied",
    "SalesflowError",
    "StorageError",
    "TransitionNotAllowed",
    "UnknownStage",
    "ValidationError",
]


@runtime_checkable
class Translatable(Protocol):
    """A text that can be shown in another language: a
    :class:`~salesflow.messages.Message` (described here by what it does, since this
    module imports nothing of salesflow)."""

    def render(self, catalog: Any = None, /) -> str:
        """The text, looked up in ``catalog`` (a gettext translations object); English
        without one."""


class SalesflowError(Exception):
    """The root of every error salesflow raises on purpose.

    ``message`` is the translatable :class:`~salesflow.messages.Message` the error
    was raised with, or None for one raised with plain text; ``locale`` is the locale
    its text was put in by ``SalesFlow(locale=...)``, or None for English.
    """

    message: Translatable | None = None
    #: The locale the text of the error is in, once ``SalesFlow(locale=...)`` has
    #: translated it (None: English).
    locale: str | None = None

    def __init__(self, *args: object) -> None:
        if args and not isinstance(args[0], str) and isinstance(args[0], Translatable):
            self.message = args[0]
            args = (str(args[0]), *args[1:])
        super().__init__(*args)


class ValidationError(SalesflowError):
    """A value or a definition breaks a rule (a field, a range, a uniqueness)."""


class NotFound(SalesflowError):
    """No record with that id exists (in this repository's workspace)."""


class UnknownStage(SalesflowError):
    """A stage key that the opportunity's process does not define."""


class TransitionNotAllowed(SalesflowError):
    """A stage change the process forbids: backwards, skipping, paused, a gate."""


class ConfirmationRequired(SalesflowError):
    """Under ``CancelPolicy.ASK`` the caller must answer ``cancel_pending``.

    ``plan`` is the :class:`~salesflow.StageChangePlan` that would have been carried
    out: ``plan.to_cancel`` lists the activities in question. (This module imports
    nothing of salesflow's domain, so the attribute is typed loosely.)
    """

    def __init__(self, message: str | Translatable, plan: Any) -> None:
        super().__init__(message)
        self.plan = plan

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its text and plan (the default would pass the text alone).
        return (type(self), (self.args[0], self.plan), self.__dict__)


class OutcomeRequired(SalesflowError):
    """Completing an activity that tracks outcomes needs ``outcome=``."""


class LossReasonRequired(SalesflowError):
    """The process requires a loss reason to move an opportunity to a LOST stage."""


class AlreadyAssigned(SalesflowError):
    """An opportunity owned by someone else cannot be claimed."""


class PermissionDenied(SalesflowError):
    """The authorisation policy refused the command for this actor."""


class ConcurrencyError(SalesflowError):
    """A write from a stale version: someone else changed the record first.

    :class:`~salesflow.SalesFlow` re-runs a command that meets one; callers see
    this error only when conflicts outlast the retry budget.
    """


class LockTimeout(ConcurrencyError):
    """A write waited for another transaction's lock for the repository's whole
    ``timeout`` and gave up.

    Still a :class:`ConcurrencyError` for callers who catch that, but
    :class:`~salesflow.SalesFlow` does not run the command again: the wait has already
    lasted as long as the caller allowed, and another attempt would wait as long.
    """


class MissingExchangeRate(SalesflowError):
    """A report needs a rate between two currencies that the rates port lacks."""


class CurrencyMismatch(SalesflowError):
    """Amounts in different currencies were combined without a conversion."""


class StorageError(SalesflowError):
    """A repository could not read or write: bad stored data or a driver failure."""
