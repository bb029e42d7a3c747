"""``SalesFlow(locale=...)``: notices and error messages in Norwegian Bokmål, English
unchanged by default, and a catalog that has every template the library uses.

Translation happens in the facade, whatever the storage, so these tests run on the
in-memory repository only.
"""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import re
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from salesflow import (
    ActionKind,
    CancelPolicy,
    FixedClock,
    LineItem,
    Money,
    Opportunity,
    Process,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
    StaticRates,
    Status,
)
from salesflow import locale as catalogs
from salesflow.errors import (
    AlreadyAssigned,
    ConfirmationRequired,
    CurrencyMismatch,
    LossReasonRequired,
    MissingExchangeRate,
    NotFound,
    OutcomeRequired,
    PermissionDenied,
    SalesflowError,
    TransitionNotAllowed,
    UnknownStage,
    ValidationError,
)
from salesflow.messages import Message, Term
from tests.conftest import START

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "salesflow"
PO = catalogs.DIRECTORY / "nb" / "LC_MESSAGES" / "salesflow.po"

#: A process with everything the engine's notices talk about: an activity booked on
#: entry, a required manual action that advances the deal, a gate, ASK, loss reasons.
CONSULTING = Process(
    "consulting",
    "Consulting",
    (
        Stage(
            "lead",
            "Lead",
            10,
            actions=(
                StageAction("call", "Introductory call", ActionKind.CALENDAR, auto_create=True),
            ),
        ),
        Stage(
            "qualification",
            "Qualification",
            30,
            actions=(StageAction("scope", "Agree on the scope", ActionKind.MANUAL),),
        ),
        Stage("proposal", "Proposal", 50, requires=("expected_close",)),
        Stage("won", "Closed-Won", 100, StageKind.WON),
        Stage("lost", "Closed-Lost", 0, StageKind.LOST),
    ),
    auto_advance=True,
    cancel_pending=CancelPolicy.ASK,
    allow_backward=False,
    allow_skip=False,
    require_loss_reason=True,
)


def make(locale: str | None = None, **options: object) -> SalesFlow:
    numbers = itertools.count(1)
    app = SalesFlow(
        clock=FixedClock(START),
        ids=lambda: f"id-{next(numbers)}",
        locale=locale,
        **options,  # type: ignore[arg-type]
    )
    app.define_process(CONSULTING)
    return app


def action(app: SalesFlow, opportunity_id: str, key: str) -> str:
    return next(a.id for a in app.get(opportunity_id).actions if a.key == key)


def walk(app: SalesFlow) -> list[tuple[str, ...]]:
    """A deal taken through the engine: created (its call booked), the call done (the
    deal auto-advances), the scope agreed (auto-advance stops at the proposal's gate);
    a second deal moved on under ASK, keeping its call. The notices of each step."""
    said: list[tuple[str, ...]] = []
    created = app.create_opportunity(title="Northwind", process="consulting")
    said.append(created.notices)
    deal = created.opportunity.id
    call = app.activities(opportunity_id=deal)[0]
    said.append(app.complete_activity(call.id).notices)
    said.append(app.perform_action(deal, action(app, deal, "scope")).notices)
    said.append(app.perform_action(deal, action(app, deal, "scope")).notices)
    second = app.create_opportunity(title="Contoso", process="consulting").opportunity.id
    said.append(app.change_stage(second, "qualification", cancel_pending=False).notices)
    said.append(app.change_stage(second, "qualification").notices)
    said.append(app.assign(second, "dana").notices)
    said.append(app.assign(second, "dana").notices)
    return said


def test_english_notices_are_unchanged_by_default() -> None:
    assert walk(make()) == [
        ("Scheduled 'Introductory call' for 2026-03-03.", "Created 'Northwind' in Lead."),
        ("Completed 'Introductory call'.", "Moved to Qualification."),
        (
            "Completed 'Agree on the scope'.",
            "Stayed in Qualification: Proposal requires expected_close to be set.",
        ),
        ("'Agree on the scope' is already completed.",),
        (
            "Kept 1 planned activity of Lead; cancel what is no longer needed.",
            "Moved to Qualification.",
        ),
        ("Already in Qualification.",),
        ("Assigned 'Contoso' to dana.",),
        ("'Contoso' is already assigned to dana.",),
    ]


