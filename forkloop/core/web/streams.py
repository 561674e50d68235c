"""Owner: engine (issue 2). See docs/dev/architecture.md."""

from __future__ import annotations

__all__: list[str] = []
