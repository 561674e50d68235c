"""``python -m forkloop serve APP``: the same as the ``forkloop`` console script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
