"""The board's JSON endpoints over HTTP (Starlette's test client), on the demo
pipeline at a fixed moment: each answer checked against what salesflow itself says."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from web_board import create_app, seed_demo
from web_board.server import STATIC

from salesflow import (
    ActivityStatus,
    FixedClock,
    Indicator,
    Opportunity,
    SalesFlow,
    Status,
)

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def flow() -> SalesFlow:
    app = SalesFlow(clock=FixedClock(START))
    assert seed_demo(app) > 0
    return app


@pytest.fixture
def client(flow: SalesFlow) -> Iterator[TestClient]:
    with TestClient(create_app(flow, process="services")) as test_client:
        yield test_client


def deal(flow: SalesFlow, text: str) -> Opportunity:
    page = flow.search(process="services", text=text, limit=2)
    assert page.total == 1
    return page.items[0]


def post(client: TestClient, opportunity_id: str, action: str, **body: Any) -> Any:
    return client.post(f"/api/opportunities/{opportunity_id}/{action}", json=body)


# -- the board -----------------------------------------------------------------------


def test_board_columns_follow_the_pipeline(client: TestClient, flow: SalesFlow) -> None:
    board = client.get("/api/board").json()
    pipeline = flow.pipeline("services")
    assert board["process"]["key"] == "services"
    assert [c["key"] for c in board["columns"]] == [s.stage.key for s in pipeline.stages]
    for column, summary in zip(board["columns"], pipeline.stages, strict=True):
        assert column["count"] == summary.count == len(column["cards"])
        assert column["total"]["amount"] == str(summary.total.amount)
        assert column["weighted"]["amount"] == str(summary.weighted.amount)
        for card in column["cards"]:
            assert card["stage"] == column["key"]
            assert card["indicator"]["state"] == flow.indicator(card["id"]).state.name
    assert board["stats"]["total"]["amount"] == str(pipeline.total.amount)
    assert board["stats"]["weighted"]["text"] == f"{pipeline.weighted.amount:,} USD"
    assert board["process"]["loss_reasons"] == ["price", "timing", "competitor", "no budget"]
    assert {"standard", "simple", "services"} <= {p["key"] for p in board["processes"]}


def test_the_demo_shows_every_activity_box(client: TestClient) -> None:
    board = client.get("/api/board").json()
    states = {card["indicator"]["state"] for c in board["columns"] for card in c["cards"]}
    assert states == {i.name for i in Indicator}


def test_a_card_carries_title_value_owner(client: TestClient, flow: SalesFlow) -> None:
    northwind = deal(flow, "Northwind")
    board = client.get("/api/board").json()
    (card,) = [c for col in board["columns"] for c in col["cards"] if c["id"] == northwind.id]
    assert card["title"] == northwind.display_title == "Northwind Traders: process review"
    assert card["customer"] == "Northwind Traders"
    assert card["value"] == {"amount": "12000.00", "currency": "USD", "text": "12,000.00 USD"}
    assert card["owner"] == "alex"
    assert card["indicator"] == {"state": "UPCOMING", "open": 1, "overdue": 0}


def test_board_of_another_process_and_an_unknown_one(client: TestClient) -> None:
    standard = client.get("/api/board", params={"process": "standard"}).json()
    assert [c["key"] for c in standard["columns"]][:2] == ["lead", "qualification"]
    assert sum(c["count"] for c in standard["columns"]) == 2
    answer = client.get("/api/board", params={"process": "nope"})
    assert answer.status_code == 404
    assert answer.json()["error"] == "NotFound"
    assert "'nope'" in answer.json()["message"]


def test_stats_endpoint(client: TestClient, flow: SalesFlow) -> None:
    stats = client.get("/api/stats").json()
    assert [s["count"] for s in stats["stages"]] == [
        s.count for s in flow.pipeline("services").stages
    ]


# -- moving a card -------------------------------------------------------------------


def test_preview_asks_and_changes_nothing(client: TestClient, flow: SalesFlow) -> None:
    northwind = deal(flow, "Northwind")
    history = flow.history(northwind.id)
    plan = post(client, northwind.id, "preview", stage="qualified").json()
    assert plan["needs_answer"] is True
    assert [a["title"] for a in plan["to_cancel"]] == ["Introductory call"]
    assert plan["to_create"] == ["Discovery meeting"]
    assert (plan["from"], plan["to"], plan["probability"]) == ("lead", "qualified", 30)
    assert flow.history(northwind.id) == history
    assert flow.get(northwind.id).stage == "lead"


def test_a_move_without_an_answer_is_refused_with_the_plan(
    client: TestClient, flow: SalesFlow
) -> None:
    northwind = deal(flow, "Northwind")
    answer = post(client, northwind.id, "stage", stage="qualified")
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"] == "ConfirmationRequired"
    assert "cancel_pending" in body["message"]
    assert len(body["plan"]["to_cancel"]) == 1
    assert flow.get(northwind.id).stage == "lead"


@pytest.mark.parametrize("cancel", [True, False])
def test_a_move_with_an_answer(client: TestClient, flow: SalesFlow, cancel: bool) -> None:
    northwind = deal(flow, "Northwind")
    answer = post(client, northwind.id, "stage", stage="qualified", cancel_pending=cancel)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["notices"][-1] == "Moved to Qualified."
    assert body["cancelled"] == (["Introductory call"] if cancel else [])
    assert body["created"] == ["Discovery meeting"]
    assert body["card"]["stage"] == "qualified"
    qualified = next(c for c in body["board"]["columns"] if c["key"] == "qualified")
    assert northwind.id in [c["id"] for c in qualified["cards"]]
    assert qualified["count"] == 3
    planned = {a.title for a in flow.activities(opportunity_id=northwind.id, status="planned")}
    assert planned == (
        {"Discovery meeting"} if cancel else {"Introductory call", "Discovery meeting"}
    )


def test_a_move_records_the_actor(client: TestClient, flow: SalesFlow) -> None:
    fabrikam = deal(flow, "Fabrikam")  # nothing planned: nothing to ask
    answer = post(client, fabrikam.id, "stage", stage="proposal", actor="pat")
    assert answer.status_code == 200, answer.text
    assert flow.history(fabrikam.id)[-1].actor == "pat"


def test_a_lost_deal_needs_a_reason_from_the_list(client: TestClient, flow: SalesFlow) -> None:
    fabrikam = deal(flow, "Fabrikam")
    for action in ("preview", "stage"):
        answer = post(client, fabrikam.id, action, stage="lost")
        assert answer.status_code == 409
        assert answer.json()["error"] == "LossReasonRequired"
        assert "loss reason" in answer.json()["message"]
    answer = post(client, fabrikam.id, "stage", stage="lost", loss_reason="weather")
    assert answer.status_code == 422
    assert answer.json()["error"] == "ValidationError"
    assert "weather" in answer.json()["message"]
    assert flow.get(fabrikam.id).status is Status.OPEN
    answer = post(client, fabrikam.id, "stage", stage="lost", loss_reason="timing")
    assert answer.status_code == 200, answer.text
    assert flow.get(fabrikam.id).loss_reason == "timing"


def test_a_paused_deal_cannot_move(client: TestClient, flow: SalesFlow) -> None:
    wayne = deal(flow, "Wayne")
    flow.pause(wayne.id)
    answer = post(client, wayne.id, "stage", stage="won", cancel_pending=False)
    assert answer.status_code == 409
    assert answer.json()["error"] == "TransitionNotAllowed"
    assert "paused" in answer.json()["message"]
    assert flow.get(wayne.id).stage == "negotiation"


class NoClosing:
    """A policy that lets the intern change no stage."""

    def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool:
        return not (command == "change_stage" and actor == "intern")


def test_a_move_the_policy_refuses_is_403(flow: SalesFlow) -> None:
    guarded = SalesFlow(flow.repository, clock=flow.clock, policy=NoClosing())
    fabrikam = deal(guarded, "Fabrikam")
    with TestClient(create_app(guarded, process="services")) as client:
        answer = post(client, fabrikam.id, "stage", stage="qualified", actor="intern")
        assert answer.status_code == 403
        assert answer.json()["error"] == "PermissionDenied"
        assert "intern" in answer.json()["message"]
        assert post(client, fabrikam.id, "stage", stage="qualified", actor="kim").status_code == 200
    assert guarded.get(fabrikam.id).stage == "qualified"


@pytest.mark.parametrize("action", ["preview", "stage"])
def test_an_unknown_deal_is_404(client: TestClient, action: str) -> None:
    answer = post(client, "no-such-deal", action, stage="won")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "NotFound",
        "message": "Opportunity 'no-such-deal' does not exist",
    }


@pytest.mark.parametrize("action", ["preview", "stage"])
def test_an_unknown_stage_is_422(client: TestClient, flow: SalesFlow, action: str) -> None:
    northwind = deal(flow, "Northwind")
    answer = post(client, northwind.id, action, stage="heaven", cancel_pending=True)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "UnknownStage"
    assert "'heaven'" in body["message"]
    assert flow.get(northwind.id).stage == "lead"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "'stage' is required"),
        (b'{"stage": 3}', "'stage' must be str, not 3"),
        (b'{"stage": "won", "cancel_pending": "yes"}', "'cancel_pending' must be bool"),
        (b'{"stage": "lost", "loss_reason": 7}', "'loss_reason' must be str"),
        (b'{"stage": "lead", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "not JSON"),
        (b'{"stage": "won"' + b" " * 100_000 + b"}", "larger than"),
    ],
)
def test_unreadable_requests_are_400(
    client: TestClient, flow: SalesFlow, body: bytes, message: str
) -> None:
    northwind = deal(flow, "Northwind")
    history = flow.history(northwind.id)
    answer = client.post(f"/api/opportunities/{northwind.id}/stage", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "BadRequest"
    assert message in answer.json()["message"]
    assert flow.history(northwind.id) == history


# -- the change feed -------------------------------------------------------------------


def test_changes_bring_another_clients_move_once(client: TestClient, flow: SalesFlow) -> None:
    position = client.get("/api/board").json()["position"]
    assert position == flow.changes()[-1].position
    quiet = client.get("/api/changes", params={"after": position}).json()
    assert quiet == {"events": [], "position": position, "more": False, "board": None}

    globex = deal(flow, "Globex")
    flow.change_stage(globex.id, "proposal", cancel_pending=True, actor="dana")
    news = client.get("/api/changes", params={"after": position}).json()
    kinds = [e["kind"] for e in news["events"]]
    assert "STAGE_CHANGED" in kinds
    moved = next(e for e in news["events"] if e["kind"] == "STAGE_CHANGED")
    assert moved["opportunity_id"] == globex.id
    assert moved["actor"] == "dana"
    assert moved["details"] == {"from": "qualified", "to": "proposal"}
    positions = [e["position"] for e in news["events"]]
    assert positions == sorted(positions)
    assert positions[0] > position
    assert news["position"] == positions[-1]
    proposal = next(c for c in news["board"]["columns"] if c["key"] == "proposal")
    assert globex.id in [c["id"] for c in proposal["cards"]]
    again = client.get("/api/changes", params={"after": news["position"]}).json()
    assert again["events"] == []


@pytest.mark.parametrize("after", ["x", "-1", "1.5"])
def test_changes_refuse_a_bad_position(client: TestClient, after: str) -> None:
    answer = client.get("/api/changes", params={"after": after})
    assert answer.status_code == 400
    assert "'after'" in answer.json()["message"]


@pytest.mark.parametrize("beyond", [1, 2, 10**6])
def test_a_position_past_the_end_starts_over_from_the_end(
    client: TestClient, flow: SalesFlow, beyond: int
) -> None:
    end = flow.changes(after=0, limit=10_000)[-1].position
    answer = client.get("/api/changes", params={"after": end + beyond}).json()
    assert answer["events"] == []
    assert answer["position"] == end
    assert answer["more"] is False
    assert answer["board"] == client.get("/api/board").json()
    # From there the page follows the feed as usual.
    flow.change_stage(deal(flow, "Globex").id, "proposal", cancel_pending=True)
    news = client.get("/api/changes", params={"after": answer["position"]}).json()
    assert news["events"][0]["position"] == end + 1


def test_a_position_past_the_end_of_an_empty_feed_is_zero() -> None:
    with TestClient(create_app(SalesFlow(clock=FixedClock(START)))) as empty:
        answer = empty.get("/api/changes", params={"after": 7}).json()
    assert answer["position"] == 0
    assert answer["events"] == []
    assert answer["board"]["columns"]


# -- refusals of the HTTP layer and the icon ----------------------------------------------


def test_a_method_a_path_does_not_take_is_a_json_405(client: TestClient) -> None:
    answer = client.post("/api/board", json={})
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/json"
    assert "GET" in answer.headers["allow"]
    body = answer.json()
    assert body["error"] == "MethodNotAllowed"
    assert body["message"].startswith("POST /api/board: method not allowed; it takes ")
    moved = client.get("/api/opportunities/x/stage")
    assert moved.status_code == 405
    assert moved.json()["error"] == "MethodNotAllowed"


@pytest.mark.parametrize("path", ["/nowhere", "/api/nothing", "/static/missing.js"])
def test_an_unknown_path_is_a_json_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json() == {"error": "NotFound", "message": f"GET {path}: not found"}


def test_the_icon_is_served(client: TestClient) -> None:
    page = client.get("/").text
    assert '<link rel="icon" href="/static/favicon.svg"' in page
    for path in ("/static/favicon.svg", "/favicon.ico"):
        icon = client.get(path)
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.content.startswith(b"<svg")


# -- the forecast ------------------------------------------------------------------------


def test_forecast_by_month(client: TestClient, flow: SalesFlow) -> None:
    chart = client.get("/api/forecast", params={"months": 4, "simulations": 200}).json()
    assert chart["currency"] == "USD"
    assert [m["month"] for m in chart["months"]] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    grouped = flow.forecast(
        start=dt.date(2026, 3, 1),
        end=dt.date(2026, 6, 30),
        currency="USD",
        process="services",
        group_by="month",
    )
    rows = {row.key: row for row in grouped.rows}
    assert set(rows) == {"2026-03", "2026-04", "2026-05", "2026-06"}  # the demo's dates
    for month in chart["months"]:
        row = rows[month["month"]]
        assert month["open_expected"]["amount"] == f"{row.expected.amount:.2f}"
        assert month["won"]["amount"] == f"{row.won.amount:.2f}"
        total = row.expected.amount + row.won.amount
        assert month["expected"]["amount"] == f"{total:.2f}"
        low, high = month["p10"]["amount"], month["p90"]["amount"]
        assert float(low) <= float(high)
    march = chart["months"][0]
    assert march["won"]["amount"] == "25000.00"  # Soylent, won on the first day


@pytest.mark.parametrize(
    "params", [{"months": "0"}, {"months": "99"}, {"simulations": "-1"}, {"seed": "x"}]
)
def test_forecast_refuses_bad_arguments(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/api/forecast", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"] == "BadRequest"


# -- the page ------------------------------------------------------------------------------

#: A reference that makes the browser fetch from another host.
OFF_SITE = re.compile(
    r"""(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//"""
    r"""|(?:fetch|import)\(\s*["'`](?:https?:)?//"""
)


def test_the_page_and_its_files_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/board.js"' in page.text
    for name in ("board.js", "chart.js", "board.css", "index.html"):
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        assert served.text == (STATIC / name).read_text(encoding="utf-8")
        assert not OFF_SITE.search(served.text), f"{name} loads something from elsewhere"
    assert client.get("/static/nothing.js").status_code == 404


def test_a_refused_move_leaves_the_activities(client: TestClient, flow: SalesFlow) -> None:
    """A refused move (no answer) leaves the activities as they were."""
    contoso = deal(flow, "Contoso")
    before = flow.activities(opportunity_id=contoso.id, status=ActivityStatus.PLANNED)
    assert post(client, contoso.id, "stage", stage="negotiation").status_code == 409
    assert flow.activities(opportunity_id=contoso.id, status=ActivityStatus.PLANNED) == before


def test_a_lock_timeout_is_the_store_being_busy_not_a_conflict() -> None:
    from web_board.server import error_response

    from salesflow.errors import ConcurrencyError, LockTimeout

    assert error_response(LockTimeout("stayed locked")).status_code == 503
    assert error_response(ConcurrencyError("version moved")).status_code == 409
