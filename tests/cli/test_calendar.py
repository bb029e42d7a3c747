"""``salesflow calendar``: planned activities as an RFC 5545 file that parses back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import pytest

from salesflow import ActivityKind, ActivityStatus, FixedClock, Money
from tests.cli.conftest import Run, open_app


@pytest.fixture
def planned(tmp_path: Path, clock: FixedClock) -> dict[str, str]:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        now = clock.now()
        deal = app.create_opportunity(title="Acme renewal", value=Money("1", "USD")).opportunity
        meeting = app.schedule_activity(
            title="Demo meeting",
            due=now + dt.timedelta(days=1),
            kind=ActivityKind.MEETING,
            opportunity_id=deal.id,
            owner="ann",
        )
        call = app.schedule_activity(
            title="Intro call", due=now + dt.timedelta(days=2), owner="bob"
        )
        gone = app.schedule_activity(title="Cancelled call", due=now, owner="ann")
        app.cancel_activity(gone.id)
        assert {a.status for a in app.activities()} == {
            ActivityStatus.PLANNED,
            ActivityStatus.CANCELLED,
        }
        return {"meeting": meeting.id, "call": call.id}
    finally:
        app.repository.close()


def events(path: Path) -> dict[str, icalendar.cal.Component]:
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    assert calendar["VERSION"] == "2.0"
    assert str(calendar["PRODID"]).startswith("-//salesflow//")
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_the_planned_activities_become_events(
    run: Run, planned: dict[str, str], tmp_path: Path, clock: FixedClock
) -> None:
    done = run("calendar", "--out", "activities.ics")
    assert done.code == 0, done.err
    assert done.out == "Wrote 2 planned activities to activities.ics.\n"
    found = events(tmp_path / "activities.ics")
    assert set(found) == {f"{planned['meeting']}@salesflow", f"{planned['call']}@salesflow"}
    meeting = found[f"{planned['meeting']}@salesflow"]
    assert str(meeting["SUMMARY"]) == "Demo meeting"
    start = meeting.decoded("DTSTART")
    assert start == clock.now() + dt.timedelta(days=1)
    assert meeting.decoded("DTEND") - start == dt.timedelta(hours=1)
    assert "Opportunity: Acme renewal" in str(meeting["DESCRIPTION"])
    assert "Owner: ann" in str(meeting["DESCRIPTION"])
    call = found[f"{planned['call']}@salesflow"]
    assert call.decoded("DTEND") - call.decoded("DTSTART") == dt.timedelta(minutes=30)
    assert "Opportunity" not in str(call.get("DESCRIPTION", ""))


def test_owner_narrows_the_calendar(run: Run, planned: dict[str, str], tmp_path: Path) -> None:
    done = run("calendar", "--out", "bob.ics", "--owner", "bob")
    assert done.out == "Wrote 1 planned activity to bob.ics.\n"
    assert set(events(tmp_path / "bob.ics")) == {f"{planned['call']}@salesflow"}


def test_bad_calendar_arguments_write_nothing(
    run: Run, planned: dict[str, str], tmp_path: Path
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    missing = run("calendar")
    assert missing.code == 2
    assert "--out" in missing.err
    wrong = run("calendar", "--out", "activities.txt")
    assert wrong.code == 2
    assert "ends in .ics" in wrong.err
    folder = run("calendar", "--out", "nowhere/a.ics")
    assert folder.code == 1
    assert run("--db", "missing.db", "calendar", "--out", "a.ics").code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
