"""``python -m benchmarks``: run the benchmark cases and print their table."""

import sys

from benchmarks.run import main

sys.exit(main())
