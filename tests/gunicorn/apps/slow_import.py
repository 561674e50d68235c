"""An app module that takes a while to import, like one that warms caches at import time."""

import time

from fl_app import app

time.sleep(1.5)

__all__ = ["app"]
