"""Parsing helpers for the deployment checks (imported by tests/deploy/test_*.py).

The container image (deploy/Dockerfile) and the Kubernetes base (deploy/k8s/) are checked
statically (no Docker engine or cluster is needed). The tools that do the checking (hadolint,
yamllint, kubernetes-validate, kubectl) are looked up next to the running Python first, then on
PATH; a test that needs a missing one is skipped saying which package provides it.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "k8s"


def find_tool(name: str, install_hint: str) -> str:
    """Path of an executable from the venv's bin/ or PATH, or skip the test with a hint."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed ({install_hint})")
    return found


# --------------------------------------------------------------------------------------------
# Dockerfile: a small parser for the instructions this repository uses.


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case: FROM, RUN, ENTRYPOINT, ...
    args: str  # the rest of the logical line, continuation lines joined
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Logical instructions of a Dockerfile (comments dropped, `\\` continuations joined)."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also inside a continuation
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        keyword, _, rest = " ".join(buf).partition(" ")
        out.append(Instruction(keyword.upper(), rest.strip(), start))
        buf = []
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD; raises ValueError on shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"shell form, not an exec-form JSON array: {args!r}") from exc
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise ValueError(f"not an exec-form JSON array of strings: {args!r}")
    return value


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    froms = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[froms[-1] :]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def entrypoint_argv(instructions: list[Instruction]) -> list[str]:
    return exec_form(one(final_stage(instructions), "ENTRYPOINT").args)


# --------------------------------------------------------------------------------------------
# Kubernetes manifests.


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def container_argv(instructions: list[Instruction], container: dict[str, Any]) -> list[str]:
    """What the kubelet runs: `command` or the image ENTRYPOINT, then `args` or the image CMD."""
    command = container.get("command") or entrypoint_argv(instructions)
    if "args" in container:
        args = [str(a) for a in container["args"]]
    else:
        args = exec_form(one(final_stage(instructions), "CMD").args)
    return [*command, *args]


def cpu_quantity(value: str | float) -> float:
    """A Kubernetes CPU quantity ("2", "1.5", "500m") in cores."""
    text = str(value)
    if text.endswith("m"):
        return int(text[:-1]) / 1000
    return float(text)


def downward_cpu(value: str | float, divisor: str | float = "1") -> int:
    """What a resourceFieldRef exposes for requests.cpu: the quantity / divisor rounded up."""
    return max(1, math.ceil(cpu_quantity(value) / cpu_quantity(divisor)))


def port_by_name(container: dict[str, Any], name: str) -> int:
    for port in container.get("ports", []):
        if port.get("name") == name:
            return int(port["containerPort"])
    raise AssertionError(f"container has no port named {name!r}")


def option_value(argv: list[str], option: str) -> str:
    """The value of `--option V` or `--option=V` in argv (the last one wins, like argparse)."""
    value: str | None = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    if value is None:
        raise AssertionError(f"{option} not in {shlex.join(argv)}")
    return value


# --------------------------------------------------------------------------------------------
# HEALTHCHECK


def healthcheck_argv(dockerfile: list[Instruction]) -> list[str]:
    ins = one(final_stage(dockerfile), "HEALTHCHECK")
    options, sep, command = ins.args.partition("CMD ")
    assert sep, "HEALTHCHECK must use CMD"
    assert "--timeout=" in options
    assert "--interval=" in options
    return exec_form(command)


def run_healthcheck(argv: list[str], port: int) -> int:
    assert argv[0] == "python", "the slim image has python, not curl"
    script = argv[argv.index("-c") + 1]
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=15, check=False
    ).returncode
