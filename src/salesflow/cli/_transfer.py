"""Opportunities in and out of files: CSV (salesflow's own columns, or a Pipedrive or
HubSpot deals export) and JSON (the shapes of ``salesflow.serialization``'s
converter).

Import reads the whole file first, turns each row into ``create_opportunity``'s
arguments, and hands the good rows to ``SalesFlow.create_opportunities`` in batches.
A row that cannot be read, or that the library refuses, is reported with its line
(CSV) or item number (JSON) and the reason; the other rows still go in. A file that
cannot be read at all writes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import attrs
from moneyed import Money
from moneyed.classes import CurrencyDoesNotExist, get_currency

from salesflow import (
    Individual,
    Opportunity,
    Organization,
    Process,
    Related,
    SalesFlow,
    StageKind,
    Status,
)
from salesflow.cli._text import UsageError
from salesflow.errors import SalesflowError, UnknownStage
from salesflow.serialization import DECODE_ERRORS, converter, describe_error

__all__ = [
    "FIELDS",
    "Record",
    "Row",
    "Rows",
    "TransferError",
    "export_file",
    "file_format",
    "problem",
    "read_rows",
]

Format = Literal["csv", "json"]


class TransferError(Exception):
    """A file that cannot be read or written as a whole: nothing was imported."""


@attrs.frozen
class Record:
    """One opportunity as a file holds it: ``create_opportunity``'s arguments.

    This is the JSON shape of an exported opportunity (through the converter: money
    as ``{"amount", "currency"}``, dates as ``YYYY-MM-DD``, a customer with its
    ``"type"``); the process and stage are keys.
    """

    title: str | None = None
    process: str | None = None
    stage: str | None = None
    customer: Individual | Organization | None = None
    value: Money | None = None
    annual_value: Money | None = None
    probability: int | None = None
    expected_close: dt.date | None = None
    owner: str | None = None
    description: str = ""
    external_ref: str | None = None
    related: tuple[Related, ...] = ()
    loss_reason: str | None = None

    @classmethod
    def of(cls, opportunity: Opportunity) -> Record:
        return cls(
            title=opportunity.title,
            process=opportunity.process,
            stage=opportunity.stage,
            customer=opportunity.customer,
            value=opportunity.value,
            annual_value=opportunity.annual_value,
            probability=opportunity.probability_override,
            expected_close=opportunity.expected_close,
            owner=opportunity.owner,
            description=opportunity.description,
            external_ref=opportunity.external_ref,
            related=opportunity.related,
            loss_reason=opportunity.loss_reason,
        )

    def arguments(self) -> dict[str, Any]:
        """``create_opportunity``'s keyword arguments, leaving out what is not set."""
        values = attrs.asdict(self, recurse=False)
        return {k: v for k, v in values.items() if v is not None and v not in ("", ())}


#: The fields a row may set, as salesflow's own CSV columns name them.
FIELDS = (
    "title",
    "process",
    "stage",
    "status",
    "customer",
    "customer_type",
    "customer_id",
    "person",
    "value",
    "currency",
    "annual_value",
    "probability",
    "expected_close",
    "owner",
    "description",
    "external_ref",
    "loss_reason",
)

#: The columns salesflow's CSV export writes, in order.
CSV_COLUMNS = (
    "title",
    "process",
    "stage",
    "customer",
    "customer_type",
    "customer_id",
    "value",
    "currency",
    "annual_value",
    "probability",
    "expected_close",
    "owner",
    "description",
    "external_ref",
    "loss_reason",
)

