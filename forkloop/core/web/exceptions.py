"""Owner: web-API (issue 3). See docs/dev/architecture.md."""

from __future__ import annotations

__all__: list[str] = []
