"""``salesflow --locale nb_NO``: what the library says -- the engine's notices and the
reasons a row is rejected -- comes out in Norwegian too."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run


def test_the_demo_tells_the_engines_notices_in_norwegian(run: Run) -> None:
    done = run("--locale", "nb_NO", "demo", "--timezone", "UTC")
    assert done.code == 0, done.err
    for said in (
        "Sendte «Send the company brochure».",
        "Inviterte kunden til Customer seminar.",
        "Flyttet til Behovsverksted.",
        "Avlyste 2 planlagte aktiviteter i Behovsverksted.",
        "Ble værende i Tilbud: Kontrakt krever at expected_close er fylt ut.",
    ):
        assert said in done.out, said
    assert "Moved to" not in done.out


def test_rejected_rows_give_the_librarys_reason_in_norwegian(run: Run, tmp_path: Path) -> None:
    rows = tmp_path / "deals.csv"
    rows.write_text("title,value,currency\nGood,5,USD\nBad,-5,USD\n", encoding="utf-8")
    norwegian = run("--locale", "nb_NO", "import", str(rows), "--db", "nb.db")
    assert norwegian.code == 1
    assert "line 3: value: kan ikke være negativ, fikk -5" in norwegian.err
    english = run("import", str(rows), "--db", "en.db")
    assert "line 3: value: must not be negative, got -5" in english.err
