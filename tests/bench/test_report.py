"""The harness's arithmetic and rendering: wrk parsing, medians, ratios, checks, docs, chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import common
import pytest
import report

WRK_STDOUT = """Running 1s test @ http://127.0.0.1:1234/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   180.00us   50.00us   2.00ms   90.00%
  40000 requests in 1.00s, 5.00MB read
Requests/sec:  40000.00
Transfer/sec:      5.00MB
WRKJSON {"requests": 40000, "duration_us": 1000000, "bytes": 5000000, "errors_connect": 1, \
"errors_read": 2, "errors_write": 0, "errors_status": 3, "errors_timeout": 4, \
"latency_mean_us": 180.0, "latency_p50_us": 170, "latency_p90_us": 250, "latency_p99_us": 900, \
"latency_max_us": 2000}
"""


def test_parse_wrk_output_reads_the_lua_line() -> None:
    result = common.parse_wrk_output(WRK_STDOUT)
    assert result.requests == 40000
    assert result.rps == pytest.approx(40000.0)
    assert result.errors == 1 + 2 + 0 + 4
    assert result.non_2xx == 3
    assert result.latency_p99_ms == pytest.approx(0.9)
    assert result.latency_max_ms == pytest.approx(2.0)


def test_parse_wrk_output_without_the_line_is_a_clear_error() -> None:
    with pytest.raises(common.BenchError, match="wrk printed no result line"):
        common.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def run_(peer: str, round_: int, rps: float, scenario: str = "plaintext") -> dict[str, Any]:
    return {
        "peer": peer,
        "round": round_,
        "scenario": scenario,
        "rps": rps,
        "latency_p99_ms": rps / 10000,
        "errors": 0,
        "non_2xx": 0,
        "cpu_us_per_req": 1e6 / rps,
    }


RUNS = [
    run_("forkloop", 1, 90000),
    run_("aiohttp", 1, 40000),
    run_("forkloop", 2, 80000),
    run_("aiohttp", 2, 50000),
    run_("forkloop", 3, 100000),
    run_("aiohttp", 3, 45000),
    run_("forkloop-metrics", 1, 87300),  # 3 % below forkloop in its round
    run_("forkloop-metrics", 2, 70400),  # 12 % below
    run_("forkloop-metrics", 3, 98000),  # 2 % below -> median cost 3 %
    run_("forkloop", 1, 70000, "json"),
    run_("aiohttp", 1, 40000, "json"),
]


def test_summarize_takes_medians_of_rounds_and_ratios_to_aiohttp() -> None:
    summary = report.summarize(RUNS)
    forkloop = summary["plaintext"]["forkloop"]
    assert forkloop["rps_median"] == 90000
    assert forkloop["rps_rounds"] == [90000, 80000, 100000]
    assert forkloop["ratio_to_aiohttp"] == pytest.approx(90000 / 45000)
    assert summary["plaintext"]["aiohttp"]["ratio_to_aiohttp"] == pytest.approx(1.0)
    assert summary["json"]["forkloop"]["ratio_to_aiohttp"] == pytest.approx(1.75)
    assert forkloop["latency_p99_ms_median"] == pytest.approx(9.0)
    # cpu_us_per_req = 1e6 / rps in RUNS: by CPU forkloop is 90000 / 45000 = 2x aiohttp.
    assert forkloop["cpu_us_per_req_median"] == pytest.approx(1e6 / 90000)
    assert forkloop["cpu_ratio_to_aiohttp"] == pytest.approx(2.0)


def test_summarize_without_aiohttp_has_no_ratio() -> None:
    summary = report.summarize([run_("ceiling", 1, 100000)])
    assert summary["plaintext"]["ceiling"]["ratio_to_aiohttp"] is None


def test_checks_give_verdicts_and_pair_the_metrics_cost_by_round() -> None:
    items = {c["name"]: c for c in report.checks(report.summarize(RUNS), RUNS, {})}
    plain = items["forkloop plaintext >= 2x aiohttp req/s"]
    assert plain["ok"] is True
    assert plain["value"] == pytest.approx(2.0)
    assert items["forkloop json >= 2x aiohttp req/s"]["ok"] is False
    metrics = items["metrics on costs <= 5% of plaintext req/s"]
    assert metrics["value"] == pytest.approx(0.03)
    assert metrics["ok"] is True
    # cpu_us_per_req = 1e6 / rps in RUNS, so the CPU view gives the same per-round ratios.
    assert metrics["value_by_cpu"] == pytest.approx(0.03)


def test_checks_say_why_a_figure_is_missing() -> None:
    items = report.checks({}, [], {"forkloop-metrics": "forkloop.metrics.setup does not exist"})
    metrics = items[-1]
    assert metrics["ok"] is None
    assert "setup does not exist" in metrics["note"]
    assert "not measured" in report.checks_markdown(items)


def results_fixture() -> dict[str, Any]:
    summary = report.summarize(RUNS)
    return {
        "started_at": "2026-11-21T06:00:00Z",
        "command": "python bench/run.py",
        "settings": {
            "quick": False,
            "connections": 64,
            "threads": 1,
            "duration_s": 5.0,
            "rounds": 3,
            "warmup_s": 2.0,
            "pin": True,
            "server_cpu": 0,
            "client_cpu": 1,
        },
        "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "load_average": [0.1, 0.1, 0.1]},
        "load_average_end": [1.0, 0.5, 0.2],
        "peers": {
            "forkloop": {"label": "forkloop"},
            "forkloop-metrics": {"label": "forkloop + metrics"},
            "aiohttp": {"label": "aiohttp + uvloop"},
        },
        "runs": RUNS,
        "summary": summary,
        "checks": report.checks(summary, RUNS, {}),
        "notes": ["a note"],
        "extras": {
            "bench_routing": {
                "status": "ok",
                "result": {"title": "Routing", "rows": [{"routes": 10, "us": 1.5}], "raw": 7},
            },
            "bench_upload": {"status": "ok", "result": {"mb_s": {"forkloop": 700.0}, "ratio": 1.1}},
            "bench_ws": {"status": "timeout", "error": "no result within 900 s"},
            "bench_static": {"status": "ok", "result": {"markdown": "| a |\n|---|\n| 1 |"}},
        },
    }


def test_markdown_has_the_table_checks_notes_and_extras() -> None:
    text = report.markdown(results_fixture())
    x = report.TIMES
    assert f"| plaintext | forkloop | 90,000 | 2.00{x} | 9.00 | 11.1 | 2.00{x} |" in text
    assert f"| json | aiohttp + uvloop | 40,000 | 1.00{x} |" in text
    assert (
        f"**PASS** forkloop plaintext >= 2x aiohttp req/s: 2.00{x} "
        f"(by server CPU per request: 2.00{x}); 80% of the 2.5{x} long-run target"
    ) in text
    assert "**FAIL** forkloop json" in text
    assert "+3.0% cost (by server CPU per request: +3.0%)" in text
    assert "- a note" in text
    assert "#### Routing" in text
    assert "| 10 | 1.5 |" in text
    assert "| raw |" not in text  # rows given: the other keys stay in the JSON
    assert "| mb_s.forkloop | 700 |" in text
    assert "| ratio | 1.1 |" in text
    assert "timeout: no result within 900 s" in text
    assert "| a |\n|---|\n| 1 |" in text
    assert "wrk -t1 -c64 -d5s, 3 interleaved round(s)" in text


def test_update_docs_replaces_only_the_marked_block(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Bench\n\nbefore\n\n{report.DOCS_BEGIN}\nold\n{report.DOCS_END}\n\nafter\n")
    assert report.update_docs(doc, "new figures\n")
    text = doc.read_text()
    assert "old" not in text
    assert f"{report.DOCS_BEGIN}\n\nnew figures\n\n{report.DOCS_END}" in text
    assert text.startswith("# Bench\n\nbefore\n")
    assert text.endswith("\nafter\n")
    doc.write_text("no markers\n")
    assert not report.update_docs(doc, "x")
    assert doc.read_text() == "no markers\n"


def test_chart_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = report.chart(results_fixture(), tmp_path / "chart.png")
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_rebuilds_markdown_from_a_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(results_fixture()))
    report.main([str(results)])
    assert "| plaintext | forkloop | 90,000 |" in capsys.readouterr().out


def test_a_noisy_run_marks_every_verdict_provisional() -> None:
    noisy = [{**r, "others_on_server_cpu": 0.4, "others_on_client_cpu": 0.0} for r in RUNS]
    assert report.is_noisy(noisy)
    assert not report.is_noisy([{**r, "others_on_server_cpu": 0.02} for r in RUNS])
    items = report.checks(report.summarize(noisy), noisy, {})
    text = report.checks_markdown(items)
    assert len(items) == 5  # issue 2 (x2), issue 17 >= 3x (x2), metrics cost
    assert text.count("(provisional: noisy machine)") == len(items)


def test_issue17_checks_compare_forkloop_with_granian_by_rps_and_cpu() -> None:
    runs = [
        *RUNS,
        run_("granian-rsgi", 1, 85000),
        run_("granian-rsgi", 2, 85000),
        run_("granian-asgi", 1, 95000),
        run_("granian-asgi", 2, 95000),
    ]
    items = {c["name"]: c for c in report.checks(report.summarize(runs), runs, {})}
    triple = items["forkloop plaintext >= 3x aiohttp req/s (issue 17)"]
    assert triple["ok"] is False
    assert triple["value"] == pytest.approx(2.0)
    rsgi = items["forkloop plaintext ahead of granian-rsgi (req/s and CPU/req; issue 17)"]
    assert rsgi["ok"] is True
    assert rsgi["value"] == pytest.approx(90000 / 85000)
    assert rsgi["value_by_cpu"] == pytest.approx(90000 / 85000)
    asgi = items["forkloop plaintext ahead of granian-asgi (req/s and CPU/req; issue 17)"]
    assert asgi["ok"] is False


def test_workload_chart_writes_a_png_per_result_with_a_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = {
        "chart": {
            "title": "t",
            "panels": [
                {
                    "title": "req/s",
                    "unit": "req/s",
                    "lower_is_better": False,
                    "groups": {"conn-close": {"forkloop": 2.0, "aiohttp": 1.0}},
                },
                {
                    "title": "CPU",
                    "unit": "µs",
                    "lower_is_better": True,
                    "groups": {"conn-close": {"forkloop": 20.0, "aiohttp": float("nan")}},
                },
            ],
        }
    }
    path = report.workload_chart(result, tmp_path / "w.png")
    assert path is not None
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert report.workload_chart({"rows": []}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
