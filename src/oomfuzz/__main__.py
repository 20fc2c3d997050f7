"""``python -m oomfuzz``: the same command line as the ``oomfuzz`` console script."""

import sys

from oomfuzz.cli import main

sys.exit(main())
