"""The ``salesflow`` command: argument parsing, the pipeline it opens, and exit codes.

Exit status: 0 when the command did what it was asked, 1 when it could not (a refused
operation, a missing pipeline, an unreadable file, rows an import rejected), 2 for a
command line it cannot act on. Every error is one line on standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from importlib import metadata
from pathlib import Path
from typing import IO, Any, NoReturn

from dateutil import tz

from salesflow import (
    ActivityStatus,
    Clock,
    FixedClock,
    InMemoryRepository,
    Opportunity,
    Repository,
    SalesFlow,
    StaticRates,
    SystemClock,
    processes,
)
from salesflow import locale as catalogs
from salesflow.cli._demo import CONSULTING, DAYS
from salesflow.cli._demo import run as run_demo
from salesflow.cli._text import (
    Texts,
    UsageError,
    environment_locale,
    parse_locale,
    safe,
    safe_line,
)
from salesflow.cli._transfer import (
    FIELDS,
    Format,
    TransferError,
    export_file,
    file_format,
    problem,
    read_rows,
)
from salesflow.cli._views import Style
from salesflow.cli._views import activities as render_activities
from salesflow.cli._views import analytics as render_analytics
from salesflow.cli._views import board as render_board
from salesflow.cli._views import forecast as render_forecast
from salesflow.cli._views import history as render_history
from salesflow.cli._views import stuck as render_stuck
from salesflow.domain import checks
from salesflow.errors import NotFound, SalesflowError, ValidationError
from salesflow.messages import Message

__all__ = ["__version__", "main"]

try:
    __version__ = metadata.version("salesflow")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "unknown"

PROGRAM = "salesflow"
DEFAULT_DB = "salesflow.db"
DEMO_DB = "salesflow-demo.db"
_POSTGRES = ("postgresql://", "postgres://")
#: A file larger than this is never taken for an earlier demo pipeline.
_DEMO_MAX_BYTES = 16 * 1024 * 1024


class Failure(Exception):
    """The command could not do what it was asked: exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line on standard error (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        # The program's name comes first anyway (main prints it): name the command.
        command = self.prog.removeprefix(PROGRAM).strip()
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message} (see {self.prog} --help)")


# -- the pipeline ------------------------------------------------------------------


def _is_postgres(db: str) -> bool:
    return db.startswith(_POSTGRES)


def _open(options: argparse.Namespace, *, create: bool) -> Repository:
    db: str = options.db
    if _is_postgres(db):
        try:
            from salesflow.postgres import PostgresRepository
        except ImportError:
            raise Failure(
                "a PostgreSQL pipeline needs the postgres extra: pip install 'salesflow[postgres]'"
            ) from None
        return PostgresRepository(
            db, workspace=options.workspace, schema=options.schema, create=create
        )
    from salesflow.sqlite import SQLiteRepository

    path = Path(db)
    if path.is_dir():
        raise Failure(f"--db {db}: is a folder, not a pipeline file")
    if not create and not path.exists():
        raise Failure(
            options.texts._(
                "no pipeline at {db}: run 'salesflow demo' for a sample one, "
                "'salesflow import FILE' to start one, or pass --db"
            ).format(db=db)
        )
    return SQLiteRepository(path, workspace=options.workspace, create=create)


@contextmanager
def _app(
    options: argparse.Namespace, clock: Clock | None, *, create: bool = False
) -> Iterator[SalesFlow]:
    rates: StaticRates | None = getattr(options, "rates", None)
    repository = _open(options, create=create)
    try:
        yield SalesFlow(
            repository,
            clock=clock or SystemClock(),
            timezone=options.tz,
            rates=rates,
            locale=_locale(options),
        )
    finally:
        repository.close()


def _locale(options: argparse.Namespace) -> str | None:
    """The locale of the library's notices and error messages: the command line's own
    (``--locale`` or the environment's), when salesflow knows it as a language."""
    texts: Texts = options.texts
    try:
        return catalogs.locale_name(texts.locale, "--locale")
    except SalesflowError:
        return None


