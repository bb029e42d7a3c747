"""The board's ASGI application: a few JSON endpoints over one ``SalesFlow`` and the
static page that draws them.

Every endpoint runs salesflow's (blocking) calls in Starlette's thread pool, so a
slow SQLite or PostgreSQL call never stalls the event loop. A salesflow error becomes
a 4xx answer ``{"error": <class name>, "message": <its message>}`` -- the message
names the record and the rule, so the page shows it as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from salesflow import SalesFlow
from salesflow.errors import (
    AlreadyAssigned,
    ConcurrencyError,
    ConfirmationRequired,
    CurrencyMismatch,
    LockTimeout,
    LossReasonRequired,
    MissingExchangeRate,
    NotFound,
    OutcomeRequired,
    PermissionDenied,
    SalesflowError,
    StorageError,
    TransitionNotAllowed,
    UnknownStage,
    ValidationError,
)
from web_board import views

__all__ = ["STATIC", "BadRequest", "Feed", "create_app"]

#: The page, its script and its style sheet.
STATIC = Path(__file__).resolve().parent / "static"

#: HTTP status of each salesflow error (the first matching class wins; any other is
#: 400). A refused move is a conflict with the deal's state (409); a storage failure is
#: the server's (503), and the page says so without retrying by itself.
STATUS: tuple[tuple[type[SalesflowError], int], ...] = (
    (NotFound, 404),
    (PermissionDenied, 403),
    (UnknownStage, 422),
    (ValidationError, 422),
    (CurrencyMismatch, 422),
    (MissingExchangeRate, 422),
    (ConfirmationRequired, 409),
    (LossReasonRequired, 409),
    (OutcomeRequired, 409),
    (TransitionNotAllowed, 409),
    (AlreadyAssigned, 409),
    (LockTimeout, 503),  # before ConcurrencyError, its base: the store stayed busy
    (ConcurrencyError, 409),
    (StorageError, 503),
)

#: The most change feed entries one poll returns; the page asks again for the rest.
FEED_PAGE = 200

#: Bounds of the forecast chart's query arguments.
MAX_MONTHS = 24
MAX_SIMULATIONS = 5000


class BadRequest(Exception):
    """A request the board cannot read (not JSON, a missing or mistyped field)."""


class Feed:
    """Follows the change feed: where it ends, so that a page that loads the board
    knows the position to follow it from.

    The end is found once (reading the feed through in pages) and then kept up to
    date by reading on from the last position seen, so later calls cost only what is
    new.
    """

    def __init__(self, app: SalesFlow) -> None:
        self.app = app
        self._end = 0
        self._lock = threading.Lock()

    def end(self) -> int:
        """The position of the newest committed event (0 for an empty workspace)."""
        with self._lock:
            while True:
                batch = self.app.changes(after=self._end, limit=10_000)
                if not batch:
                    return self._end
                self._end = batch[-1].position


def _status(error: SalesflowError) -> int:
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 400


def error_response(error: SalesflowError | BadRequest) -> JSONResponse:
    """The answer to a refused request, naming the error and quoting its message; a
    ``ConfirmationRequired`` carries the plan to confirm."""
    body: views.JSON = {"error": type(error).__name__, "message": str(error)}
    if isinstance(error, BadRequest):
        return JSONResponse(body, status_code=400)
    if isinstance(error, ConfirmationRequired):
        body["plan"] = views.plan(error.plan)
    return JSONResponse(body, status_code=_status(error))


async def _answer(work: Callable[[], views.JSON]) -> Response:
    """Run ``work`` in the thread pool; its result as JSON, or its error."""
    try:
        result = await run_in_threadpool(work)
    except (SalesflowError, BadRequest) as error:
        return error_response(error)
    return JSONResponse(result)


#: The largest request body the board reads: its requests are a few hundred bytes.
MAX_BODY = 64 * 1024


async def _body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(f"the request body is larger than {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise BadRequest(f"the request body is larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"the request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kinds: tuple[type, ...], *, required: bool) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"{name!r} is required")
        return None
    value = body[name]
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        expected = " or ".join(k.__name__ for k in kinds)
        raise BadRequest(f"{name!r} must be {expected}, not {value!r}")
    return value


def _integer(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name!r} must be in {low}..{high}, not {value}")
    return value


def create_app(flow: SalesFlow, *, process: str = "standard") -> Starlette:
    """The board over ``flow``, opening on ``process`` (the page may switch)."""
    flow.process(process)  # an unknown default is an error now, not on the first request
    feed = Feed(flow)

    def chosen(request: Request) -> str:
        return request.query_params.get("process") or process

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def icon(request: Request) -> Response:
        # The page links its icon; this answers browsers and tools that ask anyway.
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    async def board(request: Request) -> Response:
        key = chosen(request)

        def work() -> views.JSON:
            position = feed.end()  # read before the board: the board is at least this new
            return views.board(flow, key, position=position)

        return await _answer(work)

    async def stats(request: Request) -> Response:
        key = chosen(request)
        return await _answer(lambda: views.stats(flow.pipeline(key)))

    async def changes(request: Request) -> Response:
        key = chosen(request)

        def work() -> views.JSON:
            after = _integer(request, "after", 0, 0, 2**62)
            events = flow.changes(after=after, limit=FEED_PAGE)
            answer: views.JSON = {
                "events": [views.event(e) for e in events],
                "position": events[-1].position if events else after,
                "more": len(events) == FEED_PAGE,
                "board": None,
            }
            if events:
                answer["board"] = views.board(flow, key, position=answer["position"])
            elif after > 0 and not flow.changes(after=after - 1, limit=1):
                # No event at ``after`` itself: a position past the end of the feed (a
                # store replaced under the page, or a made-up number). The page starts
                # over from the end there is, with the board as it is.
                end = feed.end()
                answer["position"] = end
                answer["board"] = views.board(flow, key, position=end)
            return answer

        return await _answer(work)

    async def preview(request: Request) -> Response:
        opportunity_id = request.path_params["opportunity_id"]
        try:
            body = await _body(request)
        except BadRequest as error:
            return error_response(error)

        def work() -> views.JSON:
            stage = _field(body, "stage", (str,), required=True)
            reason = _field(body, "loss_reason", (str,), required=False)
            return views.plan(flow.preview_stage_change(opportunity_id, stage, loss_reason=reason))

        return await _answer(work)

    async def change_stage(request: Request) -> Response:
        opportunity_id = request.path_params["opportunity_id"]
        try:
            body = await _body(request)
        except BadRequest as error:
            return error_response(error)

        def work() -> views.JSON:
            stage = _field(body, "stage", (str,), required=True)
            answer = _field(body, "cancel_pending", (bool,), required=False)
            reason = _field(body, "loss_reason", (str,), required=False)
            actor = _field(body, "actor", (str,), required=False)
            result = flow.change_stage(
                opportunity_id, stage, cancel_pending=answer, loss_reason=reason, actor=actor
            )
            moved = result.opportunity
            return {
                "notices": list(result.notices),
                "cancelled": [a.title for a in result.cancelled],
                "created": [a.title for a in result.created],
                "card": views.card(flow, moved),
                "board": views.board(flow, moved.process, position=feed.end()),
            }

        return await _answer(work)

    async def forecast(request: Request) -> Response:
        key = chosen(request)

        def work() -> views.JSON:
            months = _integer(request, "months", 6, 1, MAX_MONTHS)
            simulations = _integer(request, "simulations", 1000, 0, MAX_SIMULATIONS)
            seed = _integer(request, "seed", 1, 0, 2**31)
            return views.forecast(
                flow,
                key,
                first=_today(flow).replace(day=1),
                months=months,
                simulations=simulations,
                seed=seed,
            )

        return await _answer(work)

    routes = [
        Route("/", index),
        Route("/favicon.ico", icon),
        Route("/api/board", board),
        Route("/api/stats", stats),
        Route("/api/changes", changes),
        Route("/api/forecast", forecast),
        Route("/api/opportunities/{opportunity_id}/preview", preview, methods=["POST"]),
        Route("/api/opportunities/{opportunity_id}/stage", change_stage, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take) as
    JSON, like every other error of the board."""
    assert isinstance(error, HTTPException)
    status = HTTPStatus(error.status_code)
    message = f"{request.method} {request.url.path}: {status.phrase.lower()}"
    headers = dict(error.headers or {})
    if status is HTTPStatus.METHOD_NOT_ALLOWED and "Allow" in headers:
        message += f"; it takes {headers['Allow']}"
    body = {"error": status.phrase.replace(" ", ""), "message": message}
    return JSONResponse(body, status_code=status, headers=headers)


def _today(flow: SalesFlow) -> dt.date:
    """Today in the app's timezone, by its clock."""
    return flow.clock.now().astimezone(flow.timezone).date()