@pytest.mark.parametrize("locale", ["nb_NO", "nb", "nb-no"])
def test_norwegian_notices(locale: str) -> None:
    assert walk(make(locale)) == [
        ("Planla «Introductory call» til 2026-03-03.", "Opprettet «Northwind» i Lead."),
        ("Fullførte «Introductory call».", "Flyttet til Kvalifisering."),
        (
            "Fullførte «Agree on the scope».",
            "Ble værende i Kvalifisering: Forslag krever at expected_close er fylt ut.",
        ),
        ("«Agree on the scope» er allerede fullført.",),
        (
            "Beholdt 1 planlagt aktivitet i Lead; avlys det som ikke lenger trengs.",
            "Flyttet til Kvalifisering.",
        ),
        ("Allerede i Kvalifisering.",),
        ("Tildelte «Contoso» til dana.",),
        ("«Contoso» er allerede tildelt dana.",),
    ]


@pytest.mark.parametrize("locale", [None, "en", "en_US", "de_DE", "fr"])
def test_a_locale_without_catalog_speaks_english(locale: str | None) -> None:
    app = make(locale)
    assert app.locale == (None if locale is None else locale)
    created = app.create_opportunity(title="Northwind", process="consulting")
    assert created.notices[-1] == "Created 'Northwind' in Lead."
    with pytest.raises(NotFound, match=r"^Opportunity 'nope' does not exist$"):
        app.get("nope")


def test_cancelled_activities_and_outbound_calls_in_norwegian() -> None:
    app = make("nb_NO")
    app.define_process(
        Process(
            "letters",
            "Letters",
            (
                Stage(
                    "lead",
                    "Lead",
                    10,
                    actions=(
                        StageAction("brochure", "Send the brochure", ActionKind.LETTER),
                        StageAction(
                            "seminar", "Seminar", ActionKind.EVENT, event="Customer seminar"
                        ),
                        StageAction("call", "Call", ActionKind.CALENDAR, auto_create=True),
                    ),
                ),
                Stage("proposal", "Proposal", 50),
                Stage("won", "Closed-Won", 100, StageKind.WON),
                Stage("lost", "Closed-Lost", 0, StageKind.LOST),
            ),
            cancel_pending=CancelPolicy.ASK,
        )
    )
    deal = app.create_opportunity(title="Fabrikam", process="letters").opportunity.id
    assert app.perform_action(deal, action(app, deal, "brochure")).notices == (
        "Fullførte «Send the brochure».",
        "Sendte «Send the brochure».",
    )
    assert app.perform_action(deal, action(app, deal, "seminar")).notices == (
        "Fullførte «Seminar».",
        "Inviterte kunden til Customer seminar.",
    )
    assert app.perform_action(deal, action(app, deal, "call")).notices == (
        "Det finnes allerede en aktivitet for denne handlingen.",
    )
    assert app.change_stage(deal, "proposal", cancel_pending=True).notices == (
        "Avlyste 1 planlagt aktivitet i Lead.",
        "Flyttet til Forslag.",
    )
    assert app.pause(deal).notices == ("Satt på pause.",)
    assert app.set_probability(deal, 60).notices == ("Sannsynligheten er satt til 60 %.",)


def refusal(call: Callable[[], object], kind: type[SalesflowError]) -> str:
    with pytest.raises(kind) as refused:
        call()
    assert type(refused.value) is kind
    return str(refused.value)