def _rates(values: Sequence[str] | None) -> StaticRates | None:
    """``--rate USD/EUR=0.92`` options as exchange rates (the inverse ones follow)."""
    if not values:
        return None
    table: dict[tuple[str, str], Decimal] = {}
    for value in values:
        pair, _, number = value.partition("=")
        base, _, quote = pair.partition("/")
        try:
            rate = Decimal(number.strip())
        except InvalidOperation:
            rate = Decimal(0)
        if not (base.strip() and quote.strip()) or not rate.is_finite() or rate <= 0:
            raise UsageError(f"--rate {value!r}: expected BASE/QUOTE=RATE such as USD/EUR=0.92")
        key = (base.strip().upper(), quote.strip().upper())
        try:  # the library's bounds: known currencies, a rate in its range
            StaticRates({key: rate})
        except ValidationError as error:
            rule = str(error).partition(": ")[2] or str(error)
            raise UsageError(f"--rate {value!r}: {rule}") from None
        if table.get(key, rate) != rate:
            raise UsageError(
                f"--rate {value!r}: {key[0]}/{key[1]} is given twice, as {table[key]} and {rate}"
            )
        inverse = table.get((key[1], key[0]))
        if inverse is not None and inverse * rate != 1:
            raise UsageError(
                f"--rate {value!r}: {key[1]}/{key[0]} is given as {inverse}, whose inverse is "
                f"not {rate}; give one direction (the other follows)"
            )
        table[key] = rate
    return StaticRates(table)


#: The library's report errors that tell a program what to pass (``rates=``,
#: ``currency=``), each with what a command line user gives instead.
_COMMAND_LINE_HINTS = {
    "No exchange rate from {base} to {quote}: pass rates= to SalesFlow": Message(
        "No exchange rate from {base} to {quote}; give it with --rate {base}/{quote}=RATE"
    ),
    "No exchange rate from {base} to {quote}": Message(
        "No exchange rate from {base} to {quote}; give it with --rate {base}/{quote}=RATE"
    ),
    "Process {key!r} has opportunities in {codes}: "
    "pass currency= (and rates= to SalesFlow) for one report": Message(
        "Process {key!r} has opportunities in {codes}: give --currency (and --rate) for one report"
    ),
    "Process {key!r} has won deals in {codes}: pass currency= "
    "(and rates= to SalesFlow) for their average value": Message(
        "Process {key!r} has won deals in {codes}: give --currency (and --rate) for their "
        "average value"
    ),
}


def _for_the_command_line(error: SalesflowError, locale: str | None) -> str:
    """An error's message for a command line user: a report error's hint to a program
    (``rates=``, ``currency=``) becomes the options to give, in the same language."""
    found = error.message
    template = getattr(found, "template", None)
    if not isinstance(found, Message) or template not in _COMMAND_LINE_HINTS:
        return str(error)
    catalog = catalogs.translation(locale) if locale is not None else None
    return _COMMAND_LINE_HINTS[template].with_params(**found.params).render(catalog)


# -- commands ----------------------------------------------------------------------


class _Context:
    def __init__(
        self, options: argparse.Namespace, clock: Clock | None, out: IO[str], err: IO[str]
    ) -> None:
        self.options = options
        self.clock = clock
        self.out = out
        self.err = err
        self.texts: Texts = options.texts
        colour = not options.no_color and "NO_COLOR" not in os.environ and _isatty(out)
        self.style = Style(colour)

    def print(self, line: str = "") -> None:
        # The views escape stored text where they place it; this is the last guard.
        print(safe_line(line, colour=self.style.colour), file=self.out)

    def note(self, line: str) -> None:
        print(safe(line), file=self.err)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _board(ctx: _Context) -> int:
    o = ctx.options
    as_of = None if o.as_of is None else _moment(o.as_of, o.tz)
    with _app(o, ctx.clock) as app:
        for line in render_board(
            app,
            o.process,
            ctx.texts,
            ctx.style,
            owner=o.owner,
            currency=o.currency,
            cards=o.cards,
            as_of=as_of,
        ):
            ctx.print(line)
    return 0


def _day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected a date such as 2026-03-31") from None


