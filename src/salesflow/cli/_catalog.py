"""The texts the command line translates that are not written in its code: the
names of the built-in processes and stages (and the demo's), event kinds, activity
kinds and statuses. ``tests/cli/test_locale.py`` checks that every one of them, and
every text marked in the code, has its Norwegian translation."""

from __future__ import annotations

import enum

from salesflow import ActivityKind, EventKind, Process, Status, processes
from salesflow.cli._demo import CONSULTING

__all__ = ["enum_label", "names"]


def enum_label(member: enum.Enum) -> str:
    """The English label of an enum member: ``STAGE_CHANGED`` -> ``Stage changed``."""
    return member.name.replace("_", " ").capitalize()


def names() -> list[tuple[str, str]]:
    """Every (context, English text) pair the code translates by name."""
    found: list[tuple[str, str]] = []
    builtin: tuple[Process, ...] = (processes.STANDARD, processes.SIMPLE, CONSULTING)
    for process in builtin:
        found.append(("process", process.name))
        found.extend(("stage", stage.name) for stage in process.stages)
    found.extend(("event", enum_label(kind)) for kind in EventKind)
    found.extend(("activity kind", enum_label(kind)) for kind in ActivityKind)
    found.extend(("status", enum_label(status)) for status in Status)
    return list(dict.fromkeys(found))
