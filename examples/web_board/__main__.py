"""``python examples/web_board`` (from the repository's root) or ``python -m web_board``
(from ``examples/``): serve the board; ``--help`` lists the options."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable by its name
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from web_board.cli import main

main()