def _moment(text: str, zone: dt.tzinfo) -> dt.datetime:
    """``--as-of``: a date and time (``2026-03-01T17:00``, with or without an offset;
    without one, in ``--timezone``), or a day alone: the end of that day."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time.max, tzinfo=zone)
        else:
            moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"--as-of {text!r}: expected a day or a moment such as 2026-03-01 or 2026-03-01T17:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:  # the library's range of moments: outside it, the argument is what is wrong
        return checks.aware(moment, "--as-of")
    except ValidationError as error:
        raise UsageError(f"--as-of {text!r}: {str(error).partition(': ')[2]}") from None


def _quarter(today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of ``today``'s calendar quarter."""
    first = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    if first.month == 10:
        return first, dt.date(first.year, 12, 31)
    return first, dt.date(first.year, first.month + 3, 1) - dt.timedelta(days=1)


def _forecast(ctx: _Context) -> int:
    o = ctx.options
    start = None if o.start is None else _day(o.start, "--from")
    end = None if o.end is None else _day(o.end, "--to")
    as_of = None if o.as_of is None else _moment(o.as_of, o.tz)
    if o.seed is not None and not o.simulations:
        raise UsageError("--seed: only with --simulations N")
    with _app(o, ctx.clock) as app:
        # Without --from and --to: this quarter; with one of them: that day's quarter.
        today = app.clock.now().astimezone(app.timezone).date()
        start = start or _quarter(end or today)[0]
        end = end or _quarter(start)[1]
        if end < start:
            raise UsageError(f"--to {end}: before --from {start}")
        currency = o.currency or app.process(o.process or "standard").currency
        report = app.forecast(
            start=start,
            end=end,
            currency=currency,
            process=o.process,
            owner=o.owner,
            group_by=o.by,
            as_of=as_of,
            simulations=o.simulations,
            seed=o.seed,
        )
        for line in render_forecast(
            app, report, ctx.texts, ctx.style, process=o.process, owner=o.owner, as_of=as_of
        ):
            ctx.print(line)
    return 0


def _stuck(ctx: _Context) -> int:
    o = ctx.options
    with _app(o, ctx.clock) as app:
        key = app.process(o.process).key
        deals = [d for d in app.stuck(key) if o.owner is None or d.owner == o.owner]
        shown = deals[: o.limit] if o.limit else deals
        for line in render_stuck(app, key, shown, ctx.texts, ctx.style, owner=o.owner):
            ctx.print(line)
        if len(shown) < len(deals):
            ctx.print(ctx.texts._("... and {count} more").format(count=len(deals) - len(shown)))
    return 0


def _analytics(ctx: _Context) -> int:
    o = ctx.options
    start = None if o.start is None else _day(o.start, "--from")
    end = None if o.end is None else _day(o.end, "--to")
    if start is not None and end is not None and end < start:
        raise UsageError(f"--to {end}: before --from {start}")
    with _app(o, ctx.clock) as app:
        report = app.analytics(o.process, start=start, end=end, currency=o.currency)
        for line in render_analytics(app, report, ctx.texts, ctx.style):
            ctx.print(line)
    return 0


def _activities(ctx: _Context) -> int:
    o = ctx.options
    with _app(o, ctx.clock) as app:
        due_to = None
        if o.due:
            today = app.clock.now().astimezone(app.timezone).date()
            due_to = dt.datetime.combine(
                today + dt.timedelta(days=1), dt.time(), tzinfo=app.timezone
            ) - dt.timedelta(microseconds=1)
        planned = app.activities(status=ActivityStatus.PLANNED, owner=o.owner, due_to=due_to)
        if not planned:
            ctx.print(
                ctx.texts._("No planned activities are due.")
                if o.due
                else ctx.texts._("No planned activities.")
            )
            return 0
        shown = planned[: o.limit] if o.limit else planned
        for line in render_activities(app, shown, ctx.texts, ctx.style):
            ctx.print(line)
        if len(shown) < len(planned):
            ctx.print(ctx.texts._("... and {count} more").format(count=len(planned) - len(shown)))
    return 0


def _history(ctx: _Context) -> int:
    o = ctx.options
    with _app(o, ctx.clock) as app:
        opportunity = _find(app, o.opportunity, ctx.texts)
        for line in render_history(app, opportunity, app.history(opportunity.id), ctx.texts):
            ctx.print(line)
    return 0


