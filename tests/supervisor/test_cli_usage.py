"""The ``forkloop`` command's usage errors: one line on stderr that says what is wrong, exit 2."""

from __future__ import annotations

import subprocess
import sys


def _forkloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forkloop", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_no_arguments_say_the_command_is_missing_in_one_line() -> None:
    result = _forkloop()
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("forkloop: error: missing command")
    assert "forkloop serve APP" in lines[0]


def test_unknown_command_is_one_line_too() -> None:
    result = _forkloop("srve")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "forkloop: error: unknown command 'srve' (try: forkloop serve APP)"
    ]


def test_a_bad_overload_option_is_one_line_and_exit_2() -> None:
    result = _forkloop("serve", "app:app", "--max-concurrency", "-3")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "forkloop: error: --max-concurrency: must be >= 1, got -3"
    ]
