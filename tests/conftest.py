"""Shared test configuration. Keep it small: area fixtures live in tests/<area>/conftest.py.

With ``--import-mode=importlib`` test folders are not put on ``sys.path`` by pytest, so each
folder's helper modules (``rawhttp``, ``mp_helpers`` ...) are made importable here; their names
are unique across folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for _folder in sorted(p for p in _HERE.iterdir() if p.is_dir() and not p.name.startswith(".")):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
