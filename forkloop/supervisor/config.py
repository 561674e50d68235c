"""The supervisor's configuration: one frozen dataclass built from four layers.

Owns: the option table (one row per option: its CLI spelling, its ``FORKLOOP_<NAME>`` variable,
its ``forkloop.toml`` key, its type, its default), the layering (defaults < ``--config`` file <
environment < command line), value conversion and validation. Every bad value raises
:class:`ConfigError` whose message is one line; ``forkloop serve`` prints it and exits 2.

Imports: stdlib and :mod:`forkloop.supervisor.sockets` (bind parsing) only.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .sockets import BindSpec, parse_bind, parse_host_port

__all__ = [
    "OPTIONS",
    "Config",
    "ConfigError",
    "available_cpus",
    "build_parser",
    "load_config",
]

ENV_PREFIX = "FORKLOOP_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_APP_RE = re.compile(
    r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(\(.*\))?$", re.S
)
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class ConfigError(Exception):
    """A bad option, variable or config file. ``str(exc)`` is a single line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class Config:
    """Everything ``forkloop serve`` needs, validated. Units are in the names."""

    app: str
    workers: int
    binds: tuple[BindSpec, ...]
    reuse_port: bool = False
    backlog: int = 2048
    graceful_timeout_s: float = 30.0
    timeout_s: float = 30.0
    boot_timeout_s: float = 60.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_worker_memory_bytes: int = 0
    preload: bool = False
    pid_file: str | None = None
    control: str | None = None  # the control socket's path; None: the default; "off": none
    certfile: str | None = None
    keyfile: str | None = None
    access_log: bool = True
    log_level: str = "info"
    log_format: str = "text"
    log_file: str | None = None
    loop: str = "auto"
    drain_delay_s: float = 0.0
    reload: bool = False
    keepalive_timeout_s: float | None = None
    metrics_bind: tuple[str, int] | None = None
    # Overload protection, per worker (forkloop.core.server.admission); None: off.
    max_concurrency: int | None = None
    max_queue_time_s: float | None = None
    trust_request_start: bool = False
    config_file: str | None = None
    # Where each value came from ("default", "file", "env", "cli"): for the banner and debugging.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tls(self) -> bool:
        return self.certfile is not None


# --------------------------------------------------------------------------- conversion


def _to_int(value: object, minimum: int = 0) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        number = int(value)
    else:
        raise ValueError(f"expected an integer, got {value!r}")
    if number < minimum:
        raise ValueError(f"must be >= {minimum}, got {number}")
    return number


