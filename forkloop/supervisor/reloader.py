"""``--reload`` (development): notice changed Python sources by polling their mtimes.

Owns: which files are watched (``*.py``, ``*.toml`` under the given roots, skipping virtual
environments, VCS and cache folders; at most ``max_files``) and change detection. The arbiter
polls it about once a second and answers a change with a rolling reload, as if sent HUP.

Imports: stdlib only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["FileWatcher"]

_SKIP = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "__pycache__",
        "node_modules",
        ".tox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "build",
        "dist",
    }
)
_SUFFIXES = (".py", ".toml")


class FileWatcher:
    def __init__(self, roots: Iterable[str], *, max_files: int = 10_000) -> None:
        self.roots = [os.path.abspath(root) for root in roots]
        self.max_files = max_files
        self._mtimes = self._scan()

    def _scan(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for root in self.roots:
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".")]
                for name in files:
                    if name.endswith(_SUFFIXES):
                        path = os.path.join(folder, name)
                        try:
                            found[path] = os.stat(path).st_mtime
                        except OSError:
                            continue
                        if len(found) >= self.max_files:
                            return found
        return found

    def changed(self) -> list[str]:
        """Paths added, removed or modified since the previous call."""
        current = self._scan()
        previous, self._mtimes = self._mtimes, current
        return sorted(
            path
            for path in current.keys() | previous.keys()
            if current.get(path) != previous.get(path)
        )
