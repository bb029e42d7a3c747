"""The ``salesflow`` command line: a pipeline's board, activities, history, import and
export, a calendar of planned activities, and a demo -- in English or Norwegian.

``main(argv)`` runs one command line and returns its exit status; the console script
``salesflow`` calls it. See ``docs/cli.md``.
"""

from __future__ import annotations

from salesflow.cli._main import __version__, main

__all__ = ["__version__", "main"]
