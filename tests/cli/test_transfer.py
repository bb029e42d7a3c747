"""``salesflow import`` and ``salesflow export``: CSV and JSON, round trips, deals
exports of other CRMs, rejected rows, bad files and bad arguments."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from salesflow import (
    FixedClock,
    Individual,
    Money,
    Organization,
    Process,
    Related,
    Stage,
    StageKind,
    Status,
)
from salesflow.cli._transfer import Record
from tests.cli.conftest import Run, count, open_app


@pytest.fixture
def source(tmp_path: Path, clock: FixedClock) -> Path:
    """A pipeline with every field an opportunity file carries."""
    path = tmp_path / "source.db"
    app = open_app(path, clock)
    try:
        app.define_process(
            Process(
                "nordic",
                "Nordic sales",
                (
                    Stage("new", "New", 10),
                    Stage("offer", "Offer", 50),
                    Stage("won", "Won", 100, StageKind.WON),
                    Stage("lost", "Lost", 0, StageKind.LOST),
                ),
                currency="NOK",
                loss_reasons=("price", "timing"),
            )
        )
        app.create_opportunity(
            title='Full house, "quoted"\nand two lines',
            stage="proposal",
            customer=Organization("org-1", "Acme; Ltd"),
            value=Money("1234.56", "USD"),
            annual_value=Money("999.99", "USD"),
            probability=42,
            expected_close=dt.date(2026, 5, 31),
            owner="ann",
            description="Line one\nline two, with a comma",
            external_ref="CRM-1",
        )
        app.create_opportunity(
            customer=Organization("org-2", "Untitled Org"), value=Money("0", "USD")
        )
        app.create_opportunity(
            title="Person deal",
            customer=Individual("p-1", "Kari Nordmann"),
            process="nordic",
            stage="offer",
            value=Money("50000", "NOK"),
            owner="kari",
        )
        app.create_opportunity(
            title="Lost one", process="nordic", stage="lost", loss_reason="timing"
        )
        won = app.create_opportunity(title="Won one", value=Money("10", "JPY")).opportunity
        app.mark_won(won.id)
    finally:
        app.repository.close()
    return path


def records(path: Path, clock: FixedClock) -> list[Record]:
    app = open_app(path, clock)
    try:
        found = app.search(order_by="title", limit=100).items
        return sorted((Record.of(o) for o in found), key=repr)
    finally:
        app.repository.close()


@pytest.mark.parametrize("suffix", ["csv", "json"])
def test_export_then_import_gives_the_same_opportunities(
    run: Run, source: Path, tmp_path: Path, clock: FixedClock, suffix: str
) -> None:
    first = run("--db", str(source), "export", f"deals.{suffix}")
    assert first.code == 0, first.err
    assert first.out == f"Exported 5 opportunities to deals.{suffix}.\n"
    # The target needs the custom process too.
    origin = open_app(source, clock)
    app = open_app(tmp_path / "target.db", clock)
    try:
        app.define_process(origin.process("nordic"))
    finally:
        app.repository.close()
        origin.repository.close()
    imported = run("--db", "target.db", "import", f"deals.{suffix}")
    assert imported.code == 0, imported.err
    assert imported.out == "Imported 5 of 5 rows; 0 rejected.\n"
    assert records(tmp_path / "target.db", clock) == records(source, clock)
    again = run("--db", "target.db", "export", f"again.{suffix}")
    assert again.code == 0
    assert rows(tmp_path / f"again.{suffix}") == rows(tmp_path / f"deals.{suffix}")


def rows(path: Path) -> list[str]:
    """A file's rows (the order of opportunities created at one moment may vary)."""
    if path.suffix == ".csv":
        with path.open(newline="") as file:
            return sorted(repr(row) for row in csv.reader(file))
    return sorted(repr(item) for item in json.loads(path.read_text())["opportunities"])


