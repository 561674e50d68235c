"""The master's signal queue: handlers only enqueue; the arbiter loop does the work.

Owns: installing and restoring the master's handlers and the self-pipe that wakes the loop's
``select`` (``signal.set_wakeup_fd``). A handler runs between two bytecodes of whatever the
master was doing, so it must not log, reap, fork or touch state: it appends the signal number
to a queue, and the C-level wakeup fd makes ``select`` return at once.

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import deque
from collections.abc import Iterable
from types import FrameType

__all__ = ["HANDLED", "SignalQueue"]

HANDLED: tuple[signal.Signals, ...] = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGCHLD,
)


class SignalQueue:
    """Collects signals for the arbiter loop. ``fileno()`` becomes readable on arrival."""

    def __init__(self, signals: Iterable[signal.Signals] = HANDLED) -> None:
        self._signals = tuple(signals)
        self._queue: deque[int] = deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1
        self.installed = False

    def fileno(self) -> int:
        return self._read_fd

    @property
    def fds(self) -> tuple[int, int]:
        """Both pipe ends (a forked worker closes them)."""
        return self._read_fd, self._write_fd

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self._queue.append(signum)  # deque.append is atomic; nothing else happens here

    def install(self) -> None:
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for sig in self._signals:
            self._previous[sig] = signal.signal(sig, self._handler)
        # A restarted system call is better than an EINTR in the middle of a write.
        for sig in self._signals:
            signal.siginterrupt(sig, False)
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        for sig, previous in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, previous)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_wakeup)
        self.installed = False

    def push(self, signum: int) -> None:
        """Enqueue as if the signal had arrived (tests, internal requests)."""
        self._queue.append(signum)
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, b"\0")

    def drain(self) -> list[int]:
        """Every signal received since the last call, in order."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._read_fd, 4096):
                pass
        pending = []
        while self._queue:
            pending.append(self._queue.popleft())
        return pending

    def close(self) -> None:
        self.uninstall()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    @staticmethod
    def reset_in_child(signals: Iterable[signal.Signals] = HANDLED) -> None:
        """In a freshly forked worker: default handlers, no wakeup fd."""
        signal.set_wakeup_fd(-1)
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)
