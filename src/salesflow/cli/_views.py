"""The board, the activity list and an opportunity's history, as terminal text.

Everything fits in :data:`COLUMNS` columns: the board stacks its stages one under
the other, each with its figures and its cards below it.
"""

from __future__ import annotations

import datetime as dt
import enum
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from salesflow import (
    Activity,
    Analytics,
    Event,
    EventKind,
    Forecast,
    Indicator,
    Individual,
    Money,
    Opportunity,
    Organization,
    Process,
    SalesFlow,
    Stage,
    StageKind,
    Status,
)
from salesflow.cli._catalog import enum_label
from salesflow.cli._text import Texts, clip, pad, safe, width
from salesflow.errors import SalesflowError, UnknownStage

__all__ = [
    "COLUMNS",
    "Style",
    "activities",
    "analytics",
    "board",
    "forecast",
    "history",
    "stuck",
]

#: The width every view is made for.
COLUMNS = 80

#: Seed 000's coloured box as text: one symbol per indicator state.
SYMBOLS: Mapping[Indicator, str] = {
    Indicator.OVERDUE: "[!]",  # white box, red icon
    Indicator.TODAY: "[*]",  # solid green
    Indicator.UPCOMING: "[>]",  # white box, green icon
    Indicator.NONE: "[-]",  # solid red
}

#: ANSI colours of the symbols on a terminal: solid boxes get a background.
_COLOURS: Mapping[Indicator, str] = {
    Indicator.OVERDUE: "\x1b[1;31m",
    Indicator.TODAY: "\x1b[1;37;42m",
    Indicator.UPCOMING: "\x1b[1;32m",
    Indicator.NONE: "\x1b[1;37;41m",
}
_RESET = "\x1b[0m"