def test_json_keeps_related_records(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        app.create_opportunity(
            title="With contacts",
            related=(Related("contact", "c-1", "Ola"), Related("candidate", "c-2", "Kari")),
        )
    finally:
        app.repository.close()
    assert run("export", "out.json").code == 0
    data = json.loads((tmp_path / "out.json").read_text())
    item = data["opportunities"][0]
    assert item["related"] == [
        {"role": "contact", "id": "c-1", "name": "Ola"},
        {"role": "candidate", "id": "c-2", "name": "Kari"},
    ]
    assert item["value"] == {"amount": "0", "currency": "USD"}
    assert run("--db", "copy.db", "import", "out.json").code == 0
    copy = open_app(tmp_path / "copy.db", clock)
    try:
        (deal,) = copy.search().items
        assert deal.related == (
            Related("contact", "c-1", "Ola"),
            Related("candidate", "c-2", "Kari"),
        )
    finally:
        copy.repository.close()


PIPEDRIVE = """\
Deal - ID,Deal - Title,Deal - Value,Deal - Currency,Deal - Stage,Deal - Owner,\
Deal - Expected close date,Deal - Organization,Deal - Status,Deal - Lost reason,Deal - Label
17,Acme licences,"1,250.50",EUR,Proposal,Jane Doe,2026-04-30,Acme Ltd,open,,hot
18,Globex pilot,800,EUR,Qualified,John Roe,,Globex,open,,
19,Initech seats,300,EUR,Proposal,Jane Doe,,Initech,lost,price,
20,Umbrella deal,5000,EUR,Negotiation,John Roe,2026-03-15,Umbrella,won,,
"""

HUBSPOT = """\
Record ID,Deal Name,Amount,Deal Stage,Deal owner,Close Date,Pipeline,Associated Company
901,Hooli rollout,12000,appointmentscheduled,Gavin,2026-06-01 00:00,Sales Pipeline,Hooli
902,Pied Piper,3000,closedwon,Richard,2026-02-01 10:00,Sales Pipeline,Pied Piper
"""


def test_a_pipedrive_export(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    (tmp_path / "pipedrive.csv").write_text(PIPEDRIVE)
    done = run("import", "pipedrive.csv", "--map-stage", "Qualified=qualification")
    assert done.code == 0, done.err
    assert done.out == "Imported 4 of 4 rows; 0 rejected.\n"
    assert "Not read" in done.err
    assert "Deal - Label" in done.err
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        deals = {o.display_title: o for o in app.search(limit=10).items}
        acme = deals["Acme licences"]
        assert acme.value == Money("1250.50", "EUR")
        assert acme.stage == "proposal"
        assert acme.owner == "Jane Doe"
        assert acme.expected_close == dt.date(2026, 4, 30)
        assert acme.customer == Organization("Acme Ltd", "Acme Ltd")
        assert acme.external_ref == "17"
        assert deals["Globex pilot"].stage == "qualification"
        assert deals["Initech seats"].status is Status.LOST
        assert deals["Initech seats"].loss_reason == "price"
        assert deals["Umbrella deal"].status is Status.WON
    finally:
        app.repository.close()


def test_a_hubspot_export(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    (tmp_path / "hubspot.csv").write_text(HUBSPOT)
    done = run(
        "import", "hubspot.csv", "--currency", "usd", "--map-stage", "appointmentscheduled=lead"
    )
    assert done.code == 0, done.err
    assert "Pipeline" in done.err  # not read: a HubSpot pipeline is not a process
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        deals = {o.display_title: o for o in app.search(limit=10).items}
        assert deals["Hooli rollout"].value == Money("12000", "USD")
        assert deals["Hooli rollout"].stage == "lead"
        assert deals["Hooli rollout"].expected_close == dt.date(2026, 6, 1)
        assert deals["Pied Piper"].stage == "won"  # "closedwon" is Closed-Won
        assert deals["Pied Piper"].owner == "Richard"
    finally:
        app.repository.close()


def test_map_reads_other_column_names(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    (tmp_path / "mine.csv").write_text(
        "Opportunity;Worth;Seller\nBig one;99,5;x\n".replace("99,5", "99.5")
    )
    done = run(
        "import",
        "mine.csv",
        "--map",
        "Opportunity=title",
        "--map",
        "Worth=value",
        "--map",
        "Seller=owner",
        "--process",
        "simple",
        "--currency",
        "GBP",
    )
    assert done.code == 0, done.err
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        (deal,) = app.search().items
        assert (deal.title, deal.value, deal.owner, deal.process) == (
            "Big one",
            Money("99.5", "GBP"),
            "x",
            "simple",
        )
    finally:
        app.repository.close()


BAD_ROWS = """\
title,value,currency,stage,expected_close,probability
Good one,100,USD,lead,2026-04-01,
Bad amount,lots,USD,lead,,
"Spans
two lines",50,USD,lead,,
Bad date,10,USD,lead,31/04/2026,
Bad stage,10,USD,Heaven,,
Negative,-5,USD,lead,,
,10,USD,lead,,
Bad currency,10,XYZ,lead,,
Too many,10,USD,lead,,,,
Bad probability,10,USD,lead,,150
Last good,20,USD,proposal,,30%
"""


def test_rejected_rows_are_reported_and_the_others_imported(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    (tmp_path / "rows.csv").write_text(BAD_ROWS)
    done = run("import", "rows.csv")
    assert done.code == 1
    assert done.out == "Imported 3 of 11 rows; 8 rejected.\n"
    problems = done.err.splitlines()
    assert [p.split(": ")[1] for p in problems] == [
        "line 3",
        "line 6",
        "line 7",
        "line 8",
        "line 9",
        "line 10",
        "line 11",
        "line 12",
    ]
    assert "value: 'lots' is not an amount" in problems[0]
    assert "expected_close: '31/04/2026' is not a date" in problems[1]
    assert "'Heaven' is not a stage of 'standard'" in problems[2]
    assert "negative" in problems[3].lower()
    assert "title" in problems[4].lower()
    assert "'XYZ' is not a currency code" in problems[5]
    assert "8 cells, but the header has 6" in problems[6]
    assert "probability" in problems[7].lower()
    app = open_app(tmp_path / "salesflow.db", clock)
    try:
        found = {o.title: o for o in app.search().items}
        assert set(found) == {"Good one", "Spans\ntwo lines", "Last good"}
        assert found["Last good"].probability == 30
    finally:
        app.repository.close()


def test_json_rows_are_reported_by_item(run: Run, tmp_path: Path) -> None:
    items = [
        {"title": "Fine", "value": {"amount": "5", "currency": "EUR"}},
        {"title": "Bad money", "value": {"amount": "x", "currency": "EUR"}},
        {"title": "Unknown field", "colour": "red"},
        "not an object",
        {"title": "Bad stage", "stage": "nowhere"},
    ]
    (tmp_path / "in.json").write_text(json.dumps(items))
    done = run("import", "in.json")
    assert done.code == 1
    assert done.out == "Imported 1 of 5 rows; 4 rejected.\n"
    lines = done.err.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["item 2", "item 3", "item 4", "item 5"]
    assert "unknown fields ['colour']" in lines[1]
    assert count(tmp_path / "salesflow.db") == 1


def test_a_long_import_shows_progress(run: Run, tmp_path: Path) -> None:
    rows = "\n".join(f"Deal {n},{n}" for n in range(25))
    (tmp_path / "many.csv").write_text(f"title,value\n{rows}\n")
    done = run("import", "many.csv", "--batch-size", "10")
    assert done.code == 0
    progress = [line for line in done.err.splitlines() if "Importing" in line]
    assert [p.split("] ")[1] for p in progress] == [
        "Importing: 10 of 25 rows (40%)",
        "Importing: 20 of 25 rows (80%)",
        "Importing: 25 of 25 rows (100%)",
    ]
    assert count(tmp_path / "salesflow.db") == 25
    assert "Importing" not in run("import", "many.csv").err  # one batch: no progress


def test_dry_run_writes_nothing(run: Run, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(BAD_ROWS)
    done = run("import", "rows.csv", "--dry-run")
    assert done.code == 1
    assert done.out == "Checked 11 rows: 3 would be imported, 8 rejected.\n"
    assert not (tmp_path / "salesflow.db").exists()
    (tmp_path / "good.csv").write_text("title\nA\n")
    assert run("import", "good.csv").code == 0
    assert run("import", "good.csv", "--dry-run").code == 0
    assert count(tmp_path / "salesflow.db") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"title,value\nAcme,1\n\xff\xfe bad bytes\n", "line 3 is not UTF-8 text"),
        (b"colour,size\nred,2\n", "no column gives a title or a customer"),
        (b'title\n"unclosed\n', "is not CSV"),
        (b"title,title,value\nA,B,1\n", "line 1: columns 1 and 2 are both named 'title'"),
        (
            b"value,Title,owner,title\n1,A,ann,B\n",
            "columns 2 ('Title') and 4 ('title') read as one column",
        ),
        (b"Deal - Title;Title\nA;B\n", "columns 1 ('Deal - Title') and 2 ('Title')"),
        (b"title,colour,colour\nA,red,blue\n", "columns 2 and 3 are both named 'colour'"),
    ],
)
def test_a_bad_csv_file_writes_nothing(
    run: Run, tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "bad.csv").write_bytes(content)
    done = run("import", "bad.csv")
    assert done.code == 1
    assert message in done.err
    assert done.err.count("\n") == 1
    assert not (tmp_path / "salesflow.db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"title": "a"},', "line 1 is not JSON"),
        ('{"deals": []}', "expected a list of opportunities"),
        ('{"opportunities": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests arrays"),
        ("[" + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "]", "or objects too deeply"),
    ],
)
def test_a_bad_json_file_leaves_a_pipeline_as_it_was(
    run: Run, tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "good.csv").write_text("title\nA\n")
    assert run("import", "good.csv").code == 0
    (tmp_path / "bad.json").write_text(content)
    done = run("import", "bad.json")
    assert done.code == 1
    assert message in done.err
    assert done.err.count("\n") == 1
    assert "internal error" not in done.err
    assert count(tmp_path / "salesflow.db") == 1
    fresh = run("--db", "new.db", "import", "bad.json")
    assert (fresh.code, fresh.err) == (1, done.err)
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("import",), "the following arguments are required: FILE"),
        (("import", "deals.xlsx"), "cannot tell the format"),
        (("import", "deals.csv", "--format", "xml"), "invalid choice"),
        (("import", "deals.csv", "--map", "title"), "expected COLUMN=FIELD"),
        (("import", "deals.csv", "--map", "Name=colour"), "'colour' is not a field"),
        (("import", "deals.csv", "--map-stage", "=lead"), "expected NAME=STAGE"),
        (("import", "deals.csv", "--batch-size", "0"), "not between 1 and 100000"),
    ],
)
def test_bad_import_arguments(
    run: Run, tmp_path: Path, argv: tuple[str, ...], message: str
) -> None:
    (tmp_path / "deals.csv").write_text("title\nA\n")
    done = run(*argv)
    assert done.code == 2
    assert message in done.err
    assert done.err.count("\n") == 1
    assert not (tmp_path / "salesflow.db").exists()


