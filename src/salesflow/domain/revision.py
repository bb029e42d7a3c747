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

__all__ = ["revised", "reviser"]

R = TypeVar("R")

_KEEP: Any = object()  # marks a field the caller leaves as it is


def _copier(cls: type) -> Callable[..., Any]:
    """The function copying a record of ``cls``: the fields are keyword-only arguments,
    each taken from the record unless given (so an unknown name is a TypeError). Each
    field is set through its slot's descriptor, which skips the frozen class'
    ``__setattr__`` (and is the quickest way to fill a slot)."""
    names = [field.name for field in attrs.fields(cls)]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_KEEP": _KEEP}
    setters = []
    for i, n in enumerate(names):
        slot = next((vars(c)[n] for c in cls.__mro__ if n in vars(c)), None)
        if slot is not None and hasattr(slot, "__set__"):
            scope[f"_set{i}"] = slot.__set__
            setters.append(f"    _set{i}(copy, record.{n} if {n} is _KEEP else {n})")
        else:  # a record without slots: set it as attrs' own __init__ does
            scope["_put"] = object.__setattr__
            setters.append(f"    _put(copy, {n!r}, record.{n} if {n} is _KEEP else {n})")
    lines = [
        f"def revise(record, /, *, {', '.join(f'{n}=_KEEP' for n in names)}):",
        "    copy = _new(_cls)",
        *setters,
        "    return copy",
    ]
    exec(compile("\n".join(lines), f"<revise {cls.__qualname__}>", "exec"), scope)
    copier: Callable[..., Any] = scope["revise"]
    return copier


_COPIERS: dict[type, Callable[..., Any]] = {}


def reviser(cls: type[R]) -> Callable[..., R]:
    """The function :func:`revised` copies records of ``cls`` with (made once per
    class), for a module that copies them often to call directly."""
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    return copier


def revised(record: R, /, **changes: Any) -> R:
    """A copy of the frozen attrs ``record`` with ``changes`` set, as ``attrs.evolve``
    would make it, but without running its validators and converters: only for values
    the domain built from values already checked, of the field's type."""
    copy: R = reviser(type(record))(record, **changes)
    return copy