#: Column names of deals exports (Pipedrive, HubSpot and the like), normalised by
#: :func:`_column_key`, and the field each one fills.
ALIASES: Mapping[str, str] = {
    **{field.replace("_", " "): field for field in FIELDS},
    "deal name": "title",
    "deal title": "title",
    "name": "title",
    "amount": "value",
    "deal value": "value",
    "deal amount": "value",
    "currency code": "currency",
    "deal currency": "currency",
    "deal currency code": "currency",
    "deal stage": "stage",
    "deal owner": "owner",
    "owner name": "owner",
    "assigned to": "owner",
    "expected close date": "expected_close",
    "close date": "expected_close",
    "organization": "customer",
    "organization name": "customer",
    "organisation": "customer",
    "company": "customer",
    "company name": "customer",
    "associated company": "customer",
    "contact person": "person",
    "associated contact": "person",
    "deal probability": "probability",
    "annual contract value": "annual_value",
    "acv": "annual_value",
    "id": "external_ref",
    "record id": "external_ref",
    "deal id": "external_ref",
    "external reference": "external_ref",
    "lost reason": "loss_reason",
    "deal status": "status",
}


def _column_key(name: str) -> str:
    """A column name made comparable: lower case, ``Deal - `` dropped, runs of spaces,
    ``_`` and ``-`` made one space."""
    text = name.strip().lstrip("\ufeff").lower()
    text = re.sub(r"^deal\s*-\s*", "", text)
    return re.sub(r"[\s_\-]+", " ", text).strip()


def _stage_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def file_format(path: Path, given: str | None) -> Format:
    """``csv`` or ``json``: as given, or from the file name's extension."""
    name = given or path.suffix.lower().lstrip(".")
    if name == "csv":
        return "csv"
    if name == "json":
        return "json"
    raise UsageError(
        f"{path}: cannot tell the format from the name; name it .csv or .json, "
        "or pass --format csv|json"
    )


# -- reading -----------------------------------------------------------------------


@attrs.frozen
class Row:
    """One row of a file: where it is (``line 7``, ``item 3``), and either the
    arguments of ``create_opportunity`` or why it cannot be imported."""

    where: str
    arguments: Mapping[str, Any] | None = None
    problem: str | None = None


@attrs.frozen
class Rows:
    """What a file holds: its rows, and the columns it has that nothing reads."""

    rows: tuple[Row, ...]
    ignored: tuple[str, ...] = ()


#: An amount with thousands separators: ``1,234,567.50``.
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


#: The fields whose cells are read as they are, blanks at either end included: free
#: text and names, which salesflow stores as given (so that export then import gives
#: them back exactly). A cell of blanks only is an empty one, but for the description.
VERBATIM = frozenset(
    {
        "title",
        "description",
        "owner",
        "external_ref",
        "loss_reason",
        "customer",
        "customer_id",
        "person",
    }
)


#: A cell a spreadsheet would take for a formula: one starting with = + - @, a tab
#: or a carriage return -- after any number of apostrophes, so that the apostrophe
#: added on export is told apart from one the text itself starts with.
_FORMULA = re.compile("'*[=+\\-@\t\r]")


def protect(cell: str) -> str:
    """A CSV cell as export writes it: one a spreadsheet would run as a formula gets
    an apostrophe in front (``=HYPERLINK("x")`` -> ``'=HYPERLINK("x")``), as does one
    that already starts with apostrophes before such a character."""
    return "'" + cell if _FORMULA.match(cell) else cell


