"""The examples in docs/index.md and docs/migrating-from-aiohttp.md do what the pages say.

The 30-second example is written to a file and served with `forkloop serve` exactly as the page
shows (a real subprocess on a free loopback port); the page's expected output is read from the
comment after the curl command. The migration page's `Limits` snippet is run, and the logger
names its table promises are compared with the ones forkloop really uses.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INDEX = ROOT / "docs" / "index.md"
MIGRATING = ROOT / "docs" / "migrating-from-aiohttp.md"


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
def test_thirty_second_example_serves_as_shown(tmp_path: Path) -> None:
    if not (ROOT / "forkloop" / "cli.py").exists():
        pytest.skip("forkloop/cli.py not written yet (issue 6)")
    example = section(INDEX.read_text(), "30-second example")
    (code,) = fenced(example, "python")
    (shell,) = fenced(example, "sh")
    filename = code.splitlines()[0].removeprefix("# ").strip()
    (tmp_path / filename).write_text(code)

    serve, *curls = [line for line in shell.splitlines() if line.strip()]
    argv = shlex.split(serve)
    assert argv[0].endswith("forkloop")
    assert argv[1] == "serve"
    port, metrics_port = free_port(), free_port()
    argv = [a.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for a in argv]
    argv = [a.replace("127.0.0.1:9100", f"127.0.0.1:{metrics_port}") for a in argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forkloop", *argv[1:]],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while get(base + "/-/readyz") is None and proc.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        # "curl URL   # expected output" lines: the first shows the app's answer.
        url, _, expected = curls[0].partition("#")
        answer = get(shlex.split(url)[-1].replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
        assert answer == (200, expected.strip())
        assert get(base + "/") == (200, "Hello, world!")
        readyz = get(base + "/-/readyz")
        assert readyz is not None
        assert readyz[0] == 200
        proc.send_signal(signal.SIGINT)  # the page's Ctrl-C
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group we started
            proc.wait(timeout=10)


async def test_limits_snippet_reaches_the_server() -> None:
    snippet = next(c for c in fenced(MIGRATING.read_text(), "python") if "Limits" in c)
    from forkloop import web

    namespace: dict[str, object] = {"app": web.Application()}
    exec(compile(snippet, "migrating-from-aiohttp.md", "exec"), namespace)
    runner = namespace["runner"]
    assert isinstance(runner, web.AppRunner)
    await runner.setup()
    try:
        assert runner.server is not None
        limits = runner.server.limits
        assert limits.max_header_bytes == 128 * 1024
        assert limits.header_timeout_s == 30
    finally:
        await runner.cleanup()


def test_logger_names_in_the_table_are_forkloops() -> None:
    (row,) = [line for line in MIGRATING.read_text().splitlines() if line.startswith("| Loggers")]
    promised = set(re.findall(r"`(forkloop\.\w+)`", row))
    assert promised == {"forkloop.access", "forkloop.server", "forkloop.web"}
    from forkloop import web
    from forkloop.core.web import log

    used = {log.access_logger.name, log.server_logger.name, log.web_logger.name}
    assert used == promised
    assert web.Application().logger.name == "forkloop.web"


def test_quickstart_commands_are_the_readmes_and_the_makefiles() -> None:
    quickstart = (ROOT / "docs" / "quickstart.md").read_text()
    commands = [line.strip() for line in fenced(quickstart, "sh")[0].splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "pytest"):
        assert re.search(rf"^{target}:", makefile, re.M), f"no `{target}` target in the Makefile"
    assert "PYTEST_ARGS" in makefile
    readme = ROOT / "README.md"
    if readme.exists():
        text = readme.read_text()
        for command in commands:
            assert command in text, f"README.md lacks the quickstart command `{command}`"