def test_import_problems_that_are_not_usage(run: Run, tmp_path: Path) -> None:
    assert "no such file" in run("import", "missing.csv").err
    (tmp_path / "deals.csv").write_text("title\nA\n")
    done = run("import", "deals.csv", "--map", "Nope=title")
    assert done.code == 1
    assert "the file has no column 'Nope'" in done.err
    done = run("import", "deals.csv", "--process", "unknown")
    assert done.code == 1
    assert "Process 'unknown' is not defined" in done.err
    assert not (tmp_path / "salesflow.db").exists()


def test_export_writes_nothing_when_it_fails(run: Run, source: Path, tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("keep me")
    done = run("--db", str(source), "export", "old.csv", "--process", "unknown")
    assert done.code == 1
    assert (tmp_path / "old.csv").read_text() == "keep me"
    assert run("--db", str(source), "export", "deals.txt").code == 2
    assert run("--db", str(source), "export", "nowhere/deals.csv").code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv", "source.db"]
    assert run("--db", "missing.db", "export", "x.csv").code == 1
    assert not (tmp_path / "x.csv").exists()


def test_export_of_one_process(run: Run, source: Path, tmp_path: Path) -> None:
    done = run("--db", str(source), "export", "nordic.csv", "--process", "nordic")
    assert done.out == "Exported 2 opportunities to nordic.csv.\n"
    text = (tmp_path / "nordic.csv").read_text()
    assert "Person deal" in text
    assert "Full house" not in text
    assert text.splitlines()[0] == (
        "title,process,stage,customer,customer_type,customer_id,value,currency,"
        "annual_value,probability,expected_close,owner,description,external_ref,loss_reason"
    )


def test_free_text_keeps_its_blanks_through_a_csv_round_trip(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "source.db", clock)
    try:
        app.create_opportunity(
            title="Acme",
            customer=Organization(" org-1", "Acme Ltd "),
            owner=" ann",
            description="  indented\n",
            external_ref=" CRM-1 ",
            stage="lost",
            loss_reason="price  ",
        )
    finally:
        app.repository.close()
    assert run("--db", "source.db", "export", "deals.csv").code == 0
    done = run("--db", "target.db", "import", "deals.csv")
    assert done.code == 0, done.err
    (copy,) = records(tmp_path / "target.db", clock)
    # Names (an owner, a customer's name) and loss reasons are kept without the blanks
    # around them; free text and references as given.
    assert (copy.owner, copy.description) == ("ann", "  indented\n")
    assert (copy.external_ref, copy.loss_reason) == (" CRM-1 ", "price")
    assert copy.customer == Organization(" org-1", "Acme Ltd")
    assert records(tmp_path / "target.db", clock) == records(tmp_path / "source.db", clock)


def test_numbers_codes_and_stages_are_read_trimmed(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    (tmp_path / "deals.csv").write_text(
        "title,value,currency,stage,probability,expected_close,status,loss_reason\n"
        "A, 1200.50 , usd ,  Proposal , 40% , 2026-05-31 ,,\n"
        "B,1,USD,,,, lost ,   \n"
    )
    done = run("import", "deals.csv")
    assert done.code == 0, done.err
    a, b = sorted(records(tmp_path / "salesflow.db", clock), key=lambda r: r.title or "")
    assert (a.value, a.stage, a.probability) == (Money("1200.50", "USD"), "proposal", 40)
    assert a.expected_close == dt.date(2026, 5, 31)
    assert (b.stage, b.loss_reason) == ("lost", None)  # a cell of blanks is empty


def test_cells_a_spreadsheet_would_run_are_protected_and_come_back(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    app = open_app(tmp_path / "source.db", clock)
    try:
        for title, owner, reference in (
            ('=HYPERLINK("http://evil","x")', "+ann", "@SUM(A1)"),
            ("-2+3", "-bob", "\rCR"),  # an owner is kept without blanks around it
            ("'=already quoted", "'plain", "a=b"),
        ):
            app.create_opportunity(title=title, owner=owner, external_ref=reference)
    finally:
        app.repository.close()
    assert run("--db", "source.db", "export", "deals.csv").code == 0
    with (tmp_path / "deals.csv").open(newline="") as file:
        cells = list(csv.DictReader(file))
    written = {(row["title"], row["owner"], row["external_ref"]) for row in cells}
    assert written == {
        ('\'=HYPERLINK("http://evil","x")', "'+ann", "'@SUM(A1)"),
        ("'-2+3", "'-bob", "'\rCR"),
        ("''=already quoted", "'plain", "a=b"),
    }
    for row in cells:
        assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())
    done = run("--db", "target.db", "import", "deals.csv")
    assert done.code == 0, done.err
    assert records(tmp_path / "target.db", clock) == records(tmp_path / "source.db", clock)


def test_unnamed_columns_may_repeat(run: Run, tmp_path: Path, clock: FixedClock) -> None:
    (tmp_path / "deals.csv").write_text("title,value,,\nA,5,,\n")
    done = run("import", "deals.csv")
    assert done.code == 0, done.err
    assert [r.value for r in records(tmp_path / "salesflow.db", clock)] == [Money("5", "USD")]


def test_the_rows_of_one_organisation_share_one_customer_however_padded(
    run: Run, tmp_path: Path, clock: FixedClock
) -> None:
    (tmp_path / "deals.csv").write_text(
        "title,customer,value,currency\n"
        "One,Acme AS,1,USD\n"
        "Two,Acme AS ,2,USD\n"
        "Three, Acme AS,3,USD\n",
        encoding="utf-8",
    )
    done = run("--db", "pipeline.db", "import", "deals.csv")
    assert done.code == 0, done.err
    app = open_app(tmp_path / "pipeline.db", clock)
    try:
        assert app.deal_counts(customer_id="Acme AS").open == 3
        customers = {o.customer for o in app.search().items}
        assert customers == {Organization("Acme AS", "Acme AS")}
    finally:
        app.repository.close()