def unprotect(cell: str) -> str:
    """A CSV cell as import reads it: the apostrophe :func:`protect` added is taken
    off again, so ``unprotect(protect(text)) == text`` for every text."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


class _Cells:
    """One CSV row's cells by field, and the conversions of each.

    Cells of :data:`VERBATIM` fields are kept as written; the others -- numbers,
    dates, codes, the stage and the status -- are read with blanks trimmed.
    """

    def __init__(self, cells: Mapping[str, str]) -> None:
        self.cells: dict[str, str] = {}
        for field, raw in cells.items():
            if raw is None:
                continue
            value = unprotect(raw) if field in VERBATIM else unprotect(raw.strip())
            if value and (field == "description" or value.strip()):
                self.cells[field] = value

    def text(self, field: str) -> str | None:
        return self.cells.get(field)

    def amount(self, field: str, currency: str) -> Money | None:
        raw = self.text(field)
        if raw is None:
            return None
        amount, code = raw, currency
        if _GROUPED.fullmatch(amount):
            amount = amount.replace(",", "")
        try:
            number = Decimal(amount)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise ValueError(f"{field}: {raw!r} is not an amount such as 1234.50") from None
        try:
            get_currency(code)
        except CurrencyDoesNotExist:
            raise ValueError(f"{field}: {code!r} is not a currency code") from None
        return Money(number, code)

    def day(self, field: str) -> dt.date | None:
        raw = self.text(field)
        if raw is None:
            return None
        try:
            return dt.date.fromisoformat(raw[:10])
        except ValueError:
            raise ValueError(f"{field}: {raw!r} is not a date such as 2026-03-31") from None

    def percent(self, field: str) -> int | None:
        raw = self.text(field)
        if raw is None:
            return None
        text = raw.rstrip("%").strip()
        try:
            number = Decimal(text)
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise ValueError(f"{field}: {raw!r} is not a percentage such as 40") from None
        if "." in text and not raw.endswith("%") and 0 <= number <= 1:
            number *= 100  # a fraction, as HubSpot writes it
        if number != number.to_integral_value():
            raise ValueError(f"{field}: {raw!r} is not a whole percentage")
        return int(number)


class _Reader:
    """Turns rows into ``create_opportunity``'s arguments for one target pipeline."""

    def __init__(
        self,
        app: SalesFlow,
        *,
        process: str | None,
        currency: str | None,
        stages: Mapping[str, str],
    ) -> None:
        self.app = app
        self.process = process
        self.currency = currency
        self.stages = {_stage_key(k): v for k, v in stages.items()}
        self._processes: dict[str, Process] = {}

    def definition(self, key: str) -> Process:
        if key not in self._processes:
            self._processes[key] = self.app.process(key)
        return self._processes[key]

    def stage(self, process: Process, given: str) -> str:
        wanted = self.stages.get(_stage_key(given), given)
        try:
            return process.stage(wanted).key
        except UnknownStage:
            pass
        for stage in process.stages:
            if _stage_key(wanted) in (_stage_key(stage.key), _stage_key(stage.name)):
                return stage.key
        raise ValueError(
            f"stage: {given!r} is not a stage of {process.key!r} (its stages: "
            f"{', '.join(s.name for s in process.stages)}); map it with --map-stage"
        )

    def csv_row(self, cells: _Cells) -> dict[str, Any]:
        process = self.definition(cells.text("process") or self.process or "standard")
        currency = cells.text("currency") or self.currency or process.currency
        currency = currency.upper()
        arguments: dict[str, Any] = {"process": process.key}
        for field in ("title", "owner", "description", "external_ref", "loss_reason"):
            if (text := cells.text(field)) is not None:
                arguments[field] = text
        value = cells.amount("value", currency)
        arguments["value"] = value if value is not None else Money(0, currency)
        if (annual := cells.amount("annual_value", currency)) is not None:
            arguments["annual_value"] = annual
        if (probability := cells.percent("probability")) is not None:
            arguments["probability"] = probability
        if (close := cells.day("expected_close")) is not None:
            arguments["expected_close"] = close
        if (stage := cells.text("stage")) is not None:
            arguments["stage"] = self.stage(process, stage)
        status = (cells.text("status") or "").lower()
        if status in ("won", "lost"):
            kind = StageKind.WON if status == "won" else StageKind.LOST
            current = arguments.get("stage")
            if current is None or process.stage(current).kind is not kind:
                arguments["stage"] = (
                    process.won_stage if kind is StageKind.WON else process.lost_stage
                ).key
        elif status not in ("", "open", Status.OPEN.value):
            raise ValueError(f"status: {status!r} is not open, won or lost")
        customer = _customer(cells)
        if customer is not None:
            arguments["customer"] = customer
        return arguments

    def json_item(self, item: object) -> dict[str, Any]:
        if not isinstance(item, Mapping):
            raise ValueError("expected an object of an opportunity's fields")
        unknown = sorted(str(k) for k in item if k not in attrs.fields_dict(Record))
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        record = converter.structure(item, Record)
        arguments = record.arguments()
        process = self.definition(record.process or self.process or "standard")
        arguments["process"] = process.key
        if record.stage is not None:
            arguments["stage"] = self.stage(process, record.stage)
        return arguments


