"""Running test workers in OS processes of their own ("spawn"), on shared storage."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


def run_all(
    function: Callable[..., None], argument_lists: list[tuple[Any, ...]], *, timeout: float = 120
) -> None:
    """Start one process per argument list; they start work together (once every one
    has built its repository) and must all succeed."""
    together = SPAWN.Barrier(len(argument_lists), timeout=60)
    children = [SPAWN.Process(target=function, args=(*args, together)) for args in argument_lists]
    for child in children:
        child.start()
    join_all(children, timeout)


def join_all(children: Sequence[BaseProcess], timeout: float = 120) -> None:
    """Wait for every child; each must have exited with status 0."""
    for child in children:
        child.join(timeout=timeout)
    assert [c.exitcode for c in children] == [0] * len(children), "a child process failed"
