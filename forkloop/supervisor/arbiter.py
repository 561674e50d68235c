"""The master's loop: turn facts into policy state, ask ``plan``, perform the actions.

Owns: the one loop of the master process. Each turn it waits (``poll``) on the signal pipe,
the workers' heartbeat pipes and the control socket (``forkloop status|reload|scale|stop``,
:mod:`.control`, whose requests run the same code as the matching signals) with a deadline
from the policy, then: handles queued signals
(TERM, INT/QUIT, HUP, TTIN/TTOU, USR1, USR2), reads worker messages (READY, heartbeats, boot
errors), reaps exited children (any child, so it is a correct PID 1), samples RSS, polls the
``--reload`` watcher, and finally applies ``policy.plan(state, now)``: fork, signal, halt.

It never imports the web core or app code: what a worker runs is the ``worker_main`` callable
given by the composition root (``forkloop.cli``).

Imports: stdlib and sibling supervisor modules only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import selectors
import signal
import socket
import time
from collections.abc import Callable, Sequence

from . import logs, policy
from .config import Config, ConfigError
from .control import ControlServer, Request, error, status_report
from .heartbeat import Decoder, Message
from .policy import Abort, Action, Booted, Halt, Kill, QuickStop, Spawn, Stop
from .process import WorkerContext, WorkerMain, describe_status, fork_worker, read_rss
from .reloader import FileWatcher
from .scoreboard import Scoreboard
from .signals import SignalQueue
from .snapshot import Snapshot, take
from .sockets import Listener, close_all, close_side_sockets, exec_environment

__all__ = ["UPGRADE_ENV", "Arbiter", "settings_from"]

log = logging.getLogger("forkloop.supervisor")
UPGRADE_ENV = "FORKLOOP_UPGRADE_FROM"
TICK_S = 0.25


def settings_from(config: Config) -> policy.Settings:
    return policy.Settings(
        timeout_s=config.timeout_s,
        boot_timeout_s=config.boot_timeout_s,
        graceful_timeout_s=config.graceful_timeout_s,
        drain_delay_s=config.drain_delay_s,
        max_worker_memory_bytes=config.max_worker_memory_bytes,
    )


class Arbiter:
    """Runs the master until it halts; ``run()`` returns the exit status."""

    def __init__(
        self,
        config: Config,
        listeners: list[Listener],
        worker_main: WorkerMain,
        *,
        reload_config: Callable[[], Config] | None = None,
        preloaded: object | None = None,
        exec_argv: Sequence[str] | None = None,
        on_message: Callable[[policy.Worker, Message], None] | None = None,
        context_extra: dict[str, object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: dict[str, str] | None = None,
        control: ControlServer | None = None,
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.worker_main = worker_main
        self.reload_config = reload_config
        self.preloaded = preloaded
        self.exec_argv = list(exec_argv) if exec_argv is not None else None
        self.on_message = on_message
        self.context_extra = dict(context_extra or {})
        self.clock = clock
        self.environ = os.environ if environ is None else environ
        self.pid = os.getpid()
        self.state = policy.initial_state(settings_from(config), config.workers)
        self.signals = SignalQueue()
        self.scoreboard = Scoreboard()
        self.selector = selectors.PollSelector()
        self.pipes: dict[int, tuple[int, Decoder]] = {}  # pid -> (read fd, decoder)
        self.boot_errors: dict[int, str] = {}
        self.stop_requested_at: float | None = None
        self.listeners_closed = False
        self.upgrade_child: int | None = None
        # USR2 hands a new master the listeners and these named side sockets (another layer's
        # listeners, e.g. --metrics-bind; see sockets.py). upgrade_hooks run before the fork
        # and return sockets for that new master only (closed here after the fork);
        # halt_hooks run once the last worker has exited, before this master closes anything.
        self.side_sockets: dict[str, socket.socket] = {}
        self.upgrade_hooks: list[Callable[[], dict[str, socket.socket]]] = []
        self.halt_hooks: list[Callable[[], None]] = []
        upgrade_from = self.environ.pop(UPGRADE_ENV, "")
        self.upgrade_parent = int(upgrade_from) if upgrade_from.isdigit() else None
        self.watcher = FileWatcher([os.getcwd()]) if config.reload else None
        self._next_sample = 0.0
        self._announced_generation = 1
        self._pid_file_written = False
        self.control = control
        self.started_at = clock()

    # ------------------------------------------------------------------ public

    def snapshot(self) -> Snapshot:
        """Workers by phase, restarts by cause, reloads, per-worker RSS and loop lag.

        Safe from another thread: the policy state is immutable and replaced whole.
        """
        return take(self.state, self.clock())

    def run(self) -> int:
        close_side_sockets()  # every layer took its own by now
        self.signals.install()
        self.selector.register(self.signals.fileno(), selectors.EVENT_READ)
        if self.control is not None:
            self.control.attach(self.selector, self._control_request, self.clock)
        try:
            return self._loop()
        finally:
            self._cleanup()

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> int:
        while True:
            now = self.clock()
            for action in policy.plan(self.state, now):
                if isinstance(action, Halt):
                    return self._halt(action)
                self._apply(action, now)
            self._announce_reload()
            timeout = self._timeout(self.clock())
            for key, events in self.selector.select(timeout):
                if isinstance(key.data, int):
                    self._read_pipe(key.fd, key.data)
                elif self.control is not None and self.control.owns(key.data):
                    self.control.on_event(key.data, events)
            for signum in self.signals.drain():
                self._on_signal(signum)
            self._reap()
            self._periodic(self.clock())

    def _announce_reload(self) -> None:
        state = self.state
        if state.generation <= self._announced_generation or state.mode != policy.Mode.RUNNING:
            return
        if state.reload_failed:
            log.error(
                "reload to generation %d failed (%s): the previous workers keep serving",
                state.generation,
                state.error or "a new worker did not become ready",
            )
            self._announced_generation = state.generation
        elif len(state.workers) == state.target and all(
            w.generation == state.generation and w.phase == policy.Phase.READY
            for w in state.workers
        ):
            log.info("reload complete: generation %d, %d workers", state.generation, state.target)
            self._announced_generation = state.generation

    def _timeout(self, now: float) -> float:
        deadline = policy.next_deadline(self.state, now)
        timeout = TICK_S if deadline is None else min(TICK_S, deadline - now)
        return max(0.0, timeout)

    # ------------------------------------------------------------------ actions

    def _apply(self, action: Action, now: float) -> None:
        if isinstance(action, Spawn):
            self._spawn(action, now)
            return
        if isinstance(action, Stop):
            # TERM: shutdown (readiness 503, drain delay, drain); HUP: retire now, the
            # siblings keep serving (reload, recycling, scale-down).
            shutdown = action.cause == policy.Cause.SHUTDOWN
            log.info("stopping worker %d (%s)", action.pid, action.cause.value)
            self._kill(action.pid, signal.SIGTERM if shutdown else signal.SIGHUP)
        elif isinstance(action, QuickStop):
            self._kill(action.pid, signal.SIGQUIT)
        elif isinstance(action, Abort):
            worker = self.state.worker(action.pid)
            silent = now - worker.last_beat_at if worker else 0.0
            log.error(
                "worker %d timed out (%s, silent for %.1fs): aborting it, its traceback follows",
                action.pid,
                action.cause.value,
                silent,
            )
            self._kill(action.pid, signal.SIGABRT)
        elif isinstance(action, Kill):
            log.warning("killing worker %d", action.pid)
            self._kill(action.pid, signal.SIGKILL)
        elif isinstance(action, Booted):
            self._booted()
        self.state = policy.record(self.state, action, now)

    def _kill(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def _spawn(self, action: Spawn, now: float) -> None:
        config = self.config
        limit = config.max_requests
        if limit and config.max_requests_jitter:
            limit += random.randint(0, config.max_requests_jitter)  # noqa: S311 - not crypto
        private = [self.signals.fileno(), *self.signals.fds]
        private += [fd for fd, _ in self.pipes.values()]
        private += self.control.fds() if self.control is not None else []

        def make_context(write_fd: int) -> WorkerContext:
            return WorkerContext(
                slot=action.slot,
                generation=action.generation,
                master_pid=self.pid,
                pipe_fd=write_fd,
                config=config,
                listeners=self.listeners,
                preloaded=self.preloaded,
                max_requests=limit,
                scoreboard=self.scoreboard,
                extra=dict(self.context_extra),
            )

        try:
            pid, read_fd = fork_worker(make_context, self.worker_main, private)
        except OSError as exc:
            log.error("cannot fork a worker: %s", exc)
            self.state = policy.spawn_failed(self.state, now)
            return
        self.pipes[pid] = (read_fd, Decoder())
        self.selector.register(read_fd, selectors.EVENT_READ, pid)
        self.state = policy.spawned(
            self.state,
            pid=pid,
            slot=action.slot,
            generation=action.generation,
            now=now,
            max_requests=limit,
        )
        reason = f", replacing after {action.cause.value}" if action.cause else ""
        log.info(
            "booting worker %d (slot %d, generation %d%s)",
            pid,
            action.slot,
            action.generation,
            reason,
        )

    def _booted(self) -> None:
        log.info("ready: %d workers serving (master pid %d)", self.state.target, self.pid)
        self._write_pid_file()
        if self.upgrade_parent:
            log.info("upgrade complete: stopping the previous master %d", self.upgrade_parent)
            self._kill(self.upgrade_parent, signal.SIGTERM)
            self.upgrade_parent = None

    def _halt(self, action: Halt) -> int:
        for hook in self.halt_hooks:
            try:
                hook()
            except Exception:
                log.exception("a halt hook failed")
        if action.code:
            log.error("halting: %s", action.reason)
            if not logs.is_json():  # in JSON mode the record above is the one line
                logs.error_line(action.reason)
        else:
            log.info("stopped")
        return action.code

    # ------------------------------------------------------------------ facts

    def _read_pipe(self, fd: int, pid: int) -> None:
        entry = self.pipes.get(pid)
        if entry is None:
            return
        _, decoder = entry
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_pipe(pid)
                return
            for message in decoder.feed(data):
                self._on_message(pid, message)

    def _close_pipe(self, pid: int) -> None:
        entry = self.pipes.pop(pid, None)
        if entry is None:
            return
        dump = entry[1].text()  # what was not a message: a faulthandler dump (JSON log mode)
        if dump.strip():
            log.error("worker %d: its traceback dump", pid, extra={"traceback": dump})
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(entry[0])
        with contextlib.suppress(OSError):
            os.close(entry[0])

    def _on_message(self, pid: int, message: Message) -> None:
        now = self.clock()
        if message.kind == "ready":
            self.state = policy.ready(self.state, pid, now)
            worker = self.state.worker(pid)
            log.info("worker %d ready (slot %d)", pid, worker.slot if worker else -1)
        elif message.kind in ("beat", "limit"):
            current = self.state.worker(pid)
            previous_lag = current.lag_s if current is not None else 0.0
            self.state = policy.beat(
                self.state,
                pid,
                now,
                requests=message.get_int("requests"),
                inflight=message.get_int("inflight"),
                connections=message.get_int("connections"),
                lag_s=message.get_float("lag_s", previous_lag),
                draining=bool(message.fields.get("draining", False)),
            )
        elif message.kind == "boot_error":
            error = str(message.fields.get("error", "boot failed"))
            self.boot_errors[pid] = error
            log.error("worker %d failed to boot: %s", pid, error)
        worker = self.state.worker(pid)
        if self.on_message is not None and worker is not None:
            try:
                self.on_message(worker, message)
            except Exception:
                log.exception("on_message hook failed")

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._on_exit(pid, status)

    def _on_exit(self, pid: int, status: int) -> None:
        code, text = describe_status(status)
        if pid == self.upgrade_child:
            log.warning("the upgraded master %d exited (%s); this master keeps running", pid, text)
            self.upgrade_child = None
            return
        entry = self.pipes.get(pid)
        if entry is not None:
            self._read_pipe(entry[0], pid)  # a last READY or boot error
            self._close_pipe(pid)
        worker = self.state.worker(pid)
        if worker is None:
            log.debug("reaped process %d (%s)", pid, text)
            return
        expected = (
            worker.phase in (policy.Phase.STOPPING, policy.Phase.KILLING)
            or self.state.mode != policy.Mode.RUNNING
        )
        level = logging.INFO if expected and code == 0 else logging.WARNING
        log.log(level, "worker %d (slot %d) exited: %s", pid, worker.slot, text)
        self.scoreboard.clear(worker.slot, pid)
        now = self.clock()
        error = self.boot_errors.pop(pid, None)
        if error is None and worker.ready_at is None:
            error = f"worker {pid} {text} before it was ready"
        self.state = policy.exited(self.state, pid, now, error=error)

    def _on_signal(self, signum: int, name: str = "") -> None:
        now = self.clock()
        if signum == signal.SIGCHLD:
            return
        name = name or signal.Signals(signum).name
        if signum == signal.SIGTERM:
            handover = self.upgrade_child is not None
            if self.state.mode == policy.Mode.RUNNING:
                if handover:
                    log.info(
                        "%s: the new master %d serves now: retiring the workers",
                        name,
                        self.upgrade_child,
                    )
                    self.stop_requested_at = now - self.config.drain_delay_s
                else:
                    log.info(
                        "%s: graceful stop (drain %.1fs, then up to %.1fs)",
                        name,
                        self.config.drain_delay_s,
                        self.config.graceful_timeout_s,
                    )
                    self.stop_requested_at = now
            self.state = policy.request_stop(self.state, quick=False, handover=handover)
        elif signum in (signal.SIGINT, signal.SIGQUIT):
            log.info("%s: quick stop", name)
            self.state = policy.request_stop(self.state, quick=True)
            self._close_listeners()
        elif signum == signal.SIGHUP:
            self.reload(f"{name}")
        elif signum == signal.SIGTTIN:
            self.state = policy.scale(self.state, +1)
            log.info("%s: %d workers", name, self.state.target)
        elif signum == signal.SIGTTOU:
            self.state = policy.scale(self.state, -1)
            log.info("%s: %d workers", name, self.state.target)
        elif signum == signal.SIGUSR1:
            self._reopen_logs()
        elif signum == signal.SIGUSR2:
            self._upgrade()

    def reload(self, why: str) -> None:
        """Re-read the configuration and replace every worker, ready-gated."""
        if self.state.mode != policy.Mode.RUNNING:
            return
        target: int | None = None
        if self.reload_config is not None:
            try:
                new = self.reload_config()
            except ConfigError as exc:
                log.error("%s: configuration not reloaded: %s", why, exc)
                new = self.config
            if new.binds != self.config.binds or new.reuse_port != self.config.reuse_port:
                log.warning("%s: listening addresses change only on restart or USR2", why)
            if new.control != self.config.control:
                log.warning("%s: the control socket moves only on restart or USR2", why)
            if new is not self.config:
                target = new.workers
                logs.configure(new.log_level, new.log_format, None)
                self.config = new
                if new.reload and self.watcher is None:
                    self.watcher = FileWatcher([os.getcwd()])
        self.state = policy.update_settings(self.state, settings_from(self.config), target)
        self.state = policy.request_reload(self.state)
        log.info(
            "%s: rolling reload to generation %d (%d workers)",
            why,
            self.state.generation,
            self.state.target,
        )

    # ------------------------------------------------------------------ control socket

    def _control_request(self, request: Request) -> dict[str, object]:
        """A control-socket request: the same code path as the matching signal."""
        command = request.command
        if command == "status":
            return status_report(
                self.state,
                self.clock(),
                pid=self.pid,
                started_at=self.started_at,
                binds=[listener.url(self.config.tls) for listener in self.listeners],
                control=self.control.path if self.control is not None else "",
                rss=read_rss,
            )
        if command == "stop":
            sig = signal.SIGTERM if request.graceful else signal.SIGQUIT
            self._on_signal(sig, f"control stop ({sig.name})")
            return {"ok": True, "command": command, "graceful": request.graceful}
        if self.state.mode != policy.Mode.RUNNING:
            return error(f"{command}: the master is stopping ({self.state.mode.value})")
        if command == "reload":
            self._on_signal(signal.SIGHUP, "control reload (HUP)")
            return {"ok": True, "command": command, "generation": self.state.generation}
        previous = self.state.target  # scale: what N - target TTINs (or TTOUs) would do
        self.state = policy.scale(self.state, request.workers - previous)
        log.info("control scale (TTIN/TTOU): %d -> %d workers", previous, self.state.target)
        return {"ok": True, "command": command, "workers": self.state.target, "previous": previous}

    # ------------------------------------------------------------------ periodic work

    def _periodic(self, now: float) -> None:
        if self.control is not None:
            self.control.expire(now)
        drained = (
            self.state.mode == policy.Mode.DRAINING
            and self.stop_requested_at is not None
            and now >= self.stop_requested_at + self.config.drain_delay_s
        )
        if drained or self.state.mode in (policy.Mode.QUICK, policy.Mode.HALTING):
            self._close_listeners()
        if now < self._next_sample:
            return
        self._next_sample = now + 1.0
        self.state = policy.update_rss(
            self.state, {w.pid: read_rss(w.pid) for w in self.state.workers}
        )
        if self.watcher is not None and self.state.mode == policy.Mode.RUNNING:
            changed = self.watcher.changed()
            if changed:
                self.reload(f"--reload: {os.path.relpath(changed[0])} changed")

    def _close_listeners(self) -> None:
        """The master's copies: once the workers close theirs the port refuses connections."""
        if self.listeners_closed:
            return
        self.listeners_closed = True
        close_all(self.listeners, unlink=False)

    def _reopen_logs(self) -> None:
        if self.config.log_file:
            logs.reopen(self.config.log_file)
        log.info("USR1: log files reopened")
        for worker in self.state.workers:
            self._kill(worker.pid, signal.SIGUSR1)

    def _upgrade(self) -> None:
        """USR2: exec a new master on the same sockets; it stops this one once it is ready."""
        if self.upgrade_child is not None or self.state.mode != policy.Mode.RUNNING:
            log.warning("USR2 ignored: an upgrade is running or the master is stopping")
            return
        if self.exec_argv is None:
            log.warning("USR2 ignored: this master cannot re-execute itself")
            return
        argv = self.exec_argv
        side = dict(self.side_sockets)
        once: dict[str, socket.socket] = {}
        for hook in self.upgrade_hooks:
            try:
                once.update(hook())
            except Exception:
                log.exception("USR2: an upgrade hook failed")
        try:
            pid = os.fork()
        except OSError as exc:
            log.error("USR2: cannot fork: %s", exc)
            pid = -1
        if pid == 0:  # pragma: no cover - replaced by exec; covered by an end-to-end test
            try:
                SignalQueue.reset_in_child()
                env = exec_environment(self.listeners, self.environ, {**side, **once})
                env[UPGRADE_ENV] = str(self.pid)
                os.execve(argv[0], argv, env)  # noqa: S606 - re-exec ourselves
            finally:
                os._exit(127)
        for sock in once.values():  # the new master's ends
            sock.close()
        if pid < 0:
            return
        self.upgrade_child = pid
        log.info("USR2: started a new master %d", pid)

    def _write_pid_file(self) -> None:
        path = self.config.pid_file
        if not path:
            return
        temporary = f"{path}.{self.pid}.tmp"
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{self.pid}\n")
        os.replace(temporary, path)
        self._pid_file_written = True

    def _cleanup(self) -> None:
        for worker in self.state.workers:  # only after an unexpected error in the loop
            self._kill(worker.pid, signal.SIGKILL)
        for pid in list(self.pipes):
            self._close_pipe(pid)
        self.signals.close()
        if self.control is not None:
            self.control.close()
        self.selector.close()
        upgraded = self.upgrade_child is not None
        if not self.listeners_closed:
            close_all(self.listeners, unlink=not upgraded)
        elif not upgraded:
            close_all([listener for listener in self.listeners if listener.owned_path])
        path = self.config.pid_file
        if path and self._pid_file_written:
            with contextlib.suppress(OSError, ValueError), open(path, encoding="ascii") as file:
                if int(file.read().strip() or 0) == self.pid:
                    os.unlink(path)
