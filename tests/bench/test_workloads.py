"""Smoke runs of the issue-17 workloads: each runs under --quick, every peer starts and answers,
and the result carries the fields the report and the chart need. No figure is judged here."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
import pytest
import run
import workloads

GRANIAN = importlib.util.find_spec("granian") is not None
StartPeer = Callable[..., common.ServerProcess]  # the start_peer fixture of conftest.py
HTTP_PEERS = ("forkloop", "aiohttp", "uvicorn", "granian-rsgi", "granian-asgi")


def needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install -y {tool})")


def run_quick(name: str, tmp_path: Path) -> dict[str, Any]:
    """bench/<name>.py's measure(quick=True) through run.py's own runner (own process group)."""
    entry = run.run_extra(name, quick=True, timeout_s=240, workdir=tmp_path)
    assert entry["status"] == "ok", entry
    result: dict[str, Any] = entry["result"]
    return result


def assert_peers(result: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Every peer started and answered GET / right; granian may only be missing, with the
    reason said."""
    for key in keys:
        status = result["peers"][key]
        if key.startswith("granian") and not GRANIAN:
            assert status == {"status": "skipped", "reason": status["reason"]}
            assert "granian is not installed" in status["reason"]
        else:
            assert status == {"status": "ok"}, (key, status)


def assert_measured(row: dict[str, Any]) -> None:
    assert row["rounds"] >= 1
    assert row["non_2xx"] == 0
    assert row["cpu_us_per_req"] is not None, row  # None: no request was answered
    assert row["cpu_us_per_req"] > 0


def assert_report_shape(result: dict[str, Any]) -> None:
    assert result["title"]
    assert result["rows"]
    assert all(isinstance(r, dict) for r in result["rows"])
    assert result["chart"]["panels"]
    for panel in result["chart"]["panels"]:
        assert panel["groups"]
        assert all(panel["groups"].values())


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("name", "case"), [("bench_connclose", "conn-close"), ("bench_tls", "tls keep-alive")]
)
def test_wrk_workloads_measure_every_peer(
    tmp_path: Path, wrk_path: str, name: str, case: str
) -> None:
    needs("openssl")
    result = run_quick(name, tmp_path)
    assert_peers(result, HTTP_PEERS)
    rows = result["summary"][case]
    for key in ("forkloop", "aiohttp", "uvicorn"):
        assert_measured(rows[key])
        assert rows[key]["rps"] > 0
    assert rows["aiohttp"]["ratio_to_aiohttp"] == pytest.approx(1.0)
    assert rows["forkloop"]["cpu_ratio_to_aiohttp"] > 0
    assert_report_shape(result)
    assert {"server", "vs aiohttp", "server CPU µs/req", "vs aiohttp by CPU"} <= set(
        result["rows"][0]
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_idle_mix_reports_p99_and_rss_per_connection(tmp_path: Path) -> None:
    result = run_quick("bench_idle_mix", tmp_path)
    assert_peers(result, ("forkloop", "aiohttp", "uvicorn", "granian-rsgi"))
    (rows,) = result["summary"].values()
    for key in ("forkloop", "aiohttp", "uvicorn"):
        assert_measured(rows[key])
        assert rows[key]["p99_ms"] > 0
        assert rows[key]["rss_kib_per_connection"] is not None
        assert rows[key]["idle_closed_by_server"] == 0  # the idle connections stayed open
    assert rows["aiohttp"]["p99_ms_vs_aiohttp"] == pytest.approx(1.0)
    assert result["settings"]["connections"] > result["settings"]["active"]
    assert_report_shape(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_latency_at_fixed_rate_reports_percentiles(tmp_path: Path, wrk_path: str) -> None:
    result = run_quick("bench_latency", tmp_path)
    assert_peers(result, ("forkloop", "aiohttp", "uvicorn", "granian-rsgi"))
    assert result["aiohttp_max_rps"] > 0
    assert set(result["summary"]) == {"50% of aiohttp max", "90% of aiohttp max"}
    for rows in result["summary"].values():
        for key in ("forkloop", "aiohttp"):
            assert_measured(rows[key])
            assert 0 < rows[key]["p50_ms"] <= rows[key]["p99_ms"] <= rows[key]["p999_ms"]
            assert rows[key]["client_worst_lag_ms"] is not None
    assert_report_shape(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_multiworker_reports_cpu_per_request_and_spread(tmp_path: Path, wrk_path: str) -> None:
    result = run_quick("bench_multiworker", tmp_path)
    for key in ("forkloop", "gunicorn", "uvicorn"):
        assert result["peers"][key] == {"status": "ok"}, result["peers"][key]
    if GRANIAN:
        assert result["peers"]["granian"] == {"status": "ok"}
    (rows,) = result["summary"].values()
    for key in ("forkloop", "gunicorn", "uvicorn"):
        assert_measured(rows[key])
        assert rows[key]["spread"] >= 1.0
    # Both workers of each server were found (two per-worker CPU readings per run).
    assert all(len(r["worker_cpu_s"]) == 2 for r in result["runs"])
    assert "not comparable on 2 cores" in result["note"]
    assert "not comparable" in result["title"]
    assert_report_shape(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_websocket_syscalls_per_message(tmp_path: Path) -> None:
    needs("strace")
    result = run_quick("bench_ws_syscalls", tmp_path)
    if "skipped" in result:
        pytest.skip(result["skipped"])  # e.g. ptrace is not allowed in this container
    for window in ("window 1", "window 16"):
        for server in ("forkloop", "aiohttp"):
            row = result["per_message"][window][server]
            assert row["total"] > 0
            assert row["read"] > 0
            assert row["write"] > 0
    assert_report_shape(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_static_files_against_aiohttp_and_nginx(tmp_path: Path, wrk_path: str) -> None:
    needs("nginx")
    result = run_quick("bench_static", tmp_path)
    for server in ("forkloop", "aiohttp", "nginx"):
        for fname in ("1mb", "100mb"):
            assert result[server][fname]["mb_s"] > 0
    assert set(result["ratio_to_nginx"]) == {"forkloop", "aiohttp"}
    assert_report_shape(result)


def test_strace_summary_is_parsed() -> None:
    import bench_ws_syscalls

    text = (
        "syscall            calls    errors\n"
        "---------------- --------- ---------\n"
        "epoll_wait             12\n"
        "write                 400\n"
        "read                  401        1\n"
        "---------------- --------- ---------\n"
        "total                 813        1\n"
    )
    assert bench_ws_syscalls.parse_strace_summary(text) == {
        "epoll_wait": 12,
        "write": 400,
        "read": 401,
        "total": 813,
    }


def test_ws_syscalls_without_strace_is_a_skip_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bench_ws_syscalls

    monkeypatch.setattr(bench_ws_syscalls, "find_strace", lambda: None)
    result = bench_ws_syscalls.measure(quick=True)  # the servers start, and are stopped
    assert result["skipped"] == "strace is not installed (apt-get install -y strace)"
    assert "Skipped: strace is not installed" in result["markdown"]


def test_a_server_that_exits_during_the_load_gives_no_figures(start_peer: StartPeer) -> None:
    """Another process may be answering on its port still: what the load measured is not it."""
    server = start_peer("ceiling")

    def load() -> dict[str, Any]:
        server.stop()  # by PID, as every harness stops its servers
        return {"requests": 100}

    with pytest.raises(
        common.BenchError, match=r"ceiling exited \(status 0\) during the benchmark"
    ):
        workloads.measured(server, load)
