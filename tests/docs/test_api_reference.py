"""docs/api.md is generated from the code and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_api", ROOT / "scripts" / "gen_api_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    assert (ROOT / "docs" / "api.md").read_text() == expected, (
        "docs/api.md is stale: run `python scripts/gen_api_reference.py`"
    )
    for name in ("Application", "run_app", "WebSocketResponse", "FileResponse", "json_response"):
        assert f"**`{name}" in expected
