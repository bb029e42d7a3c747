"""Translations of salesflow's texts: gettext catalogs shipped inside the package.

Each language has ``<language>/LC_MESSAGES/salesflow.po`` (the source, edited by
translators) and ``salesflow.mo`` (compiled from it, read at run time) beside this
file. :func:`translation` finds the catalog for a locale name such as ``"nb_NO"``,
falling back from ``nb_NO`` to ``nb`` and, when there is none, to the English
texts themselves. The command line translates its own texts with it, and
``SalesFlow(locale=...)`` the notices and error messages of the library, which the
domain builds as :class:`~salesflow.messages.Message` templates. :func:`locale_name`
checks a locale name given to salesflow.

The ``.mo`` files are compiled from the ``.po`` files with Babel
(``pybabel compile -d src/salesflow/locale -D salesflow``) and kept in the
repository, so an installed salesflow needs nothing to read them.
"""

from __future__ import annotations

import gettext
import locale as _system
import re
from pathlib import Path

from salesflow.errors import ValidationError

__all__ = ["DIRECTORY", "DOMAIN", "languages", "locale_name", "translation"]

#: The gettext domain of every salesflow text.
DOMAIN = "salesflow"

#: The folder holding one sub-folder per language.
DIRECTORY = Path(__file__).resolve().parent


def languages() -> tuple[str, ...]:
    """The languages that have a compiled catalog, in name order (``("nb",)``)."""
    return tuple(
        sorted(
            path.parent.parent.name
            for path in DIRECTORY.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")
            if path.is_file()
        )
    )


def translation(locale: str) -> gettext.NullTranslations:
    """The catalog for ``locale`` (``"nb_NO"``, ``"nb"``, ``"en_US"``...).

    gettext tries the full name, then the language alone; a locale without a catalog
    gets the English texts unchanged.
    """
    return gettext.translation(DOMAIN, localedir=DIRECTORY, languages=[locale], fallback=True)


_SHAPE = re.compile(
    r"(?P<language>[a-zA-Z]{2,3})(?:[_-](?P<script>[a-zA-Z]{4}))?"
    r"(?:[_-](?P<territory>[a-zA-Z]{2}|[0-9]{3}))?"
)


def _known_language(language: str) -> bool:
    """Whether ``language`` (``"nb"``) names a language: one of the C library's locale
    aliases that Python knows, or -- when Babel is installed -- one of Babel's."""
    if any(
        alias == language or alias.startswith((f"{language}_", f"{language}.", f"{language}@"))
        for alias in _system.locale_alias
    ):
        return True
    try:
        from babel import localedata
    except ImportError:
        return False
    return localedata.exists(language)


def locale_name(value: object, where: str) -> str:
    """A locale name in gettext's form (``"nb_NO"``) from ``"nb_NO"``, ``"nb-NO"``,
    ``"nb"``, ``"en_US"``...; ``ValidationError`` naming ``where`` for anything that is
    not the name of a locale (an unknown language, a malformed name). ``"no"``
    (Norwegian, as older systems name it: ``no_NO``) is taken as Bokmål, ``"nb"``."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{where}: expected a locale name such as 'nb_NO' or 'en', got {value!r}"
        )
    found = _SHAPE.fullmatch(value)
    if found is None:
        raise ValidationError(f"{where}: {value!r} is not a locale name such as 'nb_NO' or 'en'")
    language = found["language"].lower()
    if language == "no":  # Norwegian as a whole: written, it is Bokmål by default
        language = "nb"
    if not _known_language(language):
        raise ValidationError(f"{where}: {value!r} names no known language")
    parts = [language]
    if found["script"]:
        parts.append(found["script"].title())
    if found["territory"]:
        parts.append(found["territory"].upper())
    return "_".join(parts)
