"""``--log-format json`` end to end: every line the master and the workers write is one JSON
object, across a worker that cannot import its app, a blocked event loop's traceback dump and
a usage error before logging is set up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import Served, alive
from .test_e2e import http_get

pytestmark = pytest.mark.slow

APP = """\
import time

from forkloop import web


async def pid(request):
    return web.Response(text="ok")


async def block(request):
    time.sleep(60)  # BLOCKING-LINE
    return web.Response(text="never")


app = web.Application()
app.router.add_get("/pid", pid)
app.router.add_get("/block", block)
"""


def records(text: str) -> list[dict[str, Any]]:
    """Every line as a JSON object; fails naming the first line that is not one."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{text[-3000:]}") from None
        assert isinstance(record, dict), line
        found.append(record)
    return found


@pytest.mark.parametrize("preload", [[], ["--preload"]], ids=["in-worker", "preload"])
def test_an_app_that_cannot_be_imported_logs_json_only(
    serve: Any, app_dir: Path, preload: list[str]
) -> None:
    (app_dir / "broken.py").write_text(
        "import warnings\n"
        "warnings.warn('forkloop-test-warning', stacklevel=1)\n"
        "import no_such_module_for_forkloop_tests\n"
    )
    served: Served = serve(
        "-w", "2", "--log-format", "json", *preload, ready=False, app="broken:app"
    )
    assert served.proc.wait(30) == 3
    logged = records(served.log)
    tracebacks = [r["exc_info"] for r in logged if "exc_info" in r]
    assert tracebacks, logged
    assert all("no_such_module_for_forkloop_tests" in t for t in tracebacks)
    assert any("Traceback (most recent call last)" in t for t in tracebacks)
    assert any("cannot import 'broken'" in r["message"] for r in logged if r["level"] == "error")
    assert {r["level"] for r in logged} <= {"debug", "info", "warning", "error", "critical"}
    assert any("forkloop-test-warning" in r["message"] for r in logged)  # Python's warnings
    print(f"boot failure: {len(logged)} lines, all JSON, {len(tracebacks)} with a traceback")


def test_a_blocked_loop_dump_is_one_json_record(serve: Any, app_dir: Path) -> None:
    (app_dir / "jsonapp.py").write_text(APP)
    served: Served = serve("-w", "1", "--timeout", "2", "--log-format", "json", app="jsonapp:app")
    victim = served.workers()[0]
    with pytest.raises(OSError, match=r"closed|reset|timed out"):  # the worker is aborted
        http_get(served.port, "/block", timeout=8)
    served.wait_log(rf"worker {victim}: its traceback dump", timeout=10)
    served.wait_log(r"worker (\d+) ready \(slot", start=served.log.index("traceback dump"))
    assert http_get(served.port, "/pid")[0] == 200
    served.send(signal.SIGTERM)
    assert served.proc.wait(20) == 0
    assert not alive(victim)
    logged = records(served.log)
    dumps = [r for r in logged if "traceback" in r]
    assert len(dumps) == 1, dumps
    line = next(i for i, text in enumerate(APP.splitlines(), 1) if "BLOCKING-LINE" in text)
    assert "Fatal Python error: Aborted" in dumps[0]["traceback"]
    assert f'jsonapp.py", line {line} in block' in dumps[0]["traceback"]
    size = len(dumps[0]["traceback"])
    print(f"blocked loop: {len(logged)} lines, all JSON; the dump has {size} characters")


@pytest.mark.parametrize(
    "args", [["--log-format", "json", "-w", "0"], ["--log-format=json", "--bind", "nonsense"]]
)
def test_a_usage_error_before_logging_is_one_json_line(app_dir: Path, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forkloop", "serve", "app:app", *args],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    (record,) = records(result.stderr)
    assert record["level"] == "error"
    assert record["message"]
