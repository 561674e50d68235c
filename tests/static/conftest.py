"""Fixtures for static-file tests (``serve`` is shared, in tests/conftest.py; helpers live in
static_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from static_helpers import make_tree


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tree(tmp_path)
