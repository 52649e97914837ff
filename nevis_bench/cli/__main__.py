"""``python -m nevis_bench.cli``: the same as the ``nevis-bench`` command."""

import sys

from nevis_bench.cli import main

sys.exit(main())
