"""Smoke run of bench/bench_overload.py (issue 18): every server starts, the protected forkloop
sheds with 503s and the unprotected servers do not, and the result carries the figures the
report needs. The figures themselves are not judged here (a loaded machine would fail them);
docs/supervisor.md reports a full run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import run

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_overload_benchmark_quick(tmp_path: Path) -> None:
    entry = run.run_extra("bench_overload", quick=True, timeout_s=240, workdir=tmp_path)
    assert entry["status"] == "ok", entry
    result = entry["result"]
    assert result["peers"] == {
        key: {"status": "ok"}
        for key in ("forkloop-protected", "forkloop", "aiohttp", "uvicorn-limited")
    }
    assert result["capacity_rps"] > 0
    assert result["offered_rps"] == pytest.approx(3 * result["capacity_rps"])
    rows = result["summary"]
    protected = rows["forkloop-protected"]
    assert protected["shed_fraction"] > 0  # 3x capacity: some requests were refused
    assert protected["admitted_p99_ms"] is not None
    assert protected["shed_p99_ms"] is not None
    for key in ("forkloop", "aiohttp"):
        assert rows[key]["shed_fraction"] == 0
        assert rows[key]["overloaded"]["other_status"] == 0
    for key, row in rows.items():
        assert row["unloaded_p99_ms"] is not None, key
        assert row["errors"] == 0, key
    assert result["rows"]
    assert result["chart"]["panels"]
    assert "bench_overload" in run.discover_extras("all")  # run.py runs it as an extra


def test_loadgen_overload_mode_rejects_bad_arguments() -> None:
    for extra in (["--path", "work"], ["--drain", "0"], ["--duration", "500"]):
        done = subprocess.run(
            [sys.executable, str(BENCH_DIR / "loadgen.py"), "overload", "--port", "1", *extra],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, (extra, done.stderr)
        assert "invalid choice" not in done.stderr  # the mode exists; the value was refused
