"""``python -m forkloop.web``: one-line errors for mistakes (a real process each)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forkloop.web", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("no_such_module_xyz:init", "unable to import no_such_module_xyz: ModuleNotFoundError"),
        ("examples.hello:nope", "module 'examples.hello' has no attribute 'nope'"),
        (".relative:init", "relative module names are not supported: '.relative'"),
        ("examples.hello", "is not in 'module:function' syntax"),
        ("examples.hello:hello", "must return a web.Application"),
        ("examples.hello:__doc__", "is not callable"),
    ],
)
def test_mistakes_give_one_line_and_exit_2(entry: str, message: str) -> None:
    result = run_cli("-P", "0", entry)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m forkloop.web: error: ")
    assert message in lines[0]
    assert result.stdout == ""


def test_import_error_inside_the_module_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("import not_installed_dep_xyz\n")
    result = run_cli("broken_app:init", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unable to import broken_app: ModuleNotFoundError" in result.stderr


def test_help_lists_the_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("-H HOSTNAME", "-P PORT", "-U PATH", "entry-func"):
        assert option in result.stdout


def test_extra_arguments_reach_init_func(tmp_path: Path) -> None:
    (tmp_path / "argv_app.py").write_text(
        "def init(argv):\n    raise SystemExit('argv=' + repr(argv))\n"
    )
    result = run_cli("argv_app:init", "--flag", "value", cwd=tmp_path)
    assert "argv=['--flag', 'value']" in result.stderr


def test_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("-H", "127.0.0.1", "-P", str(port), "examples.hello:init_func")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "cannot listen" in result.stderr
    assert "address already in use" in result.stderr
