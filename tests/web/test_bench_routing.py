"""bench/bench_routing.py runs (quick mode) and reports what the harness expects.

Timing is not asserted here: the figures belong to the benchmark report (docs/web/routing.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_measure_quick_reports_both_tables() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import bench_routing
    finally:
        sys.path.remove(str(BENCH))
    result = bench_routing.measure(lookups=400, rounds=1, quick=True)
    assert result["ns_per_resolve_10"] > 0
    assert result["ns_per_resolve_1000"] > 0
    assert result["ratio_1000_vs_10"] > 0
    assert [row["table"] for row in result["rows"]][:2] == ["10 routes", "1,000 routes"]
    assert len(bench_routing.route_specs(1000)) == 1000