def _customer(cells: _Cells) -> Individual | Organization | None:
    name = cells.text("customer")
    kind = (cells.text("customer_type") or "").lower()
    if name is None:
        person = cells.text("person")
        if person is None:
            return None
        return Individual(cells.text("customer_id") or person.strip(), person)
    # A customer without an id is known by its name, as the library keeps it: trimmed,
    # so that the rows of one organisation share one customer however they are padded.
    ident = cells.text("customer_id") or name.strip()
    if kind in ("", "organization", "organisation", "company"):
        return Organization(ident, name)
    if kind in ("individual", "person"):
        return Individual(ident, name)
    raise ValueError(f"customer_type: {kind!r} is not organization or individual")


def _columns(header: Sequence[str], mapping: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Which column fills which field, and the columns that fill none."""
    by_key = {_column_key(name): name for name in header}
    used: dict[str, str] = {}
    for column, field in mapping.items():
        if _column_key(column) not in by_key:
            raise TransferError(
                f"--map {column}={field}: the file has no column {column!r} "
                f"(its columns: {', '.join(header)})"
            )
        used[by_key[_column_key(column)]] = field
    for name in header:
        if name in used:
            continue
        alias = ALIASES.get(_column_key(name))
        if alias is not None and alias not in used.values():
            used[name] = alias
    ignored = [name for name in header if name not in used and name.strip()]
    return used, ignored


def read_rows(
    path: Path,
    form: Format,
    app: SalesFlow,
    *,
    mapping: Mapping[str, str],
    process: str | None,
    currency: str | None,
    stages: Mapping[str, str],
) -> Rows:
    """Every row of the file, read or refused; ``TransferError`` if the file as a
    whole cannot be read."""
    reader = _Reader(app, process=process, currency=currency, stages=stages)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TransferError(f"{path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise TransferError(f"{path}: line {line} is not UTF-8 text") from None
    if form == "json":
        return _json_rows(path, text, reader)
    return _csv_rows(path, text, reader, mapping)


#: How the library names a record it was about to create, in English or Norwegian:
#: the id means nothing to the reader of an import report, the field after it does.
_NEW_RECORD = re.compile(r"^(?:Opportunity '[^']*'|Muligheten «[^»]*»)(?:\.|: )?")


def problem(error: BaseException) -> str:
    """One line saying why a row was refused."""
    if isinstance(error, SalesflowError | ValueError):
        return _NEW_RECORD.sub("", str(error))
    return describe_error(error)


def _csv_rows(path: Path, text: str, reader: _Reader, mapping: Mapping[str, str]) -> Rows:
    if not text.strip():
        raise TransferError(f"{path}: the file is empty")
    first = text.splitlines()[0]
    delimiter = max(",;\t", key=first.count)  # the header's separator; "," on a tie
    lines = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(lines)
    except csv.Error as error:
        raise TransferError(f"{path}: line 1 is not CSV: {error}") from None
    _no_twins(path, header)
    used, ignored = _columns(header, mapping)
    fields = set(used.values())
    if not fields & {"title", "customer", "person"}:
        raise TransferError(
            f"{path}: no column gives a title or a customer (columns: {', '.join(header)}); "
            "name one with --map COLUMN=title"
        )
    rows: list[Row] = []
    start = lines.line_num + 1
    while True:
        try:
            values = next(lines)
        except StopIteration:
            break
        except csv.Error as error:
            raise TransferError(f"{path}: line {start} is not CSV: {error}") from None
        where = f"line {start}"
        start = lines.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            rows.append(
                Row(where, problem=f"{len(values)} cells, but the header has {len(header)}")
            )
            continue
        cells = _Cells(
            {used[name]: value for name, value in zip(header, values, strict=False) if name in used}
        )
        try:
            rows.append(Row(where, arguments=reader.csv_row(cells)))
        except (ValueError, SalesflowError) as error:
            rows.append(Row(where, problem=problem(error)))
    return Rows(tuple(rows), tuple(ignored))


def _no_twins(path: Path, header: Sequence[str]) -> None:
    """Refuse a header that names one column twice: which of the two to read would
    be a guess. Names are compared as columns are matched (without case, spaces,
    ``_``, ``-`` or a leading ``Deal - ``); unnamed columns may repeat."""
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        key = _column_key(name)
        if not key:
            continue
        if key not in seen:
            seen[key] = number
            continue
        first = seen[key]
        if header[first - 1] == name:
            why = f"columns {first} and {number} are both named {name!r}"
        else:
            earlier = header[first - 1]
            why = f"columns {first} ({earlier!r}) and {number} ({name!r}) read as one column"
        raise TransferError(f"{path}: line 1: {why}; rename or remove one of them")


def _json_rows(path: Path, text: str, reader: _Reader) -> Rows:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TransferError(f"{path}: line {error.lineno} is not JSON: {error.msg}") from None
    except RecursionError:
        # Python's parser gives up on arrays or objects nested deeper than its
        # recursion limit; no opportunity file nests more than a few levels.
        raise TransferError(
            f"{path}: the JSON nests arrays or objects too deeply to be an opportunities file"
        ) from None
    items = data.get("opportunities") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise TransferError(
            f'{path}: expected a list of opportunities, or an object whose "opportunities" is one'
        )
    rows: list[Row] = []
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        try:
            rows.append(Row(where, arguments=reader.json_item(item)))
        except DECODE_ERRORS as error:
            rows.append(Row(where, problem=problem(error)))
    return Rows(tuple(rows))


# -- writing -----------------------------------------------------------------------


def _all(app: SalesFlow, process: str | None, page: int = 1000) -> Iterator[Opportunity]:
    offset = 0
    while True:
        found = app.search(process=process, order_by="created_at", limit=page, offset=offset)
        yield from found.items
        offset += len(found.items)
        if not found.items or offset >= found.total:
            return


def _csv_cells(record: Record) -> dict[str, str]:
    def amount(value: Money | None) -> str:
        return "" if value is None else str(value.amount)

    customer = record.customer
    return {
        "title": record.title or "",
        "process": record.process or "",
        "stage": record.stage or "",
        "customer": customer.name if customer is not None else "",
        "customer_type": (
            ""
            if customer is None
            else "individual"
            if isinstance(customer, Individual)
            else "organization"
        ),
        "customer_id": customer.id if customer is not None else "",
        "value": amount(record.value),
        "currency": record.value.currency.code if record.value is not None else "",
        "annual_value": amount(record.annual_value),
        "probability": "" if record.probability is None else str(record.probability),
        "expected_close": ""
        if record.expected_close is None
        else record.expected_close.isoformat(),
        "owner": record.owner or "",
        "description": record.description,
        "external_ref": record.external_ref or "",
        "loss_reason": record.loss_reason or "",
    }


def export_file(app: SalesFlow, path: Path, form: Format, *, process: str | None) -> int:
    """Write every opportunity (of ``process``, if given) to ``path``; how many.

    The file is written beside its final name and moved there when complete, so a
    failed export leaves nothing behind (and an older file as it was).
    """
    if process is not None:
        app.process(process)  # NotFound before anything is written
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise TransferError(f"{path}: the folder {directory} does not exist")
    count = 0
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            if form == "csv":
                writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
                writer.writeheader()
                for opportunity in _all(app, process):
                    cells = _csv_cells(Record.of(opportunity))
                    writer.writerow({k: protect(v) for k, v in cells.items()})
                    count += 1
            else:
                out.write('{"opportunities": [')
                for opportunity in _all(app, process):
                    data = converter.unstructure(Record.of(opportunity))
                    out.write(("," if count else "") + "\n  ")
                    out.write(json.dumps(data, ensure_ascii=False))
                    count += 1
                out.write("\n]}\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