def test_the_errors_a_user_meets_in_norwegian() -> None:
    app = make("nb_NO")
    deal = app.create_opportunity(title="Northwind", process="consulting").opportunity.id
    # ASK: moving on would leave the booked call; the error still carries the plan.
    with pytest.raises(ConfirmationRequired) as asked:
        app.change_stage(deal, "qualification")
    assert str(asked.value) == (
        "Muligheten «id-1»: å flytte til «Kvalifisering» ville etterlate 1 planlagt "
        "aktivitet i «Lead»; svar cancel_pending=True eller False"
    )
    assert [a.title for a in asked.value.plan.to_cancel] == ["Introductory call"]
    assert refusal(lambda: app.change_stage(deal, "proposal"), TransitionNotAllowed) == (
        "Muligheten «id-1»: prosessen «consulting» tillater ikke å hoppe over trinn; å flytte "
        "fra «Lead» til «Forslag» ville hoppe over ['Qualification']"
    )
    app.change_stage(deal, "qualification", cancel_pending=True)
    assert refusal(lambda: app.change_stage(deal, "lead"), TransitionNotAllowed) == (
        "Muligheten «id-1»: prosessen «consulting» tillater ikke å flytte bakover fra "
        "«Kvalifisering» til «Lead»"
    )
    assert refusal(lambda: app.change_stage(deal, "proposal"), TransitionNotAllowed) == (
        "Muligheten «id-1»: trinnet «Forslag» krever at expected_close er fylt ut"
    )
    assert refusal(lambda: app.mark_lost(deal), LossReasonRequired) == (
        "Muligheten «id-1»: prosessen «consulting» krever en tapsårsak for å flytte til "
        "«Lukket-Tapt»"
    )
    assert refusal(lambda: app.change_stage(deal, "nowhere"), UnknownStage) == (
        "Prosessen «consulting» har ikke trinnet «nowhere»; trinnene er "
        "['lead', 'qualification', 'proposal', 'won', 'lost']"
    )
    app.pause(deal)
    assert refusal(lambda: app.change_stage(deal, "proposal"), TransitionNotAllowed) == (
        "Muligheten «id-1» er satt på pause: gjenoppta den før du endrer trinnet"
    )
    assert refusal(lambda: app.pause(deal), TransitionNotAllowed) == (
        "Muligheten «id-1» er på pause: bare en åpen mulighet kan settes på pause"
    )
    app.claim(deal, actor="dana")
    assert refusal(lambda: app.claim(deal, actor="lee"), AlreadyAssigned) == (
        "Muligheten «id-1» («Northwind») er tildelt «dana»: «lee» kan ikke ta den; "
        "tildelingen må først fjernes eller endres"
    )
    assert refusal(lambda: app.get("nope"), NotFound) == "Muligheten «nope» finnes ikke"
    assert refusal(lambda: app.cancel_activity("gone"), NotFound) == (
        "Aktiviteten «gone» finnes ikke"
    )
    assert refusal(lambda: app.process("nope"), NotFound) == "Prosessen «nope» er ikke definert"


def test_validation_errors_in_norwegian() -> None:
    app = make("nb_NO")
    negative = refusal(
        lambda: app.create_opportunity(title="X", value=Money("-5", "NOK")), ValidationError
    )
    assert negative.endswith(".value: kan ikke være negativ, fikk -5")
    naive = refusal(
        lambda: app.schedule_activity(title="Call", due=dt.datetime(2026, 3, 3, 9)),  # noqa: DTZ001
        ValidationError,
    )
    assert naive == (
        "schedule_activity(due=...): tidspunkter må ha tidssone, fikk 2026-03-03 09:00:00 "
        "uten tidssone"
    )
    assert refusal(
        lambda: app.create_opportunity(title="X", probability=101), ValidationError
    ).endswith("ventet et heltall 0..100, fikk 101")
    deal = app.create_opportunity(title="Billed", value=Money("10", "NOK")).opportunity.id
    mixed = LineItem("Licence", 1, Money("10", "USD"))
    assert refusal(lambda: app.add_line_item(deal, mixed), CurrencyMismatch).endswith(
        "er i USD, muligheten i NOK"
    )
    tracked = app.schedule_activity(
        title="Demo", due=START + dt.timedelta(days=1), opportunity_id=deal, track_outcome=True
    )
    assert refusal(lambda: app.complete_activity(tracked.id), OutcomeRequired) == (
        f"Aktiviteten «{tracked.id}» («Demo») registrerer utfall: den kan bare fullføres med "
        "et utfall"
    )


def test_missing_exchange_rate_in_norwegian() -> None:
    app = make("nb_NO", rates=StaticRates({("EUR", "USD"): "1.1"}))
    app.create_opportunity(title="Kroner", value=Money("100", "NOK"))
    assert refusal(lambda: app.pipeline("standard", currency="USD"), MissingExchangeRate) == (
        "Ingen valutakurs fra NOK til USD"
    )


