"""bench/run.py end to end: a tiny real run, the other benchmarks folded in, clear errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import common
import pytest
import run

RUN_PY = common.BENCH_DIR / "run.py"


@pytest.mark.slow
def test_tiny_run_measures_peers_and_writes_results(tmp_path: Path, wrk_path: str) -> None:
    chart = tmp_path / "chart.png"
    argv = [
        sys.executable, str(RUN_PY), "--quick", "--duration", "1", "--warmup", "0",
        "--rounds", "2", "--connections", "4", "--peers", "aiohttp,ceiling",
        "--results-dir", str(tmp_path), "--extras", "none", "--chart", str(chart),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "latest.json").read_text())
    summary = results["summary"]
    for scenario in ("plaintext", "json"):
        for peer in ("aiohttp", "ceiling"):
            row = summary[scenario][peer]
            assert row["rps_median"] > 0
            assert len(row["rps_rounds"]) == 2
            assert row["errors"] == 0
            assert row["non_2xx"] == 0
            assert row["rss_mib_max"] > 1
            assert row["cpu_us_per_req_median"] > 0
        assert summary[scenario]["aiohttp"]["ratio_to_aiohttp"] == pytest.approx(1.0)
    # A, B per test per round: the order of runs is interleaved, not A A B B.
    order = [(r["round"], r["scenario"], r["peer"]) for r in results["runs"]]
    assert order[:4] == [
        (1, "plaintext", "aiohttp"),
        (1, "plaintext", "ceiling"),
        (1, "json", "aiohttp"),
        (1, "json", "ceiling"),
    ]
    assert "| plaintext | aiohttp + uvloop |" in done.stdout
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert results["machine"]["cpu_count"] >= 1


def test_unknown_peer_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN_PY), "--peers", "nginx"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown nginx" in done.stderr


def test_missing_wrk_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(common.BenchError, match=r"apt-get install -y wrk"):
        common.find_wrk(install=False)


def write_bench(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


def test_other_benchmarks_are_folded_in(tmp_path: Path) -> None:
    write_bench(
        tmp_path,
        "bench_fake",
        """
        def measure(quick=False):
            return {"title": "Fake", "quick": quick, "rows": [{"n": 1}]}

        def main():
            print(measure())
        """,
    )
    write_bench(tmp_path, "bench_broken", "def measure():\n    raise RuntimeError('boom')\n")
    entry = run.run_extra("bench_fake", True, 60, tmp_path, bench_dir=tmp_path)
    assert entry["status"] == "ok"
    assert entry["result"] == {"title": "Fake", "quick": True, "rows": [{"n": 1}]}
    broken = run.run_extra("bench_broken", False, 60, tmp_path, bench_dir=tmp_path)
    assert broken["status"] == "failed"
    assert "RuntimeError: boom" in broken["error"]
    assert run.run_extra("bench_absent", False, 60, tmp_path, bench_dir=tmp_path)["status"] == (
        "missing"
    )


def test_a_benchmark_over_its_time_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    write_bench(
        tmp_path,
        "bench_slow",
        f"""
        import subprocess, sys, time

        def measure():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            open({str(pid_file)!r}, "w").write(str(child.pid))
            time.sleep(60)
        """,
    )
    started = time.monotonic()
    entry = run.run_extra("bench_slow", False, 6, tmp_path, bench_dir=tmp_path)
    assert entry["status"] == "timeout"
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # A killed child of a dead parent is reaped by init; until then it is a zombie.
        if "zombie" in Path(f"/proc/{child}/status").read_text().lower():
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the benchmark's child {child} outlived the timeout")


def test_discover_extras_selection() -> None:
    assert run.discover_extras("none") == []
    assert run.discover_extras("routing,bench_ws.py") == ["bench_routing", "bench_ws"]
    assert run.discover_extras("all") == sorted(p.stem for p in common.BENCH_DIR.glob("bench_*.py"))


def test_others_share_is_what_the_cpu_did_besides_our_process() -> None:
    assert run.others_share((10.0, 20.0), (14.0, 25.0), ours_s=3.0) == pytest.approx(0.2)
    assert run.others_share((10.0, 20.0), (14.0, 25.0), ours_s=5.0) == 0.0  # clock granularity
    assert math.isnan(run.others_share((0.0, 1.0), (0.0, 1.0), ours_s=0.0))  # no time passed


def test_noise_notes_flag_a_busy_machine_and_an_unsaturated_server() -> None:
    machine = {"load_average": (0.1, 0.1, 0.1)}
    quiet = [
        {"scenario": "plaintext", "peer": "aiohttp", "server_busy": 0.97,
         "others_on_server_cpu": 0.01, "others_on_client_cpu": 0.02},
    ]  # fmt: skip
    (note,) = run.noise_notes(machine, quiet)
    assert note.endswith("a quiet machine")
    busy = [
        {"scenario": "json", "peer": "ceiling", "server_busy": 0.6,
         "others_on_server_cpu": 0.3, "others_on_client_cpu": 0.0},
    ]  # fmt: skip
    notes = run.noise_notes({"load_average": (1.5, 1.0, 1.0)}, busy)
    assert "not quiet" in notes[0]
    assert notes[1].endswith("understates them): ceiling json 60%")
    assert "load average was 1.50" in notes[2]


def test_unavailable_cpu_is_a_clear_error(wrk_path: str) -> None:
    done = subprocess.run(
        [sys.executable, str(RUN_PY), "--server-cpu", "4096", "--extras", "none", "--no-docs"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "CPUs 4096 and 1 are not both available" in done.stderr


def test_servers_that_crash_or_answer_wrongly_are_left_out_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong(port: int) -> list[str]:  # a directory listing is not "Hello, World!"
        return [sys.executable, "-m", "http.server", str(port), "--bind", common.HOST,
                "--directory", str(tmp_path)]  # fmt: skip

    def crash(port: int) -> list[str]:
        return [sys.executable, "-c", "raise SystemExit('no such framework')"]

    monkeypatch.setitem(run.PEERS, "wrong", run.Peer("wrong", "wrong", ("plaintext",), wrong))
    monkeypatch.setitem(run.PEERS, "crash", run.Peer("crash", "crash", ("plaintext",), crash))
    args = run.parse_args(["--peers", "wrong,crash,ceiling", "--scenarios", "plaintext"])
    wrk = common.WrkConfig(wrk="wrk", lua_script=tmp_path / "unused.lua")
    bench = run.HttpBench(args, wrk, notes=[])
    try:
        bench.start_all()
        assert list(bench.servers) == ["ceiling"]
    finally:
        bench.stop_all()
    assert bench.peer_status["wrong"]["status"] == "failed"
    assert "wrong answer to GET /: 200 'text/html" in bench.skipped["wrong"]
    assert bench.skipped["crash"] == "did not start (exit 1): no such framework"
    assert bench.peer_status["ceiling"]["status"] == "ok"


def test_a_port_taken_before_the_bind_is_retried_on_a_fresh_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "first-try"
    script = tmp_path / "flaky.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pathlib, runpy, sys
            marker = pathlib.Path({str(marker)!r})
            if not marker.exists():
                marker.touch()
                sys.exit("OSError: [Errno 98] Address already in use")
            sys.argv = ["ceiling.py", "--port", sys.argv[1]]
            runpy.run_path({str(common.PEERS_DIR / "ceiling.py")!r}, run_name="__main__")
            """
        )
    )

    def flaky(port: int) -> list[str]:
        return [sys.executable, str(script), str(port)]

    monkeypatch.setitem(run.PEERS, "flaky", run.Peer("flaky", "flaky", ("plaintext",), flaky))
    args = run.parse_args(["--peers", "flaky", "--scenarios", "plaintext"])
    bench = run.HttpBench(args, common.WrkConfig(wrk="wrk", lua_script=tmp_path / "x"), [])
    try:
        bench.start_all()
        assert bench.peer_status["flaky"]["status"] == "ok"
        status, _, body = common.http_get(bench.servers["flaky"].port, "/")
        assert (status, body) == (200, b"Hello, World!")
    finally:
        bench.stop_all()


def test_a_server_that_exited_is_left_out_with_a_reason_and_no_figures(
    tmp_path: Path, wrk_path: str
) -> None:
    args = run.parse_args(
        ["--peers", "ceiling", "--scenarios", "plaintext", "-d", "1", "-r", "1", "--warmup", "0"]
    )
    bench = run.HttpBench(args, common.WrkConfig(wrk=wrk_path, lua_script=tmp_path / "x"), [])
    try:
        bench.start_all()
        bench.servers["ceiling"].stop()  # its count of CPU stops: no figure may use it
        bench.run()
    finally:
        bench.stop_all()
    assert bench.runs == []
    assert bench.peer_status["ceiling"]["status"] == "failed"
    assert "ceiling exited (status 0) during the benchmark" in bench.skipped["ceiling"]
