"""``python -m imdsrender``: the same as the ``imdsrender`` console script."""

import sys

from .cli import main

sys.exit(main())