def _to_float(value: object, minimum: float = 0.0, *, strict: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removesuffix("s"))
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {value!r}") from None
    else:
        raise ValueError(f"expected a number of seconds, got {value!r}")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {value!r}")
    if number < minimum or (strict and number == minimum):
        raise ValueError(f"must be {'>' if strict else '>='} {minimum:g}, got {number:g}")
    return number


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _to_size(value: object) -> int:
    """Bytes from ``536870912``, ``512M``, ``512MiB``, ``1.5G``; 0 disables."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("must be >= 0")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    raise ValueError(f"expected a size such as 512M or 1G, got {value!r}")


def _to_binds(value: object) -> tuple[BindSpec, ...]:
    items: list[str]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, list | tuple):
        items = [_to_str(item) for item in value]
    else:
        raise ValueError(f"expected an address or a list of addresses, got {value!r}")
    if not items:
        raise ValueError("needs at least one address")
    return tuple(parse_bind(item) for item in items)


def _choice(*choices: str) -> Callable[[object], str]:
    def convert(value: object) -> str:
        text = _to_str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return convert


def _optional_path(value: object) -> str | None:
    text = _to_str(value).strip()
    return text or None


def _metrics_bind(value: object) -> tuple[str, int] | None:
    text = _to_str(value).strip()
    if not text or text.lower() in ("off", "none", "false", "0"):
        return None
    return parse_host_port(text)


# --------------------------------------------------------------------------- the option table


@dataclass(frozen=True)
class Option:
    """One option: ``--name`` on the command line, ``FORKLOOP_NAME`` in the environment."""

    name: str
    field: str
    convert: Callable[[object], Any]
    help: str
    short: str | None = None
    flag: bool = False  # --name / --no-name
    repeat: bool = False  # -b may be given several times
    metavar: str | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option(
        "workers",
        "workers",
        lambda v: _to_int(v, 1),
        "worker processes (default: $WEB_CONCURRENCY, else the CPUs available)",
        short="-w",
        metavar="N",
    ),
    Option(
        "bind",
        "binds",
        _to_binds,
        "listen on HOST:PORT, [IPV6]:PORT, unix:PATH or "
        "fd://N; repeatable (default 127.0.0.1:8000, or 0.0.0.0:$PORT)",
        short="-b",
        repeat=True,
        metavar="ADDRESS",
    ),
    Option(
        "reuse-port",
        "reuse_port",
        _to_bool,
        "one SO_REUSEPORT listener per worker (needs net.ipv4.tcp_migrate_req=1)",
        flag=True,
    ),
    Option("backlog", "backlog", lambda v: _to_int(v, 1), "listen queue length", metavar="N"),
    Option(
        "graceful-timeout",
        "graceful_timeout_s",
        lambda v: _to_float(v, 0, strict=True),
        "seconds a stopping worker may take before it is killed",
        metavar="S",
    ),
    Option(
        "timeout",
        "timeout_s",
        lambda v: _to_float(v, 0, strict=True),
        "seconds without a heartbeat before a worker is aborted and replaced",
        short="-t",
        metavar="S",
    ),
    Option(
        "boot-timeout",
        "boot_timeout_s",
        lambda v: _to_float(v, 0, strict=True),
        "seconds a new worker may take to load the app and become ready",
        metavar="S",
    ),
    Option(
        "max-requests",
        "max_requests",
        lambda v: _to_int(v, 0),
        "recycle a worker after this many requests (0: never)",
        metavar="N",
    ),
    Option(
        "max-requests-jitter",
        "max_requests_jitter",
        lambda v: _to_int(v, 0),
        "add 0..N to each worker's max-requests",
        metavar="N",
    ),
    Option(
        "max-worker-memory",
        "max_worker_memory_bytes",
        _to_size,
        "recycle a worker whose RSS exceeds this size, e.g. 512M (0: never)",
        metavar="SIZE",
    ),
    Option("preload", "preload", _to_bool, "load the app in the master before forking", flag=True),
    Option(
        "pid", "pid_file", _optional_path, "write the master's pid to this file", metavar="FILE"
    ),
    Option(
        "control",
        "control",
        _optional_path,
        "the control socket for forkloop status|reload|scale|stop (default: beside --pid, "
        "else $XDG_RUNTIME_DIR, else /tmp/forkloop-UID; 'off': none)",
        metavar="PATH",
    ),
    Option("certfile", "certfile", _optional_path, "TLS certificate (PEM)", metavar="FILE"),
    Option("keyfile", "keyfile", _optional_path, "TLS private key (PEM)", metavar="FILE"),
    Option("access-log", "access_log", _to_bool, "log one line per request", flag=True),
    Option("log-level", "log_level", _choice(*LOG_LEVELS), "log level", metavar="LEVEL"),
    Option("log-format", "log_format", _choice("text", "json"), "text or json", metavar="FORMAT"),
    Option(
        "log-file",
        "log_file",
        _optional_path,
        "append logs to FILE (reopened on USR1) instead of stderr",
        metavar="FILE",
    ),
    Option(
        "loop",
        "loop",
        _choice("auto", "uvloop", "asyncio"),
        "event loop: uvloop, asyncio or auto (uvloop when installed)",
        metavar="LOOP",
    ),
    Option(
        "drain-delay",
        "drain_delay_s",
        lambda v: _to_float(v, 0),
        "on TERM keep serving this many seconds with /-/readyz at 503",
        metavar="S",
    ),
    Option(
        "reload",
        "reload",
        _to_bool,
        "development: restart workers when a source file changes",
        flag=True,
    ),
    Option(
        "keep-alive",
        "keepalive_timeout_s",
        lambda v: _to_float(v, 0, strict=True),
        "seconds an idle keep-alive connection stays open",
        metavar="S",
    ),
    Option(
        "max-concurrency",
        "max_concurrency",
        lambda v: _to_int(v, 1),
        "per worker: answer 503 at once to a request beyond N in flight (default: no bound)",
        metavar="N",
    ),
    Option(
        "max-queue-time",
        "max_queue_time_s",
        lambda v: _to_float(v, 0, strict=True),
        "per worker: answer 503 to a request that waited more than S seconds to start "
        "(default: no bound)",
        metavar="S",
    ),
    Option(
        "trust-request-start",
        "trust_request_start",
        _to_bool,
        "measure queue time from a proxy's X-Request-Start header (only behind a proxy that "
        "sets it)",
        flag=True,
    ),
    Option(
        "metrics-bind",
        "metrics_bind",
        _metrics_bind,
        "serve Prometheus metrics on HOST:PORT",
        metavar="ADDRESS",
    ),
)
_BY_NAME = {option.name: option for option in OPTIONS}
_BY_KEY = {
    key: option
    for option in OPTIONS
    for key in (option.name, option.field, option.name.replace("-", "_"))
}
_BY_KEY["app"] = Option("app", "app", _to_str, "the application")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="forkloop serve",
        description="Serve APP with a pre-fork supervisor. Every option also reads "
        "FORKLOOP_<OPTION> from the environment (e.g. FORKLOOP_MAX_REQUESTS=1000).",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "app",
        metavar="APP",
        nargs="?",
        help="module:attr (an Application), module:factory or module:factory(args)",
    )
    parser.add_argument(
        "-c",
        "--config",
        dest="config_file",
        metavar="FILE",
        help="read options from this TOML file",
    )
    for option in OPTIONS:
        flags = [f"--{option.name}"] + ([option.short] if option.short else [])
        if option.flag:
            parser.add_argument(
                *flags, dest=option.field, help=option.help, action=argparse.BooleanOptionalAction
            )
        elif option.repeat:
            parser.add_argument(
                *flags, dest=option.field, help=option.help, action="append", metavar=option.metavar
            )
        else:
            parser.add_argument(*flags, dest=option.field, help=option.help, metavar=option.metavar)
    return parser


def available_cpus() -> int:
    """CPUs this process may use: affinity mask, capped by a cgroup v2 quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as file:
            quota, period = file.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _read_file(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    table = data.get("forkloop", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [forkloop] must be a table")
    return table


def _convert(option: Option, raw: object, where: str) -> object:
    try:
        return option.convert(raw)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Config:
    """Parse ``serve`` arguments; raise :class:`ConfigError` (one line) on any bad input."""
    env = os.environ if environ is None else environ
    namespace = vars(build_parser().parse_args(list(argv)))
    values: dict[str, object] = {}
    sources: dict[str, str] = {}

    config_file = namespace.pop("config_file", None) or env.get(ENV_PREFIX + "CONFIG") or None
    if config_file:
        for key, raw in _read_file(config_file).items():
            option = _BY_KEY.get(key)
            if option is None:
                raise ConfigError(f"{config_file}: unknown option {key!r}")
            values[option.field] = _convert(option, raw, f"{config_file}: {key}")
            sources[option.field] = "file"

    for option in (*OPTIONS, _BY_KEY["app"]):
        env_name = option.env
        if env_name in env:
            values[option.field] = _convert(option, env[env_name], env_name)
            sources[option.field] = "env"

    for dest, raw in namespace.items():
        if raw is None:
            continue
        option = _BY_KEY[dest]
        if option.repeat:
            raw = [item for chunk in raw for item in re.split(r",", chunk) if item]
        values[dest] = _convert(option, raw, f"--{option.name}")
        sources[dest] = "cli"

    return _finish(values, sources, env, config_file)


def _finish(
    values: dict[str, object],
    sources: dict[str, str],
    env: Mapping[str, str],
    config_file: str | None,
) -> Config:
    if "app" not in values:
        raise ConfigError("missing APP (module:attr), e.g. forkloop serve myapp:app")
    app = str(values["app"]).strip()
    if not _APP_RE.match(app):
        raise ConfigError(
            f"APP must look like module:attr, module:factory or module:factory(args), got {app!r}"
        )
    values["app"] = app
    if "workers" not in values:
        concurrency = env.get("WEB_CONCURRENCY", "").strip()
        if concurrency:
            values["workers"] = _convert(_BY_NAME["workers"], concurrency, "WEB_CONCURRENCY")
            sources["workers"] = "env"
        else:
            values["workers"] = available_cpus()
            sources["workers"] = "default"
    if "binds" not in values:
        port = env.get("PORT", "").strip()
        default = f"0.0.0.0:{port}" if port else "127.0.0.1:8000"
        values["binds"] = _convert(_BY_NAME["bind"], default, "PORT" if port else "default")
        sources["binds"] = "env" if port else "default"
    if values.get("trust_request_start") and values.get("max_queue_time_s") is None:
        raise ConfigError(
            "--trust-request-start needs --max-queue-time (it only sets where the wait starts)"
        )
    certfile, keyfile = values.get("certfile"), values.get("keyfile")
    if (certfile is None) != (keyfile is None):
        raise ConfigError("--certfile and --keyfile go together")
    for name, path in (("certfile", certfile), ("keyfile", keyfile)):
        if isinstance(path, str) and not os.path.isfile(path):
            raise ConfigError(f"--{name}: no such file: {path}")
    for name in Config.__dataclass_fields__:
        sources.setdefault(name, "default")
    try:
        return Config(**values, config_file=config_file, sources=sources)  # type: ignore[arg-type]
    except TypeError as exc:  # pragma: no cover - the option table and Config disagree
        raise ConfigError(str(exc)) from None