def _find(app: SalesFlow, given: str, texts: Texts) -> Opportunity:
    """The opportunity with this id, or the only one whose title, description or
    customer contains this text."""
    if not given.strip():
        raise UsageError("history: give an opportunity's id or part of its title")
    try:
        return app.get(given)
    except (NotFound, ValidationError):
        pass
    page = app.search(text=given, limit=10, order_by="title")
    if page.total == 1:
        return page.items[0]
    if page.total == 0:
        raise Failure(
            texts._("no opportunity has the id '{given}' or '{given}' in its title").format(
                given=given
            )
        )
    names = ", ".join(f"{safe(o.display_title)} ({o.id})" for o in page.items)
    rest = page.total - len(page.items)
    more = "" if rest <= 0 else texts._(" and {count} more").format(count=rest)
    raise Failure(
        texts._("{count} opportunities match '{given}': {names}{more}; give an id").format(
            count=page.total, given=given, names=names, more=more
        )
    )


def _import(ctx: _Context) -> int:
    o = ctx.options
    path = Path(o.file)
    form = file_format(path, o.format)
    mapping = _pairs(o.map, "--map", "COLUMN=FIELD")
    for column, field in mapping.items():
        if field not in FIELDS:
            raise UsageError(
                f"--map {column}={field}: {field!r} is not a field; the fields are "
                + ", ".join(FIELDS)
            )
    stages = _pairs(o.map_stage, "--map-stage", "NAME=STAGE")
    if not path.is_file():
        raise Failure(f"{path}: no such file")
    existed = _is_postgres(o.db) or Path(o.db).exists()
    pipeline: contextlib.AbstractContextManager[SalesFlow]
    if o.dry_run and not existed:
        # Nothing to check against but the built-in processes: no file is made.
        pipeline = contextlib.nullcontext(
            SalesFlow(
                InMemoryRepository(),
                clock=ctx.clock or SystemClock(),
                timezone=o.tz,
                locale=_locale(o),
            )
        )
    else:
        pipeline = _app(o, ctx.clock, create=True)
    imported = 0
    try:
        code, imported = _import_into(
            ctx, pipeline, path=path, form=form, mapping=mapping, stages=stages
        )
    finally:
        if not existed and not imported:
            _remove_pipeline(Path(o.db))  # a pipeline made for nothing is not left behind
    return code


