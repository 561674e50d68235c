"""Requests spread over workers: 4 workers, 64 keep-alive connections (issue 6 acceptance).

wrk drives the load; each worker reports the requests it served when it stops, and ``ss``
shows how the connections were spread while the load ran.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PYTHON

pytestmark = pytest.mark.slow
SPREAD = str(Path(__file__).with_name("spread.py"))
MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def measure(*args: str, prefix: tuple[str, ...] = ()) -> dict[str, object]:
    proc = subprocess.run(
        [*prefix, PYTHON, SPREAD, *args], capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_shared_socket_spreads_requests_evenly() -> None:
    result = measure()
    print(f"spread without --reuse-port: {result}")
    assert result["failed"] == 0
    assert result["max_over_mean"] < 2.0, result  # type: ignore[operator]
    assert 0 not in result["per_worker"]  # type: ignore[operator]


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _netns_available(),
    reason="needs `unshare -n` (root) to set "
    "net.ipv4.tcp_migrate_req=1 in a private network namespace",
)
def test_reuse_port_spread_in_a_private_network_namespace() -> None:
    result = measure("--reuse-port", "--netns", prefix=("unshare", "-n"))
    print(f"spread with --reuse-port (kernel hash): {result}")
    assert result["failed"] == 0
    assert 0 not in result["per_worker"]  # type: ignore[operator]


@pytest.mark.skipif(
    MIGRATE_REQ.exists() and MIGRATE_REQ.read_text().strip() == "1",
    reason="this kernel migrates listener queues: --reuse-port is allowed",
)
def test_reuse_port_is_refused_where_a_closed_listener_drops_its_queue(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from forkloop import web\napp = web.Application()\n")
    proc = subprocess.run(
        [sys.executable, "-m", "forkloop", "serve", "app:app", "-b", "127.0.0.1:0", "--reuse-port"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "--reuse-port refused: net.ipv4.tcp_migrate_req is" in lines[0]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.skipif(
    not _netns_available(),
    reason="needs `unshare -n` (root) to set net.ipv4.tcp_migrate_req=1 in a private netns",
)
def test_reuse_port_rolling_reloads_under_load_lose_nothing() -> None:
    result = measure("--reuse-port", "--netns", "--reloads", "5", prefix=("unshare", "-n"))
    print(f"--reuse-port, 5 rolling reloads under wrk: failed={result['failed']}")
    assert result["failed"] == 0  # each retiring listener's queue migrated to a sibling