class Refusing:
    def allows(self, actor: str | None, command: str, opportunity: Opportunity | None) -> bool:
        return command != "change_stage"


def test_permission_denied_in_norwegian() -> None:
    app = make("nb_NO", policy=Refusing())
    deal = app.create_opportunity(title="Northwind", actor="lee").opportunity.id
    assert refusal(lambda: app.change_stage(deal, "proposal", actor="lee"), PermissionDenied) == (
        "lee har ikke lov til å kjøre change_stage på muligheten «Northwind» («id-1»)"
    )
    anonymous = refusal(lambda: app.change_stage(deal, "proposal"), PermissionDenied)
    assert anonymous.startswith("En anonym bruker har ikke lov til")


def test_errors_of_a_bulk_result_are_translated_once() -> None:
    app = make("nb_NO")
    deal = app.create_opportunity(title="Northwind").opportunity.id
    app.pause(deal)
    result = app.bulk_change_stage([deal, "ghost"], "proposal")
    assert str(result.failed["ghost"]) == "Muligheten «ghost» finnes ikke"
    assert str(result.failed[deal]) == (
        "Muligheten «id-1» er satt på pause: gjenoppta den før du endrer trinnet"
    )
    # The error keeps its template, and knows it is translated (an outer public call
    # does not translate it again).
    failure = result.failed[deal]
    assert failure.locale == "nb_NO"
    assert failure.message is not None
    assert str(failure.message) == (
        "Opportunity 'id-1' is paused: resume it before changing its stage"
    )
    imported = app.create_opportunities([{"title": "X", "stage": "nowhere"}])
    assert str(imported.failed[0]).startswith("Prosessen «standard» har ikke trinnet")


def test_english_errors_are_unchanged_by_default() -> None:
    app = make()
    deal = app.create_opportunity(title="Northwind", process="consulting").opportunity.id
    app.pause(deal)
    with pytest.raises(TransitionNotAllowed) as refused:
        app.change_stage(deal, "qualification")
    assert str(refused.value) == (
        "Opportunity 'id-1' is paused: resume it before changing its stage"
    )
    assert refused.value.locale is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("nb_NO", "nb_NO"),
        ("nb", "nb"),
        ("nb-no", "nb_NO"),
        ("no_NO", "nb_NO"),
        ("no", "nb"),
        ("en_US", "en_US"),
        ("en", "en"),
    ],
)
def test_locale_names_are_read_in_gettext_form(given: str, expected: str) -> None:
    assert SalesFlow(locale=given).locale == expected


@pytest.mark.parametrize(
    "bad", ["", "xx", "zz_ZZ", "nb_NO.UTF-8", "nb NO", "norsk bokmål", "n", "nb_NORWAY", 7, b"nb"]
)
def test_an_unknown_or_malformed_locale_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError, match=r"^SalesFlow\(locale=\.\.\.\): "):
        SalesFlow(locale=bad)  # type: ignore[arg-type]


# -- the catalog has every template -----------------------------------------------------


def library_templates() -> set[str]:
    """Every ``Message`` template in the library's code (the command line has its own
    texts, checked in tests/cli/test_locale.py)."""
    found: set[str] = set()
    for _, _, message, _, _ in extract_from_dir(
        str(SOURCE),
        method_map=[("cli/**.py", "ignore"), ("**.py", "python")],
        keywords={"Message": None},
    ):
        assert isinstance(message, str), message
        found.add(message)
    return found


def field_names(text: str) -> set[str]:
    """The names of a template's placeholders (``{id!r}`` -> ``id``)."""
    return {
        field.split("!")[0].split(":")[0]
        for _, field, _, _ in string.Formatter().parse(text)
        if field is not None
    }


def test_every_template_of_the_library_has_its_norwegian_translation() -> None:
    with PO.open("rb") as file:
        catalog = read_po(file)
    templates = library_templates()
    assert len(templates) > 60
    assert "Moved to {stage}." in templates
    for template in sorted(templates):
        entry = catalog.get(template)
        assert entry is not None, f"no Norwegian for {template!r}"
        assert isinstance(entry.string, str), template
        assert entry.string, template
        assert field_names(entry.string) == field_names(template), template
    for status in Status:
        assert catalog.get(status.value, context="status value") is not None, status