def _remove_pipeline(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _import_into(
    ctx: _Context,
    pipeline: contextlib.AbstractContextManager[SalesFlow],
    *,
    path: Path,
    form: Format,
    mapping: dict[str, str],
    stages: dict[str, str],
) -> tuple[int, int]:
    """Import into the pipeline: the exit status and how many opportunities went in."""
    o = ctx.options
    with pipeline as app:
        if o.process is not None:
            app.process(o.process)  # NotFound before any row is read
        rows = read_rows(
            path,
            form,
            app,
            mapping=mapping,
            process=o.process,
            currency=o.currency,
            stages=stages,
        )
        texts = ctx.texts
        if rows.ignored:
            ctx.note(
                texts._(
                    "Not read (no field of salesflow; --map COLUMN=FIELD reads one): {columns}"
                ).format(columns=", ".join(rows.ignored))
            )
        good = [(row.where, row.arguments) for row in rows.rows if row.arguments is not None]
        problems = [(row.where, row.problem or "") for row in rows.rows if row.problem]
        target = app
        if o.dry_run:
            target = SalesFlow(
                InMemoryRepository(), clock=app.clock, timezone=app.timezone, locale=app.locale
            )
            builtin = {processes.STANDARD.key, processes.SIMPLE.key}
            for definition in app.processes():
                if definition.key not in builtin:
                    target.define_process(definition)
        total = len(good)
        show = _progress(ctx, total, o.batch_size)
        result = target.create_opportunities(
            [arguments for _, arguments in good],
            batch_size=o.batch_size,
            actor=o.actor,
            progress=show,
        )
        if show is not None and _isatty(ctx.err):
            ctx.note("")  # end the progress line that kept being rewritten
        for position, error in result.failed.items():
            problems.append((good[position][0], problem(error)))
    problems.sort(key=lambda p: _order(p[0]))
    for where, why in problems:
        ctx.note(f"{path}: {where}: {why}")
    imported = len(result.succeeded)
    count = len(rows.rows)
    if o.dry_run:
        message = texts.ngettext(
            "Checked {count} row: {good} would be imported, {bad} rejected.",
            "Checked {count} rows: {good} would be imported, {bad} rejected.",
            count,
        )
    else:
        message = texts.ngettext(
            "Imported {good} of {count} row; {bad} rejected.",
            "Imported {good} of {count} rows; {bad} rejected.",
            count,
        )
    ctx.print(message.format(count=count, good=imported, bad=len(problems)))
    return (1 if problems else 0), (0 if o.dry_run else imported)


def _order(where: str) -> tuple[str, int]:
    kind, _, number = where.partition(" ")
    return kind, int(number) if number.isdigit() else 0


def _progress(ctx: _Context, total: int, batch: int) -> Callable[[int], None] | None:
    """A progress line on standard error for an import of more than one batch."""
    if total <= batch:
        return None
    live = _isatty(ctx.err)

    def show(done: int) -> None:
        percent = done * 100 // total
        text = ctx.texts._("Importing: {done} of {total} rows ({percent}%)").format(
            done=done, total=total, percent=percent
        )
        bar = "#" * (percent // 5)
        line = f"[{bar:<20}] {text}"
        if live:
            print("\r" + line, end="", file=ctx.err, flush=True)
        else:
            print(line, file=ctx.err, flush=True)

    return show


def _export(ctx: _Context) -> int:
    o = ctx.options
    path = Path(o.file)
    form = file_format(path, o.format)
    with _app(o, ctx.clock) as app:
        count = export_file(app, path, form, process=o.process)
    ctx.print(
        ctx.texts.ngettext(
            "Exported {count} opportunity to {file}.",
            "Exported {count} opportunities to {file}.",
            count,
        ).format(count=count, file=path)
    )
    return 0


def _calendar(ctx: _Context) -> int:
    o = ctx.options
    path = Path(o.out)
    if path.suffix.lower() != ".ics":
        raise UsageError(f"--out {o.out}: a calendar file's name ends in .ics")
    try:
        import icalendar  # noqa: F401
    except ImportError:
        raise Failure(
            "the calendar needs the calendar extra: pip install 'salesflow[calendar]'"
        ) from None
    from salesflow.cli._ics import calendar

    with _app(o, ctx.clock) as app:
        planned = app.activities(status=ActivityStatus.PLANNED, owner=o.owner)
        data = calendar(app, planned, name=ctx.texts._("Sales activities"))
    _write_whole(path, data)
    ctx.print(
        ctx.texts.ngettext(
            "Wrote {count} planned activity to {file}.",
            "Wrote {count} planned activities to {file}.",
            len(planned),
        ).format(count=len(planned), file=path)
    )
    return 0


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and move it there: never half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise Failure(f"{path}: the folder {directory} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _demo_run(ctx: _Context) -> int:
    o = ctx.options
    if _is_postgres(o.db):
        raise UsageError("demo: --db must be a file: the demo writes a SQLite pipeline")
    target = Path(o.db)
    if target.exists() and not _is_demo(target, o.workspace):
        raise Failure(
            f"{target} exists and is not a salesflow demo pipeline; the demo does not "
            "overwrite it: delete it or pass another --db"
        )
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise Failure(f"{target}: the folder {directory} does not exist")
    from salesflow.sqlite import SQLiteRepository

    real = ctx.clock or SystemClock()
    clock = FixedClock(real.now() - dt.timedelta(days=DAYS))
    texts = ctx.texts
    with tempfile.TemporaryDirectory(prefix=".salesflow-demo-", dir=directory) as scratch:
        built = Path(scratch) / target.name
        repository = SQLiteRepository(built, workspace=o.workspace)
        try:
            app = SalesFlow(repository, clock=clock, timezone=o.tz, locale=_locale(o))
            run_demo(app, clock, texts, ctx.print)
            ctx.print()
            for process in (CONSULTING.key, processes.STANDARD.key):
                for line in render_board(app, process, texts, ctx.style, cards=o.cards):
                    ctx.print(line)
                ctx.print()
        finally:
            repository.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(built, target)
    ctx.print(texts._("The demo pipeline is in {file}. Try:").format(file=target))
    ctx.print(f"  salesflow --db {target} board --process consulting")
    ctx.print(f"  salesflow --db {target} activities --due")
    ctx.print(f"  salesflow --db {target} history Northwind")
    return 0


def _is_demo(path: Path, workspace: str) -> bool:
    """Whether ``path`` holds a pipeline an earlier ``salesflow demo`` made: it is
    opened as a copy, so that a file that is something else is never changed."""
    if not path.is_file() or path.stat().st_size > _DEMO_MAX_BYTES:
        return False
    from salesflow.sqlite import SQLiteRepository

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "copy.db"
        shutil.copyfile(path, copy)
        wal = Path(f"{path}-wal")
        if wal.is_file():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        try:
            repository = SQLiteRepository(copy, workspace=workspace, timeout=1)
        except SalesflowError:
            return False
        try:
            return any(p == CONSULTING for p in repository.processes())
        except SalesflowError:
            return False
        finally:
            repository.close()


# -- the parser --------------------------------------------------------------------


def _pairs(values: Sequence[str] | None, option: str, shape: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or ():
        left, sep, right = value.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise UsageError(f"{option} {value!r}: expected {shape}")
        pairs[left.strip()] = right.strip()
    return pairs


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1 or number > 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 1 and 100000")
    return number


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= number <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1000")
    return number


def _simulations(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= number <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 100000")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _money_options(parser: argparse.ArgumentParser, currency: str) -> None:
    parser.add_argument("--currency", help=currency)
    parser.add_argument(
        "--rate",
        action="append",
        metavar="BASE/QUOTE=RATE",
        help="an exchange rate, e.g. USD/EUR=0.92 (its inverse follows); repeatable",
    )


def _as_of(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--as-of",
        metavar="DATETIME",
        help=f"{what}: 2026-03-01T17:00 (in --timezone unless it has an offset), or a day: its end",
    )


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command's name."""
    default: Any = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("pipeline and language")
    group.add_argument(
        "--db",
        default=default(None),
        metavar="FILE|DSN",
        help=f"a SQLite file (default {DEFAULT_DB}; {DEMO_DB} for demo) or a postgresql:// DSN",
    )
    group.add_argument(
        "--workspace",
        default=default("default"),
        help="the workspace within the pipeline (default: default)",
    )
    group.add_argument(
        "--schema",
        default=default("salesflow"),
        help="PostgreSQL only: the schema holding the tables (default: salesflow)",
    )
    group.add_argument(
        "--locale",
        default=default(None),
        help="language and formats, e.g. en_US or nb_NO (default: from LC_ALL / LANG)",
    )
    group.add_argument(
        "--timezone",
        default=default(None),
        metavar="ZONE",
        help="the time zone of 'today' and of the times shown, e.g. Europe/Oslo "
        "(default: TZ, else this machine's)",
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        default=default(False),
        help="no colours, even on a terminal (NO_COLOR does the same)",
    )


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog=PROGRAM,
        description="Work with a salesflow pipeline from the command line.",
        epilog="Run 'salesflow COMMAND --help' for a command's options. "
        "Exit status: 0 done, 1 failed, 2 bad command line.",
    )
    top.add_argument("--version", action="version", version=f"salesflow {__version__}")
    _common(top, top=True)
    commands = top.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    commands.required = True

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description)
        _common(sub, top=False)
        return sub

    demo = command(
        "demo",
        "build a sample pipeline and print its boards",
        "Build a sample pipeline: the standard process and a consulting process with "
        "stage actions and auto-advance, and twelve days of a team's work run through "
        f"the engine. It is written to --db (default {DEMO_DB}); a file an earlier demo "
        "wrote is replaced, any other file is left alone.",
    )
    demo.add_argument("--cards", type=_count, default=10, help="cards shown per stage")
    demo.set_defaults(run=_demo_run)

    board = command(
        "board",
        "the stages with their figures and cards",
        "Print a process' board: each stage with its number of deals, total and "
        "weighted value, then its cards (largest first) with value, owner and activity "
        "indicator: [!] overdue, [*] due today, [>] upcoming, [-] nothing planned.",
    )
    board.add_argument("--process", default="standard", help="process key (default standard)")
    board.add_argument("--owner", help="only this owner's deals")
    _money_options(board, "report in this currency (needs --rate for any other currency)")
    board.add_argument("--cards", type=_count, default=10, help="cards shown per stage")
    _as_of(board, "the figures as they stood then, without cards")
    board.set_defaults(run=_board)

    fc = command(
        "forecast",
        "what should close in a period, and what did",
        "Print the forecast of a period (default: this quarter): the open deals "
        "expected to close in it, their total (best case) and their value weighted by "
        "probability (expected), and the deals won in it; by owner, stage or month "
        "with --by; with --simulations, the range of the period's revenue (P10, P50, "
        "P90).",
    )
    fc.add_argument("--from", dest="start", metavar="DATE", help="first day, e.g. 2026-01-01")
    fc.add_argument("--to", dest="end", metavar="DATE", help="last day, e.g. 2026-03-31")
    fc.add_argument("--process", help="only this process' deals (default: every process)")
    fc.add_argument("--owner", help="only this owner's deals")
    _money_options(
        fc,
        "report in this currency (default: the process' currency, or the standard "
        "process'; needs --rate for any other currency)",
    )
    fc.add_argument("--by", choices=("owner", "stage", "month"), help="figures per group too")
    fc.add_argument(
        "--simulations",
        type=_simulations,
        default=0,
        metavar="N",
        help="simulate N outcomes for P10/P50/P90 of the revenue (up to 100000)",
    )
    fc.add_argument("--seed", type=_integer, metavar="S", help="makes the simulation repeatable")
    _as_of(fc, "the forecast as it stood then")
    fc.set_defaults(run=_forecast)

    st = command(
        "stuck",
        "open deals that outstayed their stage",
        "List the open deals that have been in their stage longer than its time limit "
        "(rot_after), longest first, with the days in the stage and the limit.",
    )
    st.add_argument("--process", default="standard", help="process key (default standard)")
    st.add_argument("--owner", help="only this owner's deals")
    st.add_argument(
        "--limit", type=_count, default=50, help="show at most this many (default 50; 0: all)"
    )
    st.set_defaults(run=_stuck)

    an = command(
        "analytics",
        "what the closed deals tell",
        "Print what a process' closed deals tell: win rate, average won value, median "
        "days from creation to won, each stage's reach, conversion, days and win rate, "
        "and the loss reasons. --from and --to choose the deals by their closing day "
        "(default: every closed deal).",
    )
    an.add_argument("--process", default="standard", help="process key (default standard)")
    an.add_argument("--from", dest="start", metavar="DATE", help="first closing day")
    an.add_argument("--to", dest="end", metavar="DATE", help="last closing day")
    _money_options(
        an,
        "the currency of the average won value (needed, with --rate, when the won deals "
        "are in several)",
    )
    an.set_defaults(run=_analytics)

    activities = command(
        "activities",
        "planned activities",
        "List planned activities, soonest first.",
    )
    activities.add_argument("--due", action="store_true", help="only those due today or overdue")
    activities.add_argument("--owner", help="only this owner's activities")
    activities.add_argument(
        "--limit", type=_count, default=50, help="show at most this many (default 50; 0: all)"
    )
    activities.set_defaults(run=_activities)

    history = command(
        "history",
        "an opportunity's history",
        "Print everything that happened to an opportunity, oldest first.",
    )
    history.add_argument(
        "opportunity", metavar="ID", help="the opportunity's id, or text of its title"
    )
    history.set_defaults(run=_history)

    imp = command(
        "import",
        "create opportunities from a CSV or JSON file",
        "Create opportunities from a file: salesflow's own CSV or JSON, or a deals "
        "export of Pipedrive or HubSpot (title/deal name, value/amount, currency, "
        "stage/deal stage, owner/deal owner, expected close date/close date, "
        "organization/company, status, ...). Rows that cannot be imported are reported "
        "with their line and reason, the others are imported; exit status 1 if any was "
        "rejected.",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--format", choices=("csv", "json"), help="default: from the extension")
    imp.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="read COLUMN as FIELD (" + ", ".join(FIELDS) + "); repeatable",
    )
    imp.add_argument(
        "--map-stage",
        action="append",
        metavar="NAME=STAGE",
        help="put rows whose stage is NAME in STAGE (a key or name); repeatable",
    )
    imp.add_argument("--process", help="process of rows that name none (default standard)")
    imp.add_argument("--currency", help="currency of rows that name none")
    imp.add_argument("--actor", help="who the history records as importing")
    imp.add_argument(
        "--batch-size", type=_positive, default=500, help="rows per transaction (default 500)"
    )
    imp.add_argument(
        "--dry-run", action="store_true", help="check every row and report; write nothing"
    )
    imp.set_defaults(run=_import)

    exp = command(
        "export",
        "write opportunities to a CSV or JSON file",
        "Write every opportunity (or one process') to a file that import reads back.",
    )
    exp.add_argument("file", metavar="FILE")
    exp.add_argument("--format", choices=("csv", "json"), help="default: from the extension")
    exp.add_argument("--process", help="only this process' opportunities")
    exp.set_defaults(run=_export)

    cal = command(
        "calendar",
        "planned activities as an .ics calendar",
        "Write the planned activities as RFC 5545 events, for any calendar program "
        "(needs the calendar extra).",
    )
    cal.add_argument("--out", required=True, metavar="FILE.ics", help="the file to write")
    cal.add_argument("--owner", help="only this owner's activities")
    cal.set_defaults(run=_calendar)
    return top


#: Commands whose report converts amounts only into a --currency given: --rate alone
#: would be ignored. (forecast reports in the process' currency by default, and
#: converts into it.)
_RATES_NEED_CURRENCY = frozenset({"board", "analytics"})


def _settle(options: argparse.Namespace) -> None:
    """Fill in the options whose defaults depend on the command or the environment."""
    if options.db is None:
        options.db = DEMO_DB if options.command == "demo" else DEFAULT_DB
    options.texts = Texts(
        parse_locale(options.locale) if options.locale is not None else environment_locale()
    )
    zone = options.timezone or os.environ.get("TZ") or None
    if zone is None:
        options.tz = tz.tzlocal()
    else:
        found = tz.gettz(zone)
        if found is None:
            raise UsageError(f"--timezone: {zone!r} is not a time zone such as Europe/Oslo")
        options.tz = found
    if "currency" in options and options.currency is not None:
        options.currency = options.currency.strip().upper()
    for option in ("workspace", "schema"):
        given = getattr(options, option, None)
        if given is not None and not given.strip():
            raise UsageError(f"--{option}: give a name, not blanks")
    for option in ("owner", "actor"):  # users' names: kept without surrounding blanks
        given = getattr(options, option, None)
        if given is not None:
            if not given.strip():
                raise UsageError(f"--{option}: give a name, not blanks")
            setattr(options, option, given.strip())
    options.rates = _rates(getattr(options, "rate", None))
    if options.command in _RATES_NEED_CURRENCY and options.rate and options.currency is None:
        # Without a currency to report in, these reports convert nothing.
        raise UsageError(
            f"{options.command}: --rate is used only with --currency, the currency to report in"
        )


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run one ``salesflow`` command line and return its exit status.

    ``clock`` replaces the system clock (tests); ``stdout`` and ``stderr`` default to
    the process' own.
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        with contextlib.redirect_stdout(out):  # --help and --version print there
            options = parser().parse_args(argv)
        _settle(options)
        run: Callable[[_Context], int] = options.run
        return run(_Context(options, clock, out, err))
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except UsageError as error:
        print(f"{PROGRAM}: {safe(str(error))}", file=err)
        return 2
    except SalesflowError as error:
        locale = error.locale  # the language the library spoke in, if it translated
        print(f"{PROGRAM}: error: {safe(_for_the_command_line(error, locale))}", file=err)
        return 1
    except (Failure, TransferError) as error:
        print(f"{PROGRAM}: error: {safe(str(error))}", file=err)
        return 1
    except BrokenPipeError:
        # The reader went away (salesflow board | head): stop quietly, as SIGPIPE would.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"{PROGRAM}: error: {safe(f'{where}{error.strerror or error}')}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=err)
        return 130
    except Exception as error:
        if os.environ.get("SALESFLOW_TRACEBACK"):
            raise
        print(
            f"{PROGRAM}: internal error: {type(error).__name__}: {safe(str(error))} "
            "(set SALESFLOW_TRACEBACK=1 to see where)",
            file=err,
        )
        return 1
