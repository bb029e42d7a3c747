"""Planned activities as an RFC 5545 calendar, with the ``icalendar`` package (the
``calendar`` extra), so they open in any calendar program."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from salesflow import Activity, ActivityKind, SalesFlow

__all__ = ["DURATIONS", "calendar"]

#: How long each kind of activity is booked for (an activity has a due time only).
DURATIONS = {
    ActivityKind.MEETING: dt.timedelta(hours=1),
    ActivityKind.CALL: dt.timedelta(minutes=30),
}
_DEFAULT_DURATION = dt.timedelta(minutes=15)


def calendar(app: SalesFlow, activities: Iterable[Activity], *, name: str) -> bytes:
    """An iCalendar file holding one VEVENT per activity.

    Each event's UID is the activity's id, so a calendar that imports the file again
    updates the events instead of doubling them.
    """
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", "-//salesflow//salesflow activities//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    stamp = app.clock.now().astimezone(dt.UTC)
    titles: dict[str, str] = {}
    for activity in activities:
        event = icalendar.Event()
        event.add("uid", f"{activity.id}@salesflow")
        event.add("dtstamp", stamp)
        start = activity.due.astimezone(dt.UTC)
        event.add("dtstart", start)
        event.add("dtend", start + DURATIONS.get(activity.kind, _DEFAULT_DURATION))
        event.add("summary", activity.title)
        event.add("categories", [activity.kind.name.capitalize()])
        lines = []
        if activity.opportunity_id is not None:
            if activity.opportunity_id not in titles:
                titles[activity.opportunity_id] = app.get(activity.opportunity_id).display_title
            lines.append(f"Opportunity: {titles[activity.opportunity_id]}")
        if activity.owner is not None:
            lines.append(f"Owner: {activity.owner}")
            event.add("x-salesflow-owner", activity.owner)
        if lines:
            event.add("description", "\n".join(lines))
        if activity.created_at is not None:
            event.add("created", activity.created_at.astimezone(dt.UTC))
        event.add("status", "CONFIRMED")
        cal.add_component(event)
    data: bytes = cal.to_ical()
    return data