def test_the_code_marks_every_message_with_a_literal_template() -> None:
    """A template built at run time (an f-string) would never reach the catalog.
    (``messages.py`` itself copies templates it was given.)"""
    for path in SOURCE.rglob("*.py"):
        if path.name == "messages.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Message"
            ):
                first = node.args[0]
                where = f"{path.name}:{node.lineno}"
                assert isinstance(first, ast.Constant), where
                assert isinstance(first.value, str), where


def test_the_domain_loads_no_catalog() -> None:
    """Rendering is the facade's job: the domain and the message values import
    neither gettext nor the catalogs."""
    for path in [*(SOURCE / "domain").glob("*.py"), SOURCE / "messages.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            for name in names:
                assert not re.match(r"(gettext|babel|salesflow\.locale)\b", name), (
                    f"{path.name} imports {name}"
                )


# -- messages ----------------------------------------------------------------------------

said = st.text(st.characters(codec="utf-8"), max_size=30)


@given(title=said)
def test_notices_show_text_as_it_was_given(title: str) -> None:
    """Whatever a title holds -- quotes, braces, backslashes, control characters -- a
    notice shows it unescaped, in English and in Norwegian."""
    notice = Message("Claimed '{title}'.", title=title)
    assert str(notice) == f"Claimed '{title}'."
    assert notice.render(catalogs.translation("nb_NO")) == f"Tok «{title}»."


@given(key=said, stage=said)
def test_an_error_message_renders_whatever_its_values(key: str, stage: str) -> None:
    message = Message(
        "Process {process!r} has no stage {stage!r}; its stages are {stages}",
        process=key,
        stage=stage,
        stages=[key],
    )
    assert str(message) == f"Process {key!r} has no stage {stage!r}; its stages are {[key]}"
    norwegian = message.render(catalogs.translation("nb"))
    assert f"«{key}»" in norwegian
    assert f"«{stage}»" in norwegian


def test_terms_are_translated_when_the_catalog_knows_them() -> None:
    nb = catalogs.translation("nb_NO")
    assert Term("stage", "Closed-Won").render(nb) == "Lukket-Vunnet"
    assert Term("stage", "Our own stage").render(nb) == "Our own stage"
    assert str(Term("stage", "Closed-Won")) == "Closed-Won"
    moved = Message("Moved to {stage}.", stage=Term("stage", "Proposal"))
    assert (str(moved), moved.render(nb)) == ("Moved to Proposal.", "Flyttet til Forslag.")


class Broken:
    """A catalog whose translation names a placeholder the template lacks."""

    def gettext(self, message: str, /) -> str:
        return "Flyttet til {nowhere}."

    def pgettext(self, context: str, message: str, /) -> str:
        return message


def test_a_broken_translation_falls_back_to_english() -> None:
    assert Message("Moved to {stage}.", stage="Won").render(Broken()) == "Moved to Won."


def test_messages_are_frozen_values() -> None:
    message = Message("Moved to {stage}.", stage="Won")
    assert message == Message("Moved to {stage}.", stage="Won")
    assert hash(message) == hash(Message("Moved to {stage}.", stage="Won"))
    assert dict(message.params) == {"stage": "Won"}
    with pytest.raises(TypeError):
        message.params["stage"] = "Lost"  # type: ignore[index]
    with pytest.raises(AttributeError):
        message.template = "x"  # type: ignore[misc]
    error = ValidationError(message)
    assert (str(error), error.message, error.locale) == ("Moved to Won.", message, None)


def test_a_field_error_names_its_record_in_the_same_language() -> None:
    ids = iter(["o-1", "o-2"])
    app = SalesFlow(locale="nb_NO", ids=lambda: next(ids))
    with pytest.raises(ValidationError) as negative:
        app.create_opportunity(title="x", value=Money(-1, "USD"))
    assert str(negative.value) == "Muligheten «o-1».value: kan ikke være negativ, fikk -1"
    english = SalesFlow(ids=lambda: "o-3")
    with pytest.raises(ValidationError) as unchanged:
        english.create_opportunity(title="x", value=Money(-1, "USD"))
    assert str(unchanged.value) == "Opportunity 'o-3'.value: must not be negative, got -1"
