"""Translations of salesflow's texts: gettext catalogs shipped inside the package.

Each language has ``<language>/LC_MESSAGES/salesflow.po`` (the source, edited by
translators) and ``salesflow.mo`` (compiled from it, read at run time) beside this
file. :func:`translation` finds the catalog for a locale name such as ``"nb_NO"``,
falling back from ``nb_NO`` to ``nb`` and, when there is none, to the English
texts themselves. The command line uses it today; any other part of salesflow can
mark its texts with the same catalog (domain ``salesflow``) and be translated too.

The ``.mo`` files are compiled from the ``.po`` files with Babel
(``pybabel compile -d src/salesflow/locale -D salesflow``) and kept in the
repository, so an installed salesflow needs nothing to read them.
"""

from __future__ import annotations

import gettext
from pathlib import Path

__all__ = ["DIRECTORY", "DOMAIN", "languages", "translation"]

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
