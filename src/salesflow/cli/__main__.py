"""``python -m salesflow.cli``: the same as the ``salesflow`` command."""

import sys

from salesflow.cli import main

sys.exit(main())
