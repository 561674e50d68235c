"""The ``forkloop`` command and the composition root of the server.

Owns: ``forkloop serve APP [options]`` (also ``python -m forkloop serve``): parse the config,
configure logging, bind the listeners once, optionally preload the app, print the startup
banner, wire the supervisor (stdlib only) to the worker main (which imports the web core) and,
when ``--metrics-bind`` is given, to the metrics layer; then run the master until it halts.
This is the one module that knows all of supervisor, workers and metrics.

Exit statuses: 0 after a stop, 2 for a bad option/config file/TLS file (one line on stderr),
1 when a socket cannot be bound, 3 when the app fails to load in the first boot.

Metrics extension point (issue 8): if ``forkloop.metrics`` defines
``attach_supervisor(config, arbiter) -> str | None`` it is called in the master before the
workers start (it may read ``arbiter.snapshot()`` and return the address for the banner); if
it defines ``worker_observers(ctx) -> list`` the observers are added in every worker.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import itertools
import json
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .supervisor import control, logs
from .supervisor.arbiter import UPGRADE_ENV, Arbiter
from .supervisor.config import Config, ConfigError, load_config
from .supervisor.process import WorkerContext
from .supervisor.sockets import BindError, Listener, bind_all, close_all

__all__ = ["main", "serve"]

log = logging.getLogger("forkloop.supervisor")
EXIT_CONFIG = 2
EXIT_BOOT_ERROR = 3


def _error(message: str, code: int, args: Sequence[str] = ()) -> int:
    """One line on stderr: a JSON object when JSON logs are on, or asked for by ``args`` or
    the environment (an error before logging is set up)."""
    logs.error_line(message, json_format=logs.is_json() or _json_asked(args))
    return code


def _json_asked(args: Sequence[str]) -> bool:
    if os.environ.get("FORKLOOP_LOG_FORMAT", "").strip().lower() == "json":
        return True
    return any(
        arg == "--log-format=json" or (arg, following) == ("--log-format", "json")
        for arg, following in itertools.pairwise([*args, ""])
    )


def _run_worker(ctx: WorkerContext) -> int:
    from .workers.main import Worker

    return Worker(ctx).run()


def _warm_imports(config: Config) -> None:
    """Import the web core (never the app) in the master so that every fork starts with it
    loaded: faster worker boots and replacements, pages shared copy-on-write. Building an event
    loop stays the workers' business. Engine changes therefore need a restart or USR2; app
    code is re-imported by every new worker (HUP)."""
    try:
        importlib.import_module("forkloop.web")
        if config.loop != "asyncio":
            importlib.import_module("uvloop")
    except ImportError as exc:
        log.debug("not pre-importing the web core: %s", exc)


def _check_runtime(config: Config) -> None:
    if config.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError("--loop uvloop: uvloop is not installed (pip install uvloop)")
    if config.certfile and config.keyfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(config.certfile, config.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--certfile/--keyfile: cannot load: {exc}") from None


def _preload(config: Config) -> object:
    from .workers import loader

    target = loader.resolve(config.app)
    if target.call or not loader.is_app(target.obj):
        import inspect

        if inspect.iscoroutinefunction(target.obj):
            return target  # an async factory runs in each worker's own loop
    return loader.make_app(target)


def _worker_extras(config: Config) -> dict[str, object]:
    """What every worker gets besides the config: issue 8's observers when metrics are on."""
    if config.metrics_bind is None:
        return {}
    metrics = importlib.import_module("forkloop.metrics")
    factory = getattr(metrics, "worker_observers", None)
    return {"observers": factory} if factory is not None else {}


def attach_metrics(config: Config, arbiter: Arbiter) -> str | None:
    """Issue 8's hook: start the supervisor side of metrics; return its address."""
    if config.metrics_bind is None:
        return None
    try:
        metrics = importlib.import_module("forkloop.metrics")
    except ImportError as exc:  # pragma: no cover - the package is always there
        log.warning("metrics unavailable: %s", exc)
        return None
    attach = getattr(metrics, "attach_supervisor", None)
    if attach is None:
        log.warning("--metrics-bind: forkloop.metrics has no supervisor exposition yet")
        return None
    address = attach(config, arbiter)
    return str(address) if address else None


def banner(config: Config, listeners: list[Listener], metrics: str | None) -> None:
    from .workers.main import loop_factory

    loop_name = "asyncio"
    if config.loop != "asyncio":
        try:
            loop_name = (
                "uvloop" if loop_factory(config.loop).__module__.startswith("uvloop") else "asyncio"
            )
        except ImportError:
            loop_name = "asyncio"
    log.info("forkloop %s serving %s", __version__, config.app)
    for listener in listeners:
        mode = " (reuse-port)" if listener.reuse_port else ""
        log.info("listening on %s%s", listener.url(config.tls), mode)
    log.info(
        "workers: %d, loop: %s, master pid: %d%s",
        config.workers,
        loop_name,
        os.getpid(),
        ", preloaded" if config.preload else "",
    )
    if metrics:
        log.info("metrics: %s", metrics)
    elif config.metrics_bind:
        host, port = config.metrics_bind
        log.info("metrics: %s:%d requested, not available", host, port)
    else:
        log.info("metrics: off")