class Style:
    """Whether to colour the output (a terminal that has not asked for ``NO_COLOR``)."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def symbol(self, state: Indicator) -> str:
        text = SYMBOLS[state]
        return f"{_COLOURS[state]}{text}{_RESET}" if self.colour else text

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}{_RESET}" if self.colour else text


def _today(app: SalesFlow) -> dt.date:
    return app.clock.now().astimezone(app.timezone).date()


def _percent(texts: Texts, value: int) -> str:
    if texts.babel:
        from babel.numbers import format_percent

        return format_percent(value / 100, locale=texts.locale)
    return f"{value}%"


def _indicator_names(texts: Texts) -> Mapping[Indicator, str]:
    return {
        Indicator.OVERDUE: texts._("overdue"),
        Indicator.TODAY: texts._("due today"),
        Indicator.UPCOMING: texts._("upcoming"),
        Indicator.NONE: texts._("no activity planned"),
    }


def legend(texts: Texts, style: Style) -> str:
    names = _indicator_names(texts)
    return "  ".join(f"{style.symbol(state)} {names[state]}" for state in SYMBOLS)


def _line(left: str, right: str) -> list[str]:
    """``left`` and ``right`` on one line of :data:`COLUMNS`, or on two if they do not fit."""
    gap = COLUMNS - width(left) - width(right)
    if gap >= 2:
        return [left + " " * gap + right]
    return [clip(left, COLUMNS), pad(right, COLUMNS, right=True)]


def board(
    app: SalesFlow,
    process: str,
    texts: Texts,
    style: Style,
    *,
    owner: str | None = None,
    currency: str | None = None,
    cards: int = 10,
    as_of: dt.datetime | None = None,
) -> list[str]:
    """The board of ``process``: each stage with its count, total and weighted value,
    then up to ``cards`` of its opportunities (largest value first) with their value,
    owner and activity indicator. ``as_of``: the figures as they stood then, without
    cards (a card shows a deal as it is now)."""
    definition = app.process(process)
    summary = app.pipeline(definition.key, owner=owner, currency=currency, as_of=as_of)
    if as_of is not None:
        cards = 0
    _ = texts._
    title = texts.process(definition.name)
    if owner is not None:
        title = _("{process}, owner {owner}").format(process=title, owner=safe(owner))
    moment = texts.date(_today(app)) if as_of is None else texts.moment(as_of, app.timezone)
    lines = _line(style.bold(clip(title, COLUMNS - 24)), _("as of {day}").format(day=moment))
    lines.append("=" * COLUMNS)
    statuses = (Status.OPEN, Status.WON, Status.LOST)
    counts = {
        row.stage.key: texts.ngettext("{count} deal", "{count} deals", row.count).format(
            count=row.count
        )
        for row in summary.stages
    }
    amounts = [texts.money(m) for row in summary.stages for m in (row.total, row.weighted)]
    amounts += [texts.money(summary.total), texts.money(summary.weighted)]
    count_columns = max(width(c) for c in counts.values())
    money_columns = max(width(a) for a in amounts)

    def figures(count: str, total: Money, weighted: Money) -> str:
        return "  ".join(
            (
                pad(count, count_columns, right=True),
                _("total {amount}").format(
                    amount=pad(texts.money(total), money_columns, right=True)
                ),
                _("weighted {amount}").format(
                    amount=pad(texts.money(weighted), money_columns, right=True)
                ),
            )
        )

    for row in summary.stages:
        stage = row.stage
        name = f"{texts.stage(stage.name)} ({_percent(texts, stage.probability)})"
        lines.append("")
        lines.extend(
            _line(
                style.bold(clip(name, COLUMNS)),
                figures(counts[stage.key], row.total, row.weighted),
            )
        )
        lines.append("-" * COLUMNS)
        if cards <= 0:
            continue
        page = app.search(
            process=definition.key,
            stages=stage.key,
            statuses=statuses,
            owner=owner,
            order_by="-value",
            limit=cards,
        )
        for opportunity in page.items:
            lines.append(_card(app, opportunity, stage, texts, style))
        if page.total > len(page.items):
            more = page.total - len(page.items)
            lines.append("      " + _("... and {count} more").format(count=more))
    lines.append("")
    lines.append("=" * COLUMNS)
    lines.extend(_line(_("Open stages"), figures("", summary.total, summary.weighted)))
    if summary.paused:
        lines.append(
            texts.ngettext(
                "{count} paused deal is left out of the figures.",
                "{count} paused deals are left out of the figures.",
                summary.paused,
            ).format(count=summary.paused)
        )
    if as_of is None:
        lines.append(legend(texts, style))
    else:
        lines.append(_("Figures as they stood then; no cards, which show deals as they are now."))
    return lines


def _card(
    app: SalesFlow, opportunity: Opportunity, stage: Stage, texts: Texts, style: Style
) -> str:
    """One card: activity indicator (open deals only), title, value, owner."""
    if stage.kind is StageKind.OPEN:
        mark = style.symbol(app.indicator(opportunity.id).state)
    else:
        mark = "   "
    value = texts.money(opportunity.value)
    owner = safe(opportunity.owner or texts._("(unassigned)"))
    owner_columns = 14
    value_columns = max(16, width(value))
    title_columns = COLUMNS - 6 - value_columns - 2 - owner_columns - 1
    return (
        f"  {mark} {pad(safe(opportunity.display_title), title_columns)} "
        f"{pad(value, value_columns, right=True)}  {clip(owner, owner_columns)}"
    ).rstrip()


# -- activities --------------------------------------------------------------------


def activities(
    app: SalesFlow, planned: Iterable[Activity], texts: Texts, style: Style
) -> list[str]:
    """Planned activities, one a line: when, state, kind, title, opportunity, owner."""
    today = _today(app)
    titles: dict[str, str] = {}
    lines: list[str] = []
    shown: dt.date | None = None
    for activity in planned:
        local = activity.due.astimezone(app.timezone)
        day = local.date()
        if day != shown:
            shown = day
            lines.append(texts.date(day))
        state = (
            Indicator.OVERDUE
            if day < today
            else Indicator.TODAY
            if day == today
            else Indicator.UPCOMING
        )
        what = f"{_kind(texts, activity)}: {safe(activity.title)}"
        if activity.opportunity_id is not None:
            if activity.opportunity_id not in titles:
                titles[activity.opportunity_id] = safe(
                    app.get(activity.opportunity_id).display_title
                )
            what += f" - {titles[activity.opportunity_id]}"
        owner = safe(activity.owner or texts._("(unassigned)"))
        when = texts.time(local)
        head = f"  {pad(when, max(8, width(when)))} {style.symbol(state)} "
        what_columns = COLUMNS - width(head) - 2 - 10
        lines.append(f"{head}{pad(what, what_columns)}  {clip(owner, 10)}".rstrip())
    return lines


def _kind(texts: Texts, activity: Activity) -> str:
    return texts.pgettext("activity kind", enum_label(activity.kind))


# -- history -----------------------------------------------------------------------


def _event_name(texts: Texts, kind: EventKind) -> str:
    return texts.pgettext("event", enum_label(kind))


def _stage_name(texts: Texts, process: Process | None, key: object) -> str:
    if process is None or not isinstance(key, str):
        return safe(str(key))
    try:
        return texts.stage(process.stage(key).name)
    except UnknownStage:
        return safe(key)


def _details(
    texts: Texts,
    process: Process | None,
    event: Event,
    actions: Mapping[str, str],
) -> str:
    """A short text for an event's details: the stage, the move, the activity or
    action, the outcome or reason, the fields changed."""
    details = event.details
    parts: list[str] = []
    changes = details.get("changes")
    changed: Mapping[str, Any] = changes if isinstance(changes, Mapping) else {}
    if event.kind is EventKind.CREATED:
        parts.append(
            texts._("in {stage}").format(stage=_stage_name(texts, process, details.get("stage")))
        )
        value = changed.get("value", (None, None))[1]
        if isinstance(value, Money):
            parts.append(texts.money(value))
    elif "from" in details and "to" in details:
        parts.append(
            f"{_stage_name(texts, process, details['from'])} -> "
            f"{_stage_name(texts, process, details['to'])}"
        )
    if "title" in details:
        parts.append(f"'{safe(str(details['title']))}'")
    elif "key" in details:
        action = actions.get(str(details.get("action_id")), str(details["key"]))
        parts.append(f"'{safe(action)}'")
    due = details.get("due")
    if event.kind is EventKind.ACTIVITY_SCHEDULED and isinstance(due, dt.datetime):
        parts.append(texts._("due {day}").format(day=texts.date(due.date())))
    if details.get("outcome"):
        parts.append(texts._("outcome '{outcome}'").format(outcome=safe(str(details["outcome"]))))
    reason = details.get("reason") or changed.get("loss_reason", (None, None))[1]
    if reason:
        parts.append(texts._("reason '{reason}'").format(reason=safe(str(reason))))
    if event.kind is EventKind.UPDATED:
        parts.extend(
            f"{field} {_shown(texts, old)} -> {_shown(texts, new)}"
            for field, (old, new) in sorted(changed.items())
        )
    elif event.kind is EventKind.PROBABILITY_SET and "probability" in changed:
        old, new = changed["probability"]
        parts.append(f"{_percent(texts, old)} -> {_percent(texts, new)}")
    return "; ".join(parts)


def _shown(texts: Texts, value: object) -> str:
    """A field's value in a history line, short."""
    if value is None or (isinstance(value, str | tuple) and not value):
        return "-"
    if isinstance(value, Money):
        return texts.money(value)
    if isinstance(value, dt.datetime):
        return texts.moment(value, dt.UTC)
    if isinstance(value, dt.date):
        return texts.date(value)
    if isinstance(value, enum.Enum):
        return enum_label(value)
    if isinstance(value, Individual | Organization):
        return safe(value.name)
    if isinstance(value, tuple):
        return str(len(value))
    return f"'{clip(safe(str(value)), 30)}'"


