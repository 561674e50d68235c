"""bench/bench_upload.py still runs: a small upload against both servers (real processes)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_upload_measures_both_servers() -> None:
    pytest.importorskip("aiohttp")
    sys.path.insert(0, str(BENCH))
    try:
        bench_upload = importlib.import_module("bench_upload")
        result = bench_upload.measure(quick=True, size_mb=8)
    finally:
        sys.path.remove(str(BENCH))
    for name in ("forkloop", "aiohttp"):
        assert result[name]["mb_s"] > 0
        assert result[name]["rss_growth_mib"] >= 0
    assert result["ratio_mb_s"] > 0
    assert set(result["targets"]) == {"ratio_min", "forkloop_rss_growth_max_mib"}
