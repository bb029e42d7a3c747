"""Norwegian Bokmål: the catalog shipped in the package, the board in Norwegian, money
and dates as the locale writes them."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from salesflow import locale as catalogs
from salesflow.cli import _catalog
from salesflow.cli._text import Texts, environment_locale
from tests.cli.conftest import Run

ROOT = Path(__file__).resolve().parents[2]
PO = catalogs.DIRECTORY / "nb" / "LC_MESSAGES" / "salesflow.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)}


def test_the_board_in_norwegian(run: Run, demo: Path) -> None:
    done = run("--locale", "nb_NO", "board", "--db", str(demo))
    assert done.code == 0, done.err
    out = done.out.replace("\xa0", " ").replace("\u202f", " ")
    lines = out.splitlines()
    assert lines[0].startswith("Standard salgsprosess")
    assert lines[0].endswith("per 2. mars 2026")
    for stage in (
        "Lead",
        "Kvalifisering",
        "Forslag",
        "Forhandling",
        "Lukket-Vunnet",
        "Lukket-Tapt",
    ):
        assert any(line.startswith(f"{stage} (") for line in lines), stage
    qualification = next(line for line in lines if line.startswith("Kvalifisering"))
    assert qualification.split() == [
        "Kvalifisering",
        "(30",
        "%)",
        "1",
        "mulighet",
        "totalt",
        "18",
        "000,00",
        "USD",
        "vektet",
        "5",
        "400,00",
        "USD",
    ]
    assert "Åpne trinn" in out
    assert lines[-1] == "[!] forfalt  [*] i dag  [>] kommende  [-] ingen aktivitet planlagt"
    assert all(len(line) <= 80 for line in done.lines)


def test_the_environment_chooses_the_language(
    run: Run, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "nb_NO.UTF-8")
    assert "Kvalifisering" in run("board", "--db", str(demo)).out
    monkeypatch.setenv("LC_ALL", "C")
    assert "Qualification" in run("board", "--db", str(demo)).out


def test_the_commands_own_errors_speak_norwegian(run: Run, demo: Path, tmp_path: Path) -> None:
    missing = run("--locale", "nb_NO", "history", "nope", "--db", str(demo))
    assert missing.code == 1
    assert missing.err == (
        "salesflow: error: ingen mulighet har id-en «nope» eller «nope» i tittelen\n"
    )
    nothing = run("--locale", "nb_NO", "board", "--db", str(tmp_path / "none.db"))
    assert nothing.code == 1
    assert nothing.err.startswith(f"salesflow: error: ingen pipeline i {tmp_path / 'none.db'}: ")
    assert not (tmp_path / "none.db").exists()


def test_no_no_is_taken_as_bokmal(run: Run, demo: Path) -> None:
    board = run("--locale", "no_NO", "board", "--db", str(demo))
    assert board.code == 0, board.err
    assert "Kvalifisering" in board.out


def test_other_commands_speak_norwegian_too(run: Run, demo: Path) -> None:
    history = run("--locale", "nb", "history", "Contoso", "--db", str(demo))
    assert history.lines[0] == "Historikk for Contoso rollout (nå i Tapt, Tapt)"
    assert "Trinn endret" in history.out
    assert "Behovsverksted -> Tapt; årsak «price»" in history.out
    activities = run("--locale", "nb_NO", "activities", "--due", "--db", str(demo))
    assert "Samtale: Introductory call - Fabrikam pilot" in activities.out


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "en_US"),
        ({"LANG": "C.UTF-8"}, "en_US"),
        ({"LANG": "POSIX"}, "en_US"),
        ({"LANG": "nb_NO.UTF-8"}, "nb_NO"),
        ({"LANG": "en_GB.UTF-8", "LC_MESSAGES": "nb_NO"}, "nb_NO"),
        ({"LANG": "nb_NO", "LC_ALL": "de_DE.UTF-8"}, "de_DE"),
        ({"LANG": "gibberish!!"}, "en_US"),
    ],
)
def test_environment_locale(environ: dict[str, str], expected: str) -> None:
    assert environment_locale(environ) == expected


def test_a_locale_without_catalog_keeps_english_texts_with_its_formats() -> None:
    texts = Texts("de_DE")
    assert texts._("Open stages") == "Open stages"
    assert texts.stage("Qualification") == "Qualification"
    from salesflow import Money

    assert texts.money(Money("1234.5", "EUR")).replace("\xa0", " ") == "1.234,50 €"


def test_without_babel_money_and_dates_are_plain() -> None:
    import datetime as dt

    from salesflow import Money

    texts = Texts("nb_NO")
    texts.babel = False
    assert texts.money(Money("48000", "USD")) == "48,000.00 USD"
    assert texts.money(Money("5", "JPY")) == "5 JPY"
    assert texts.date(dt.date(2026, 3, 2)) == "2026-03-02"
    assert texts.stage("Proposal") == "Forslag"  # gettext needs no Babel


def test_every_text_of_the_code_is_translated() -> None:
    """Each text marked in the command line's code, and each name it translates by
    name, has a Norwegian translation with the same placeholders."""
    with PO.open("rb") as file:
        catalog = read_po(file)
    wanted: set[tuple[str | None, str]] = set(_catalog.names())
    for _, _, message, _, context in extract_from_dir(
        str(ROOT / "src" / "salesflow" / "cli"),
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
    ):
        singular = message[0] if isinstance(message, tuple | list) else message
        wanted.add((context, singular))
    assert len(wanted) > 100
    for context, text in sorted(wanted, key=repr):
        entry = catalog.get(text, context=context)
        assert entry is not None, f"no Norwegian for {text!r} ({context})"
        strings = (
            [str(s) for s in entry.string]
            if isinstance(entry.string, tuple | list)
            else [str(entry.string)]
        )
        assert all(strings), f"empty Norwegian for {text!r}"
        for string in strings:
            assert placeholders(string) == placeholders(text), text


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{[^}]*\}", text))


def test_the_compiled_catalog_matches_its_source() -> None:
    """salesflow.mo is salesflow.po compiled: ``pybabel compile`` was run after the
    last edit."""
    with PO.open("rb") as file:
        source = read_po(file)
    with MO.open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    for message in source:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            singular, plural = message.id
            forms = list(message.string or ())
            assert compiled.ngettext(singular, plural, 1) == forms[0]
            assert compiled.ngettext(singular, plural, 2) == forms[1]
        elif message.context:
            assert compiled.pgettext(message.context, str(message.id)) == message.string
        else:
            assert compiled.gettext(str(message.id)) == message.string
    assert len(compiled._catalog) - 1 == sum(  # type: ignore[attr-defined]
        2 if isinstance(m.id, tuple) else 1 for m in source if m.id
    )


def test_the_catalogs_are_found_by_locale() -> None:
    assert catalogs.languages() == ("nb",)
    assert catalogs.translation("nb_NO").gettext("Open stages") == "Åpne trinn"
    assert catalogs.translation("nb").pgettext("stage", "Closed-Won") == "Lukket-Vunnet"
    assert catalogs.translation("fr_FR").gettext("Open stages") == "Open stages"


@pytest.mark.parametrize("babel", [True, False])
def test_money_is_rounded_half_up_as_the_reports_round(babel: bool) -> None:
    from salesflow import Money

    texts = Texts("en_US")
    texts.babel = babel
    # Half to even would write 10.02 and 0 (JPY 0.5), the reports 10.03 and 1.
    assert "10.03" in texts.money(Money("10.025", "USD"))
    assert "10.02" not in texts.money(Money("10.025", "USD"))
    assert texts.money(Money("0.5", "JPY")).replace("\xa0", " ").strip("¥ JPY") == "1"