def history(
    app: SalesFlow, opportunity: Opportunity, events: Iterable[Event], texts: Texts
) -> list[str]:
    """The opportunity's history, oldest first: when, what, who, and the details
    (on a line of their own when they do not fit beside)."""
    try:
        process: Process | None = app.process(opportunity.process)
    except SalesflowError:
        process = None
    actions: dict[str, str] = {}
    for stage in process.stages if process is not None else ():
        actions.update((a.id, a.title) for a in app.actions(opportunity.id, stage.key))
    heading = texts._("History of {title} (now in {stage}, {status})").format(
        title=safe(opportunity.display_title),
        stage=_stage_name(texts, process, opportunity.stage),
        status=texts.pgettext("status", enum_label(opportunity.status)),
    )
    lines = [*textwrap.wrap(heading, COLUMNS, subsequent_indent="  "), ""]
    day: dt.date | None = None
    for event in events:
        local = event.at.astimezone(app.timezone)
        if local.date() != day:
            day = local.date()
            lines.append(texts.date(day))
        when = texts.time(local)
        head = (
            f"  {pad(when, max(8, width(when)))} {pad(_event_name(texts, event.kind), 19)} "
            f"{pad(safe(event.actor or '-'), 8)}"
        )
        text = _details(texts, process, event, actions)
        if width(head) + 1 + width(text) <= COLUMNS:
            lines.append(f"{head} {text}".rstrip())
            continue
        lines.append(head.rstrip())
        lines.extend(
            textwrap.wrap(text, COLUMNS, initial_indent=" " * 11, subsequent_indent=" " * 11)
        )
    return lines


