"""What the command line says, in the chosen locale: translated texts (gettext),
money and dates (Babel, through py-moneyed's ``format_money``), and fitting text
into a terminal's columns."""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata

from moneyed import Money

from salesflow import locale as catalogs
from salesflow.domain.values import minor_digits, round_money

__all__ = [
    "Texts",
    "UsageError",
    "clip",
    "environment_locale",
    "pad",
    "parse_locale",
    "safe",
    "safe_line",
    "width",
]

#: The locale used when neither ``--locale`` nor the environment names one.
DEFAULT_LOCALE = "en_US"

_PLAIN_LOCALE = re.compile(r"[a-zA-Z]{2,3}(?:[_-][a-zA-Z0-9]{2,8})*")


class UsageError(Exception):
    """A command line the program cannot act on: exit status 2, nothing done."""


def _babel_available() -> bool:
    try:
        import babel  # noqa: F401
    except ImportError:
        return False
    return True


def parse_locale(name: str) -> str:
    """A locale name in gettext's form (``nb_NO``) from ``nb_NO``, ``nb-NO``,
    ``nb_NO.UTF-8`` or ``nb`` (``no_NO``, Norwegian as older systems name it, is
    Bokmål); ``UsageError`` for anything else."""
    text = name.strip().split(".", 1)[0].split("@", 1)[0]
    if not _PLAIN_LOCALE.fullmatch(text):
        raise UsageError(f"--locale: {name!r} is not a locale name such as en_US or nb_NO")
    text = text.replace("-", "_")
    if text.split("_", 1)[0].lower() == "no":  # Norwegian, as older systems name it
        text = "nb" + text[2:]
    if _babel_available():
        from babel import Locale, UnknownLocaleError

        try:
            return str(Locale.parse(text))
        except (UnknownLocaleError, ValueError):
            raise UsageError(f"--locale: {name!r} is not a locale Babel knows") from None
    return text


def environment_locale(environ: dict[str, str] | None = None) -> str:
    """The locale the environment asks for (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, as
    gettext reads them); ``en_US`` for C, POSIX or anything unreadable."""
    env = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(variable, "").strip()
        if not value:
            continue
        if value in ("C", "POSIX") or value.startswith(("C.", "POSIX.")):
            return DEFAULT_LOCALE
        try:
            return parse_locale(value)
        except UsageError:
            return DEFAULT_LOCALE
    return DEFAULT_LOCALE


class Texts:
    """The texts, money and dates of one locale.

    Without Babel installed (the ``cli`` extra), texts are still translated, while
    money shows as ``1,234.50 USD`` and dates as ``2026-03-02``.
    """

    def __init__(self, locale: str = DEFAULT_LOCALE) -> None:
        self.locale = locale
        self._catalog = catalogs.translation(locale)
        self.babel = _babel_available()

    def _(self, message: str) -> str:
        """``message`` in this locale."""
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """The singular or plural form for ``n``, in this locale."""
        return self._catalog.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        """``message`` in this locale, as meant in ``context``."""
        return self._catalog.pgettext(context, message)

    def stage(self, name: str) -> str:
        """A stage's name in this locale: the built-in stages are translated, a name
        the catalog does not know is shown as it is."""
        return safe(self.pgettext("stage", name))

    def process(self, name: str) -> str:
        """A process' name in this locale (the built-in processes are translated)."""
        return safe(self.pgettext("process", name))

    def money(self, value: Money) -> str:
        """``value`` written as the locale writes money (``$48,000.00``,
        ``48 000,00 USD``), rounded half-up to the currency's minor unit first, as the
        reports round (formatting alone would round half to even)."""
        value = round_money(value)
        if self.babel:
            from moneyed.l10n import format_money

            return format_money(value, locale=self.locale)
        digits = minor_digits(value.currency.code)
        return f"{value.amount:,.{digits}f} {value.currency.code}"

    def date(self, value: dt.date) -> str:
        """A day, as the locale writes it in short (``Mar 2, 2026``, ``2. mars 2026``)."""
        if self.babel:
            from babel.dates import format_date

            return format_date(value, "medium", locale=self.locale)
        return value.isoformat()

    def month(self, value: dt.date) -> str:
        """A month, as the locale writes it in short (``Mar 2026``, ``mars 2026``)."""
        if self.babel:
            from babel.dates import format_date

            return format_date(value, "LLL y", locale=self.locale)
        return f"{value:%Y-%m}"

    def time(self, value: dt.datetime) -> str:
        """A time of day, as the locale writes it in short (``9:05 AM``, ``09:05``)."""
        if self.babel:
            from babel.dates import format_time

            return format_time(value, "short", locale=self.locale)
        return f"{value:%H:%M}"

    def moment(self, value: dt.datetime, timezone: dt.tzinfo) -> str:
        """A moment in ``timezone``, day and time, as the locale writes them."""
        local = value.astimezone(timezone)
        if self.babel:
            from babel.dates import format_date, format_time

            return (
                f"{format_date(local, 'medium', locale=self.locale)} "
                f"{format_time(local, 'short', locale=self.locale)}"
            )
        return f"{local:%Y-%m-%d %H:%M}"


# -- stored text -----------------------------------------------------------------------

#: Characters that change what a terminal does or where the text goes rather than
#: showing a glyph: C0 and C1 controls and DEL, line and paragraph separators, and
#: the bidirectional overrides and isolates (which can make text read backwards).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe(text: str) -> str:
    """Stored text made safe to print on one line of a terminal: each control
    character is shown escaped (``\\x1b``, ``\\n``, ``\\t``, ``\\u202e``), so a
    title can neither move the cursor, recolour or retitle the terminal, nor break a
    line."""
    return _UNSAFE.sub(_escape, text)


_ANSI_SPLIT = re.compile(r"(\x1b\[[0-9;]*m)")


def safe_line(line: str, *, colour: bool) -> str:
    """A line about to be printed, with any control character left in it escaped --
    except, when ``colour`` is on, the colour codes the views put there themselves."""
    if not colour:
        return safe(line)
    parts = _ANSI_SPLIT.split(line)
    return "".join(part if i % 2 else safe(part) for i, part in enumerate(parts))


# -- columns ---------------------------------------------------------------------------


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def width(text: str) -> int:
    """The columns ``text`` takes in a terminal (wide characters count twice, colour
    codes not at all)."""
    return sum(_char_width(c) for c in _ANSI.sub("", text))


def clip(text: str, columns: int) -> str:
    """``text`` cut to ``columns``, ending in ``~`` when it was cut."""
    if width(text) <= columns:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        w = _char_width(char)
        if used + w > columns - 1:
            break
        kept.append(char)
        used += w
    return "".join(kept) + "~"


def pad(text: str, columns: int, *, right: bool = False) -> str:
    """``text`` clipped to ``columns`` and padded to fill them (aligned right if asked)."""
    clipped = clip(text, columns)
    fill = " " * (columns - width(clipped))
    return fill + clipped if right else clipped + fill
