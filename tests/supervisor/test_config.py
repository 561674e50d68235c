"""The configuration: CLI > FORKLOOP_* environment > --config file > defaults; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from forkloop.supervisor.config import ConfigError, available_cpus, load_config
from forkloop.supervisor.sockets import BindSpec


def test_defaults() -> None:
    config = load_config(["app:app"], {})
    assert config.app == "app:app"
    assert config.workers == available_cpus()
    assert config.binds == (BindSpec("tcp", host="127.0.0.1", port=8000),)
    assert config.graceful_timeout_s == 30
    assert config.timeout_s == 30
    assert config.drain_delay_s == 0
    assert config.max_requests == 0
    assert config.access_log
    assert config.log_format == "text"
    assert config.metrics_bind is None


def test_every_layer_and_its_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "forkloop.toml"
    toml.write_text(
        "app = \"pkg.mod:make_app(1, name='x')\"\nworkers = 3\n"
        'bind = ["unix:/tmp/a.sock", "[::1]:9000"]\ngraceful-timeout = 5\n'
        'max_requests = 50\nmax-worker-memory = "512M"\nreuse-port = false\n'
    )
    env = {
        "FORKLOOP_WORKERS": "5",
        "FORKLOOP_DRAIN_DELAY": "7.5",
        "FORKLOOP_PRELOAD": "yes",
        "FORKLOOP_METRICS_BIND": "0.0.0.0:9100",
        "WEB_CONCURRENCY": "9",
    }
    config = load_config(
        ["--config", str(toml), "-w", "2", "--max-requests-jitter", "4", "--no-access-log"], env
    )
    assert config.app == "pkg.mod:make_app(1, name='x')"
    assert config.workers == 2  # cli beats env beats file
    assert config.binds == (
        BindSpec("unix", path="/tmp/a.sock"),
        BindSpec("tcp", host="::1", port=9000),
    )
    assert config.graceful_timeout_s == 5
    assert config.drain_delay_s == 7.5
    assert config.max_requests == 50
    assert config.max_requests_jitter == 4
    assert config.max_worker_memory_bytes == 512 * 1024 * 1024
    assert config.preload
    assert not config.access_log
    assert config.metrics_bind == ("0.0.0.0", 9100)
    assert config.sources["workers"] == "cli"
    assert config.sources["drain_delay_s"] == "env"
    assert config.sources["max_requests"] == "file"


def test_web_concurrency_and_port_defaults() -> None:
    config = load_config(["a:b"], {"WEB_CONCURRENCY": "6", "PORT": "8080"})
    assert config.workers == 6
    assert config.binds == (BindSpec("tcp", host="0.0.0.0", port=8080),)


def test_repeated_and_comma_separated_binds() -> None:
    config = load_config(["a:b", "-b", "127.0.0.1:1", "-b", "fd://3,unix:/x"], {})
    assert [str(b) for b in config.binds] == ["127.0.0.1:1", "fd://3", "unix:/x"]
    env = load_config(["a:b"], {"FORKLOOP_BIND": "127.0.0.1:1 [::]:2"})
    assert [str(b) for b in env.binds] == ["127.0.0.1:1", "[::]:2"]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "missing APP"),
        (["nocolon"], {}, "APP must look like module:attr"),
        (["a:b", "-w", "0"], {}, "--workers: must be >= 1, got 0"),
        (["a:b", "-w", "two"], {}, "--workers: expected an integer"),
        (["a:b"], {"FORKLOOP_TIMEOUT": "soon"}, "FORKLOOP_TIMEOUT: expected a number"),
        (["a:b", "--timeout", "0"], {}, "--timeout: must be > 0"),
        (["a:b", "--drain-delay", "-1"], {}, "--drain-delay: must be >= 0"),
        (["a:b", "-b", "localhost"], {}, "--bind: expected HOST:PORT"),
        (["a:b", "-b", "::1:80"], {}, "write IPv6 addresses as [ADDR]:PORT"),
        (["a:b", "-b", "h:99999"], {}, "bad port"),
        (["a:b", "-b", "unix:"], {}, "unix: needs a path"),
        (["a:b", "--loop", "trio"], {}, "expected one of auto, uvloop, asyncio"),
        (["a:b", "--max-worker-memory", "lots"], {}, "expected a size"),
        (["a:b", "--metrics-bind", "9100"], {}, "--metrics-bind: expected HOST:PORT"),
        (["a:b", "--certfile", "c.pem"], {}, "--certfile and --keyfile go together"),
        (["a:b", "--certfile", "/no/c.pem", "--keyfile", "/no/k.pem"], {}, "no such file"),
        (["a:b", "--bogus"], {}, "unrecognized arguments: --bogus"),
        (["a:b"], {"FORKLOOP_PRELOAD": "maybe"}, "expected a boolean"),
        (["a:b", "--max-concurrency", "0"], {}, "--max-concurrency: must be >= 1, got 0"),
        (["a:b", "--max-concurrency", "many"], {}, "--max-concurrency: expected an integer"),
        (["a:b", "--max-queue-time", "0"], {}, "--max-queue-time: must be > 0"),
        (["a:b", "--max-queue-time", "nan"], {}, "--max-queue-time: expected a finite number"),
        (["a:b"], {"FORKLOOP_MAX_QUEUE_TIME": "soon"}, "FORKLOOP_MAX_QUEUE_TIME: expected a"),
        (["a:b", "--trust-request-start"], {}, "--trust-request-start needs --max-queue-time"),
    ],
)
def test_bad_input_is_one_line(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(argv, env)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert info.value.exit_code == 2


def test_bad_config_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("workers = [\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(["a:b", "-c", str(bad)], {})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("wrokers = 2\n")
    with pytest.raises(ConfigError, match="unknown option 'wrokers'"):
        load_config(["a:b", "-c", str(unknown)], {})
    typed = tmp_path / "typed.toml"
    typed.write_text("workers = true\n")
    with pytest.raises(ConfigError, match=r"typed.toml: workers: expected an integer"):
        load_config(["a:b", "-c", str(typed)], {})
    table = tmp_path / "table.toml"
    table.write_text('[forkloop]\napp = "m:app"\nworkers = 2\n')
    assert load_config(["-c", str(table)], {}).workers == 2
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(["a:b"], {"FORKLOOP_CONFIG": str(tmp_path / "missing.toml")})


def test_overload_options() -> None:
    off = load_config(["a:b"], {})
    assert (off.max_concurrency, off.max_queue_time_s, off.trust_request_start) == (
        None,
        None,
        False,
    )
    on = load_config(
        ["a:b", "--max-concurrency", "64", "--max-queue-time", "0.25s", "--trust-request-start"],
        {},
    )
    assert (on.max_concurrency, on.max_queue_time_s, on.trust_request_start) == (64, 0.25, True)
    env = load_config(["a:b"], {"FORKLOOP_MAX_CONCURRENCY": "8", "FORKLOOP_MAX_QUEUE_TIME": "1"})
    assert (env.max_concurrency, env.max_queue_time_s) == (8, 1.0)
