"""Texts salesflow shows to people, kept translatable until they are shown.

A :class:`Message` is a template in English with named placeholders
(``"Moved to {stage}."``) and the values that fill them. ``str()`` gives the English
text; :meth:`Message.render` gives it in another language, looking the template up
in a :class:`Catalog` (a ``gettext`` translations object). The domain builds its
notices and the messages of its errors this way and never loads a catalog: which
language a text is shown in is the facade's business (``SalesFlow(locale=...)``).

Values are put in as they were given -- nothing is escaped. A value that is a
``Message`` itself is rendered in the same language, and a :class:`Term` -- the name
of a stage or a process -- is translated when the catalog knows it (the built-in
stages), and shown as it is otherwise. Babel's extractor finds the templates by the
name ``Message`` (see ``docs/translations.md``).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Protocol

import attrs

__all__ = ["Catalog", "Message", "Term"]


class Catalog(Protocol):
    """What rendering needs of a catalog: ``gettext.NullTranslations`` has both."""

    def gettext(self, message: str, /) -> str: ...

    def pgettext(self, context: str, message: str, /) -> str: ...


@attrs.frozen
class Term:
    """A name that a catalog may know in ``context``: ``Term("stage", "Proposal")``
    is ``Forslag`` in Norwegian; a name no catalog knows stays as it is."""

    context: str
    text: str

    def render(self, catalog: Catalog | None = None, /) -> str:
        return self.text if catalog is None else catalog.pgettext(self.context, self.text)

    def __str__(self) -> str:
        return self.text


@attrs.frozen(init=False, repr=False)
class Message:
    """An English template with named placeholders and the values that fill them.

    ``Message("Moved to {stage}.", stage="Proposal")``: ``str()`` of it is
    ``"Moved to Proposal."``. The placeholders use :meth:`str.format` syntax
    (``{key!r}`` quotes a key as Python writes it).
    """

    template: str
    _params: tuple[tuple[str, object], ...]

    def __init__(self, template: str, /, **params: object) -> None:
        self.__attrs_init__(template, tuple(params.items()))

    @property
    def params(self) -> Mapping[str, object]:
        """The values of the placeholders, by name (read-only)."""
        return types.MappingProxyType(dict(self._params))

    def with_params(self, **params: object) -> Message:
        """This template with some of its values replaced."""
        return Message(self.template, **{**dict(self._params), **params})

    def render(self, catalog: Catalog | None = None, /) -> str:
        """The text, with the template looked up in ``catalog`` (English without one).
        A translation whose placeholders do not fit the values falls back to the
        English template, so that a faulty catalog cannot hide an error."""
        values = {
            key: value.render(catalog) if isinstance(value, Message | Term) else value
            for key, value in self._params
        }
        if catalog is not None:
            translated = catalog.gettext(self.template)
            if translated != self.template:
                try:
                    return translated.format_map(values)
                except (KeyError, IndexError, ValueError, AttributeError):
                    pass
        return self.template.format_map(values)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Message({self.template!r}, {dict(self._params)!r})"