# -- forecast ----------------------------------------------------------------------


def _table(
    heading: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    indent: int = 2,
    text: frozenset[int] = frozenset(),
) -> list[str]:
    """A table in :data:`COLUMNS`: the first column left-aligned and as wide as is
    left, the others as wide as their widest cell, right-aligned but for the columns
    in ``text``. When the others leave the first column too little room, each row's
    name is on a line of its own."""
    widths = [max(width(row[i]) for row in (heading, *rows)) for i in range(1, len(heading))]
    figures_columns = sum(w + 2 for w in widths)
    name_columns = COLUMNS - indent - figures_columns
    lines: list[str] = []

    def figures(row: Sequence[str]) -> str:
        return "".join(
            "  " + pad(cell, w, right=i not in text)
            for i, (cell, w) in enumerate(zip(row[1:], widths, strict=True), start=1)
        )

    if name_columns >= 12:
        for row in (heading, *rows):
            lines.append((" " * indent + pad(row[0], name_columns) + figures(row)).rstrip())
        return lines
    for row in (heading, *rows):
        if row[0]:
            lines.append(clip(" " * indent + row[0], COLUMNS))
        lines.append(clip(figures(row).rjust(COLUMNS), COLUMNS))
    return lines


def forecast(
    app: SalesFlow,
    report: Forecast,
    texts: Texts,
    style: Style,
    *,
    process: str | None = None,
    owner: str | None = None,
    as_of: dt.datetime | None = None,
) -> list[str]:
    """The forecast of a period: the open deals expected to close in it (how many,
    best case, expected), what was won in it, the simulated range and the groups."""
    _ = texts._
    title = (
        _("Forecast, all processes")
        if process is None
        else _("Forecast, {process}").format(process=texts.process(app.process(process).name))
    )
    if owner is not None:
        title = _("{process}, owner {owner}").format(process=title, owner=safe(owner))
    period = _("{start} to {end}").format(
        start=texts.date(report.start), end=texts.date(report.end)
    )
    lines = _line(style.bold(clip(title, COLUMNS - 30)), period)
    if as_of is not None:
        lines.append(_("as it stood at {moment}").format(moment=texts.moment(as_of, app.timezone)))
    lines.append("=" * COLUMNS)
    money = texts.money
    lines += _line(_("Open deals expected to close in the period"), str(report.count))
    lines += _line(_("Best case (every one of them won)"), money(report.best_case))
    lines += _line(_("Expected (each value x its probability)"), money(report.expected))
    won = texts.ngettext(
        "Won in the period ({count} deal)", "Won in the period ({count} deals)", report.won_count
    ).format(count=report.won_count)
    lines += _line(won, money(report.won))
    if report.simulations and report.p10 is not None:
        lines.append("-" * COLUMNS)
        lines.append(
            texts.ngettext(
                "Revenue of the period in {count} simulated outcome:",
                "Revenue of the period in {count} simulated outcomes:",
                report.simulations,
            ).format(count=report.simulations)
        )
        for label, amount in (
            (_("P10 (nine in ten outcomes reach it)"), report.p10),
            (_("P50 (the middle outcome)"), report.p50),
            (_("P90 (one in ten outcomes reaches it)"), report.p90),
        ):
            if amount is not None:
                lines += _line("  " + label, money(amount))
    if report.group_by is not None:
        lines.append("")
        lines.append(style.bold(_group_heading(texts, report.group_by)))
        lines.append("-" * COLUMNS)
        if not report.rows:
            lines.append("  " + _("Nothing in the period."))
        else:
            heading = ["", _("Open"), _("Expected"), _("Best case"), _("Won")]
            groups = list(report.rows)
            if report.group_by == "stage":
                groups.sort(key=_stage_order(app, process))
            rows = [
                [
                    _group_name(app, texts, report.group_by, row.key, process),
                    str(row.count),
                    money(row.expected),
                    money(row.best_case),
                    money(row.won),
                ]
                for row in groups
            ]
            lines += _table(heading, rows)
    return lines


