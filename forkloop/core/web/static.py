"""Owner: bodies-and-files (issue 5). See docs/dev/architecture.md."""

from __future__ import annotations

__all__: list[str] = []
