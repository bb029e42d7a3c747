"""Copies of records the domain changes itself, without checking again what it checked.

Every public constructor of a record validates all its fields, and ``attrs.evolve``
runs every validator of the record again, on every copy. Most copies a command makes
change a field or two to values the domain has just built from checked values (a
stage of a validated process, the clock's checked time, an action it built): for
those, :func:`revised` copies the record as it is and sets the new values, without
running validators or converters. Values that come from a caller still go through
``attrs.evolve`` or a constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["revised"]

R = TypeVar("R")

_KEEP: Any = object()  # marks a field the caller leaves as it is


def _copier(cls: type) -> Callable[..., Any]:
    """The function copying a record of ``cls``: the fields are keyword-only arguments,
    each taken from the record unless given (so an unknown name is a TypeError)."""
    names = [field.name for field in attrs.fields(cls)]
    lines = [
        f"def revise(record, /, *, {', '.join(f'{n}=_KEEP' for n in names)}):",
        "    copy = _new(_cls)",
        *(f"    _set(copy, {n!r}, record.{n} if {n} is _KEEP else {n})" for n in names),
        "    return copy",
    ]
    scope: dict[str, Any] = {
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_cls": cls,
        "_KEEP": _KEEP,
    }
    exec(compile("\n".join(lines), f"<revise {cls.__qualname__}>", "exec"), scope)
    copier: Callable[..., Any] = scope["revise"]
    return copier


_COPIERS: dict[type, Callable[..., Any]] = {}


def revised(record: R, /, **changes: Any) -> R:
    """A copy of the frozen attrs ``record`` with ``changes`` set, as ``attrs.evolve``
    would make it, but without running its validators and converters: only for values
    the domain built from values already checked, of the field's type."""
    cls = type(record)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    copy: R = copier(record, **changes)
    return copy
