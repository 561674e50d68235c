"""Worker processes as the master sees them: fork one, its pipe, its exit status, its RSS.

Owns: :class:`WorkerContext` (everything a forked worker receives: its slot, generation,
heartbeat pipe, the listeners, the config, the preloaded app), :func:`fork_worker` (fork, close
the master's private descriptors in the child, reset signal handling -- with no window in which
a signal for the worker is lost -- run the worker main and
``os._exit`` with its status -- a worker never returns into the master's code), exit-status
decoding and RSS reading.

Imports: stdlib and sibling supervisor modules only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .config import Config
from .scoreboard import Scoreboard
from .signals import HANDLED, SignalQueue
from .sockets import Listener

__all__ = ["WorkerContext", "WorkerMain", "describe_status", "fork_worker", "read_rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class WorkerContext:
    """What a worker process gets from the master at fork time."""

    slot: int
    generation: int
    master_pid: int
    pipe_fd: int  # write end of the heartbeat pipe
    config: Config
    listeners: list[Listener]
    preloaded: object | None = None  # the app (or its factory) when --preload
    max_requests: int = 0
    scoreboard: Scoreboard | None = None  # live connection counts of all workers
    extra: dict[str, object] = field(default_factory=dict)  # composition-root additions


WorkerMain = Callable[[WorkerContext], int]

# A worker's stop signals. Until the worker main installs its own handlers (when it starts
# serving), each of them makes it exit 0 at once.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT)


def _leave_before_serving(signum: int, frame: object) -> None:  # pragma: no cover - child
    os._exit(0)


def fork_worker(
    make_context: Callable[[int], WorkerContext],
    worker_main: WorkerMain,
    close_in_child: Iterable[int],
) -> tuple[int, int]:
    """Fork a worker; return ``(pid, read_fd)`` in the master. Raises OSError if fork fails.

    ``make_context(write_fd)`` builds the context; ``close_in_child`` are the master's
    private descriptors (signal pipe, other workers' pipes) that a worker must not hold.
    """
    read_fd, write_fd = os.pipe()
    # A signal for the new worker (a TTOU right after a TTIN stops it at once) may arrive
    # before the child dropped the master's handlers: that one would only enqueue it in the
    # child's copy of the master's queue, and the worker would boot and serve on. Blocked
    # across the fork, it stays pending until the child's own handlers are in place.
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # pragma: no cover - runs in the child; covered by the end-to-end tests
        code = 1
        try:
            os.close(read_fd)
            for fd in close_in_child:
                with contextlib.suppress(OSError):
                    os.close(fd)
            SignalQueue.reset_in_child()
            for sig in STOP_SIGNALS:  # not serving yet: nothing to drain, leave at once
                signal.signal(sig, _leave_before_serving)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # pending ones land now
            code = worker_main(make_context(write_fd))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            sys.excepthook(*sys.exc_info())  # a traceback, in the log format (logs.configure)
            code = 1
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return pid, read_fd


def describe_status(status: int) -> tuple[int, str]:
    """``waitpid`` status -> (exit code or -signal, readable text)."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return code, f"killed by {name}"
    return code, f"exit code {code}"


def read_rss(pid: int) -> int:
    """Resident set size in bytes from /proc (0 when unavailable)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as file:
            return int(file.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0
