"""Replacing a process without stranding an opportunity.

When a new version of a process drops a stage that opportunities are in -- or keeps
its key but makes it another kind (an open stage made LOST, say) -- those
opportunities must go somewhere: :func:`plan_replacement` checks the caller's
``stage_map`` against the old and new versions and the number of opportunities in each
stage, and returns where each stage's opportunities move -- or raises
``ValidationError`` naming every stage that would be left holding them, and how many.
It is pure: the counts come from the repository (``Repository.count_by_stage``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from salesflow.domain.process import Process
from salesflow.errors import ValidationError

__all__ = ["plan_replacement", "reweighted_stages"]


def plan_replacement(
    old: Process | None,
    new: Process,
    counts: Mapping[str, int],
    stage_map: Mapping[str, str] | None,
) -> dict[str, str]:
    """Where the opportunities of each dropped stage go: ``{old stage: new stage}``.

    ``old`` is the process as it stands (None when ``new`` defines it for the first
    time), ``counts`` the number of its opportunities in each stage key, and
    ``stage_map`` the caller's answer to "where do the deals of a deleted stage go".
    The result holds exactly the stages that hold opportunities and that ``new`` does
    not have, in the old version's stage order (stages the old version does not know,
    left over from an earlier replacement, come after it, by key).

    Raises ``ValidationError`` when ``stage_map`` is not a mapping of stage keys to
    stage keys, names a stage that neither the old version has nor opportunities are
    in, names a stage the new version keeps, or maps to a stage the new version does
    not have; and when a dropped stage holding opportunities is not mapped (naming
    each such stage with its count).
    """
    record = f"Process {new.key!r}"
    if old is not None and old.key != new.key:
        raise ValidationError(
            f"{record}: cannot replace process {old.key!r}; a process is replaced by a "
            "version with the same key"
        )
    given = _checked_map(record, stage_map)
    new_keys = {s.key for s in new.stages}
    old_order = [s.key for s in old.stages] if old is not None else []
    occupied = {key: n for key, n in counts.items() if n > 0}
    # A stage opportunities are in counts as a stage of the old version even if its
    # definition lacks it (a stage stranded before replacements were checked), so
    # that such opportunities can be moved too.
    known = set(old_order) | set(occupied)

    unknown = [key for key in given if key not in known]
    if unknown:
        raise ValidationError(
            f"{record}: stage_map names {_keys(unknown)}, which "
            f"{'is not a stage' if len(unknown) == 1 else 'are not stages'} of the "
            f"version being replaced"
            + (f" (its stages are {_keys(old_order)})" if old_order else " (there is none)")
        )
    old_kinds = {s.key: s.kind for s in old.stages} if old is not None else {}
    new_kinds = {s.key: s.kind for s in new.stages}

    def leaving(key: str) -> bool:
        """Whether the new version drops the stage, or makes it another kind."""
        return key not in new_keys or (key in old_kinds and old_kinds[key] != new_kinds[key])

    kept = [key for key in given if not leaving(key)]
    if kept:
        raise ValidationError(
            f"{record}: stage_map names {_keys(kept)}, which the new version keeps; "
            "only the stages it drops (or makes another kind) can be mapped"
        )
    bad_targets = [
        f"{key!r} -> {target!r}" for key, target in given.items() if target not in new_keys
    ]
    if bad_targets:
        raise ValidationError(
            f"{record}: stage_map must map to stages of the new version "
            f"({_keys(s.key for s in new.stages)}), not {', '.join(bad_targets)}"
        )

    rank = {key: i for i, key in enumerate(old_order)}
    dropped = sorted(
        (key for key in occupied if leaving(key)),
        key=lambda key: (rank.get(key, len(rank)), key),
    )
    stranded = [key for key in dropped if key not in given]
    if stranded:
        listed = ", ".join(
            f"{key!r} ({occupied[key]}"
            + (f"; made {new_kinds[key].name}" if key in new_kinds else "")
            + ")"
            for key in stranded
        )
        advice = (
            "pass stage_map= to say where they go"
            if stage_map is None or not given
            else "add them to stage_map= to say where they go"
        )
        raise ValidationError(
            f"{record}: its new version drops stages that hold opportunities: {listed}; {advice}"
        )
    return {key: given[key] for key in dropped}


def reweighted_stages(
    old: Process | None, new: Process, counts: Mapping[str, int], moves: Mapping[str, str]
) -> dict[str, int]:
    """The stages the new version keeps with another default probability that hold
    opportunities (not moved elsewhere), each with its new probability: their deals
    follow it, as deals created from now on will."""
    if old is None:
        return {}
    before = {s.key: s.probability for s in old.stages}
    return {
        s.key: s.probability
        for s in new.stages
        if s.key in before
        and before[s.key] != s.probability
        and counts.get(s.key, 0) > 0
        and s.key not in moves
    }


def _checked_map(record: str, stage_map: object) -> dict[str, str]:
    """``stage_map`` as a dict, or ``ValidationError`` naming the argument."""
    if stage_map is None:
        return {}
    if not isinstance(stage_map, Mapping):
        raise ValidationError(
            f"{record}: stage_map must be a mapping of stage keys to stage keys, got {stage_map!r}"
        )
    checked: dict[str, str] = {}
    for key, target in stage_map.items():
        if not isinstance(key, str) or not isinstance(target, str):
            raise ValidationError(
                f"{record}: stage_map must map stage keys (strings) to stage keys, "
                f"got {key!r}: {target!r}"
            )
        checked[key] = target
    return checked


def _keys(keys: Iterable[str]) -> str:
    """Stage keys as a message lists them: ``'a', 'b'``."""
    return ", ".join(repr(key) for key in keys)
