"""docs/api.md is generated from the code and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_up_to_date() -> None:
    # In a fresh interpreter: where forkloop is mypyc-compiled (setup.py), the script renders
    # from the .py sources, which it can only ask for before forkloop is first imported.
    script = ROOT / "scripts" / "gen_api_reference.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('gen_api', {str(script)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "sys.stdout.write(module.render())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    expected = done.stdout
    assert (ROOT / "docs" / "api.md").read_text() == expected, (
        "docs/api.md is stale: run `python scripts/gen_api_reference.py`"
    )
    for name in ("Application", "run_app", "WebSocketResponse", "FileResponse", "json_response"):
        assert f"**`{name}" in expected
