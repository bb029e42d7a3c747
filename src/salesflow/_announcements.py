"""Telling an app's subscribers what its commits did, in commit order."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from salesflow.domain.events import Event

__all__ = ["Announcements"]

log = logging.getLogger("salesflow")


class Announcements:
    """The events of one app's commits, told to its subscribers in commit order.

    A command takes its place in the queue while it still holds the repository's write
    turn (inside its ``command`` block, right after its commit), so the queue's order
    is the commit order even when several threads commit at once; it settles the place
    with its events when the block has ended (or with none, when the block rolled
    back). Whichever thread finds the head of the queue settled tells the subscribers,
    one thread at a time; events of a command a subscriber runs join the end of the
    queue, so they are heard after every subscriber has heard the events before them.
    A failing subscriber is logged, and the others still hear the event.
    """

    def __init__(self) -> None:
        self._handlers: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._queue: collections.deque[list[tuple[Event, ...] | None]] = collections.deque()
        self._telling = False

    def subscribe(self, handler: Callable[[Event], None]) -> Callable[[], None]:
        """Tell ``handler`` every event from now on; returns what unsubscribes it."""
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """Whether anyone subscribed: a commit made while nobody listens takes no place
        in the queue (there is nobody to tell)."""
        return bool(self._handlers)

    def _tell(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                log.exception("salesflow subscriber %r failed on %s", handler, event.kind)

    def reserve(self) -> list[tuple[Event, ...] | None]:
        """A place at the end of the queue (call while the commit holds its turn)."""
        place: list[tuple[Event, ...] | None] = [None]
        with self._lock:
            self._queue.append(place)
        return place

    def settle(self, place: list[tuple[Event, ...] | None], events: tuple[Event, ...]) -> None:
        with self._lock:
            place[0] = events

    def announce(self) -> None:
        """Tell the subscribers every settled place at the head of the queue, in order.
        Returns at once when another thread -- or this one, further up its stack -- is
        telling: that thread reaches these events too."""
        with self._lock:
            if self._telling:
                return
            self._telling = True
        try:
            while True:
                with self._lock:
                    events = self._queue[0][0] if self._queue else None
                    if events is None:
                        self._telling = False  # checked and let go in one step
                        return
                    self._queue.popleft()
                for event in events:
                    self._tell(event)
        except BaseException:
            with self._lock:
                self._telling = False
            raise