def _stage_order(app: SalesFlow, process: str | None) -> Any:
    """A sort key putting stage groups in their process' order."""
    places: dict[str, int] = {}
    definitions = (app.process(process),) if process is not None else app.processes()
    for definition in definitions:
        for place, stage in enumerate(definition.stages):
            places.setdefault(stage.key, place)

    def key(row: Any) -> tuple[int, str]:
        return places.get(row.key or "", len(places)), row.key or ""

    return key


def _group_heading(texts: Texts, group_by: str) -> str:
    if group_by == "owner":
        return texts._("By owner")
    if group_by == "stage":
        return texts._("By stage")
    return texts._("By month (of the expected close, or of the closing day of a won deal)")


def _group_name(
    app: SalesFlow, texts: Texts, group_by: str, key: str | None, process: str | None
) -> str:
    if key is None:
        return texts._("(unassigned)")
    if group_by == "month":
        year, _, month = key.partition("-")
        try:
            return texts.month(dt.date(int(year), int(month), 1))
        except ValueError:
            return key
    if group_by == "stage":
        for definition in (app.process(process),) if process is not None else app.processes():
            for stage in definition.stages:
                if stage.key == key:
                    return texts.stage(stage.name)
    return safe(key)


# -- stuck -------------------------------------------------------------------------


def _days(texts: Texts, value: float) -> str:
    """A number of days: whole, or with one decimal when it has a fraction."""
    whole = round(value, 1)
    if texts.babel:
        from babel.numbers import format_decimal

        return format_decimal(whole, format="#,##0.#", locale=texts.locale)
    return f"{whole:,.1f}".removesuffix(".0")