def serve(args: Sequence[str]) -> int:
    try:
        config = load_config(args)
        _check_runtime(config)
    except ConfigError as exc:
        return _error(str(exc), exc.exit_code, args)
    logs.configure(config.log_level, config.log_format, config.log_file)
    try:
        listeners = bind_all(config.binds, backlog=config.backlog, reuse_port=config.reuse_port)
    except BindError as exc:
        return _error(str(exc), exc.exit_code)
    preloaded: object | None = None
    control_server: control.ControlServer | None = None
    _warm_imports(config)
    try:
        if config.preload:
            try:
                preloaded = _preload(config)
            except Exception as exc:
                log.exception("preloading %s failed", config.app)
                return _error(f"cannot load {config.app}: {exc}", EXIT_BOOT_ERROR)

        def reload_config() -> Config:
            new = load_config(args)
            _check_runtime(new)
            return new

        try:
            upgrading = os.environ.get(UPGRADE_ENV, "")
            control_server = control.open_server(
                config.control,
                config.pid_file,
                take_over=int(upgrading) if upgrading.isdigit() else None,
            )
        except control.ControlError as exc:
            return _error(str(exc), exc.exit_code)
        if control_server is not None:
            log.info("control socket: %s", control_server.path)
        arbiter = Arbiter(
            config,
            listeners,
            _run_worker,
            context_extra=_worker_extras(config),
            reload_config=reload_config,
            preloaded=preloaded,
            exec_argv=[sys.executable, "-m", "forkloop", "serve", *args],
            control=control_server,
        )
        try:
            metrics_address = attach_metrics(config, arbiter)
        except OSError as exc:  # the metrics address is taken or not ours to bind
            host, port = config.metrics_bind or ("", 0)
            return _error(f"--metrics-bind {host}:{port}: cannot listen: {exc.strerror}", 1)
        banner(config, listeners, metrics_address)
        return arbiter.run()
    finally:
        close_all(listeners, unlink=False)
        if control_server is not None:  # the arbiter closes it, unless it never ran
            control_server.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forkloop", description="The forkloop web server.")
    from ._build import describe

    # The version and which build runs: "forkloop 0.1.0 (compiled: 11 modules)" or "(pure Python)".
    version = f"forkloop {__version__} ({describe()})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="serve an app with the pre-fork supervisor (forkloop serve --help)",
        add_help=False,
    )
    for name, text in CONTROL_HELP.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser


# --------------------------------------------------------------------------- control commands

CONTROL_HELP = {
    "status": "the master and its workers, from the control socket (--json for scripts)",
    "reload": "rolling reload through the control socket (as HUP)",
    "scale": "scale to N workers through the control socket (as TTIN/TTOU)",
    "stop": "stop the master through the control socket (QUIT; --graceful: TERM)",
}


class _ControlParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _control_parser(command: str) -> argparse.ArgumentParser:
    parser = _ControlParser(prog=f"forkloop {command}", description=CONTROL_HELP[command])
    parser.add_argument(
        "--control",
        metavar="PATH",
        help="the master's control socket (default: $FORKLOOP_CONTROL, else beside "
        "--pid/$FORKLOOP_PID, else $XDG_RUNTIME_DIR/forkloop.sock, else /tmp/forkloop-UID/)",
    )
    parser.add_argument("--pid", metavar="FILE", help="the master's --pid file (finds its socket)")
    if command == "status":
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
    elif command == "scale":
        parser.add_argument("workers", metavar="N", type=int, help="the number of workers")
    elif command == "stop":
        parser.add_argument(
            "--graceful", action="store_true", help="drain like TERM instead of a quick stop"
        )
    return parser


def control_command(command: str, args: Sequence[str]) -> int:
    """``forkloop status|reload|scale|stop``: one request to the master's control socket."""
    try:
        options = _control_parser(command).parse_args(list(args))
    except ConfigError as exc:
        return _error(f"{command}: {exc}", EXIT_CONFIG)
    env = os.environ
    path = options.control or env.get("FORKLOOP_CONTROL", "").strip()
    if path.lower() in ("off", "none", "false", "0"):
        return _error(f"{command}: the control socket is off (--control {path})", 1)
    if not path:
        path = control.default_path(options.pid or env.get("FORKLOOP_PID", "").strip() or None)
    request: dict[str, object] = {"cmd": command}
    if command == "scale":
        request["workers"] = options.workers
    elif command == "stop":
        request["graceful"] = options.graceful
    try:
        answer = control.call(path, request)
    except control.ControlError as exc:
        return _error(str(exc), exc.exit_code)
    if not answer.get("ok"):
        return _error(str(answer.get("error", "the master refused the request")), 1)
    if command == "status":
        try:
            text = json.dumps(answer, indent=2) if options.json else control.format_status(answer)
        except (KeyError, TypeError, ValueError) as exc:
            return _error(f"status: unexpected answer from {path}: {exc}", 1)
        print(text)
    elif command == "reload":
        print(f"reloading: generation {answer.get('generation')}")
    elif command == "scale":
        print(f"scaling: {answer.get('previous')} -> {answer.get('workers')} workers")
    else:
        print("stopping (graceful)" if options.graceful else "stopping")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return _error("missing command (try: forkloop serve APP, or forkloop --help)", EXIT_CONFIG)
    if args[0] in CONTROL_HELP:
        return control_command(args[0], args[1:])
    if args[0] not in ("serve",):
        parser = build_parser()
        if args and not args[0].startswith("-"):
            return _error(f"unknown command {args[0]!r} (try: forkloop serve APP)", EXIT_CONFIG)
        parser.parse_args(args)
        parser.print_help()
        return 0
    return serve(args[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