def stuck(
    app: SalesFlow,
    process: str,
    deals: Sequence[Opportunity],
    texts: Texts,
    style: Style,
    *,
    owner: str | None = None,
) -> list[str]:
    """The open deals that outstayed their stage's ``rot_after``, longest first: each
    with its stage, the days in it and the stage's limit, value and owner."""
    _ = texts._
    definition = app.process(process)
    title = _("Stuck deals, {process}").format(process=texts.process(definition.name))
    if owner is not None:
        title = _("{process}, owner {owner}").format(process=title, owner=safe(owner))
    now = app.clock.now()
    lines = _line(
        style.bold(clip(title, COLUMNS - 24)), _("as of {day}").format(day=texts.date(_today(app)))
    )
    lines.append("=" * COLUMNS)
    if not any(s.rot_after is not None for s in definition.stages):
        lines.append(_("No stage of this process has a time limit (rot_after)."))
        return lines
    if not deals:
        lines.append(_("No open deal has outstayed its stage."))
        return lines
    heading = ["", _("Stage"), _("Days (limit)"), _("Value"), _("Owner")]
    rows: list[list[str]] = []
    for deal in deals:
        stage = definition.stage(deal.stage)
        spent = (now - deal.stage_entered_at).total_seconds() / 86_400
        limit = stage.rot_after.total_seconds() / 86_400 if stage.rot_after else 0.0
        rows.append(
            [
                safe(deal.display_title),
                clip(texts.stage(stage.name), 16),
                f"{_days(texts, spent)} ({_days(texts, limit)})",
                texts.money(deal.value),
                clip(safe(deal.owner or _("(unassigned)")), 12),
            ]
        )
    lines += _table(heading, rows, text=frozenset({1, 4}))
    return lines


# -- analytics ---------------------------------------------------------------------


def _rate_text(texts: Texts, rate: float | None) -> str:
    if rate is None:
        return "-"
    if texts.babel:
        from babel.numbers import format_percent

        return format_percent(rate, locale=texts.locale)
    return f"{rate:.0%}"


def analytics(app: SalesFlow, report: Analytics, texts: Texts, style: Style) -> list[str]:
    """What the closed deals of a period tell: counts, win rate, average won value,
    median cycle, each stage's reach, conversion, days and win rate, loss reasons."""
    _ = texts._
    definition = report.process
    title = _("Analytics, {process}").format(process=texts.process(definition.name))
    if report.start is None and report.end is None:
        period = _("every closed deal")
    else:
        period = _("closed {start} to {end}").format(
            start=texts.date(report.start) if report.start is not None else "...",
            end=texts.date(report.end) if report.end is not None else "...",
        )
    lines = _line(style.bold(clip(title, COLUMNS - 30)), period)
    lines.append("=" * COLUMNS)
    lines += _line(_("Closed deals (won, lost)"), f"{report.closed} ({report.won}, {report.lost})")
    lines += _line(_("Win rate"), _rate_text(texts, report.win_rate))
    average = report.average_won_value
    lines += _line(_("Average won value"), "-" if average is None else texts.money(average))
    cycle = report.median_cycle_days
    lines += _line(
        _("Median days from creation to won"), "-" if cycle is None else _days(texts, cycle)
    )
    lines.append("")
    lines.append(style.bold(_("Stages")))
    lines.append("-" * COLUMNS)
    heading = ["", _("Reached"), _("Went on"), _("Days in stage"), _("Won")]
    rows: list[list[str]] = []
    for stage in definition.stages:
        days = report.average_days_in_stage.get(stage.key)
        rows.append(
            [
                texts.stage(stage.name),
                str(report.reached.get(stage.key, 0)),
                _rate_text(texts, report.conversion.get(stage.key))
                if stage.kind is StageKind.OPEN
                else "",
                "" if days is None else _days(texts, days),
                _rate_text(texts, report.stage_win_rates.get(stage.key)),
            ]
        )
    lines += _table(heading, rows)
    lines.append(
        "  "
        + _(
            "Reached: closed deals that were in the stage; went on: share of them that "
            "reached a later stage; won: share of them won."
        )
    )
    lines[-1:] = textwrap.wrap(lines[-1], COLUMNS, subsequent_indent="  ")
    lines.append("")
    lines.append(style.bold(_("Loss reasons")))
    lines.append("-" * COLUMNS)
    if not report.loss_reasons:
        lines.append("  " + _("No lost deal gave a reason."))
    else:
        lines += _table(
            ["", _("Lost deals")],
            [[safe(reason), str(count)] for reason, count in report.loss_reasons.items()],
        )
    return lines
