"""The master's control socket: ``forkloop status|reload|scale|stop`` over a Unix socket.

Owns: where the socket lives (:func:`default_path`), binding it safely (mode 0600, atomically
renamed into place, a live socket of another master never stolen unless this master is its USR2
successor), the server side (:class:`ControlServer`: non-blocking, served from the arbiter's
``poll`` loop, one JSON object per line each way, every peer checked with ``SO_PEERCRED``), the
request grammar (:func:`parse_request`), the status report built from the policy state
(:func:`status_report`) and the client side used by the CLI (:func:`call`,
:func:`format_status`).

Protocol (version 1). A request is one line holding a JSON object with ``"cmd"``:
``{"cmd":"status"}``, ``{"cmd":"reload"}``, ``{"cmd":"scale","workers":N}``,
``{"cmd":"stop","graceful":true}``. Each request gets one line back: ``{"ok":true,...}`` or
``{"ok":false,"error":"one line"}``. A connection may carry several requests. What the master
does with a request is exactly what the matching signal does (HUP, TTIN/TTOU to N, TERM/QUIT):
the arbiter maps them onto the same code.

Limits, so that a confused or hostile local client costs a bounded amount: a request line is
at most :data:`MAX_LINE_BYTES` (longer: an error, then the connection is closed, since its
framing is unknown); at most :data:`MAX_CLIENTS` connections at once; a connection idle for
:data:`IDLE_TIMEOUT_S` is closed; once :data:`OUTPUT_HIGH_BYTES` of answers wait for a client,
its further lines wait unread until it reads them (so one loop turn answers a bounded number of
requests, and a client that never reads is closed when idle). A peer whose uid is not the
master's gets one error line and is closed, whatever the socket file's mode says.

Imports: stdlib and sibling supervisor modules only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import struct
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .policy import Phase, State, Worker
from .snapshot import take

__all__ = [
    "IDLE_TIMEOUT_S",
    "MAX_CLIENTS",
    "MAX_LINE_BYTES",
    "OUTPUT_HIGH_BYTES",
    "SOCKET_NAME",
    "ControlError",
    "ControlServer",
    "Request",
    "RequestError",
    "call",
    "default_path",
    "format_status",
    "open_server",
    "parse_request",
    "status_report",
]

log = logging.getLogger("forkloop.supervisor")

VERSION = 1
SOCKET_NAME = "forkloop.sock"
MAX_LINE_BYTES = 4096
MAX_CLIENTS = 16
IDLE_TIMEOUT_S = 10.0
OUTPUT_HIGH_BYTES = 64 << 10  # answers queued for one client before its next lines wait
MAX_RESPONSE_BYTES = 16 << 20  # the client's bound on one answer (a status of many workers)
MAX_SCALE = 1024
COMMANDS = ("status", "reload", "scale", "stop")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlError(Exception):
    """The control socket cannot be opened or reached; ``str(exc)`` is one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class RequestError(ValueError):
    """A request the master does not accept; its text is sent back as the error."""


# --------------------------------------------------------------------------- where


def default_path(
    pid_file: str | None, environ: Mapping[str, str] | None = None, uid: int | None = None
) -> str:
    """The socket path when ``--control`` is not given.

    Beside the pid file when there is one (unless its directory is world-writable, like
    ``/tmp``, where another user could put a socket there first), else in ``$XDG_RUNTIME_DIR``,
    else in a private ``/tmp/forkloop-<uid>`` directory (created 0700 and checked, like tmux's).
    The server and the client compute the same path.
    """
    env = os.environ if environ is None else environ
    if pid_file:
        directory = os.path.dirname(os.path.abspath(pid_file))
        try:
            shared = bool(os.stat(directory).st_mode & stat.S_IWOTH)
        except OSError:
            shared = False  # binding there fails with a clear message
        if not shared:
            return os.path.join(directory, SOCKET_NAME)
    runtime = env.get("XDG_RUNTIME_DIR", "").strip()
    if runtime:
        return os.path.join(runtime, SOCKET_NAME)
    return os.path.join(private_dir(os.geteuid() if uid is None else uid), SOCKET_NAME)


def private_dir(uid: int) -> str:
    return os.path.join("/tmp", f"forkloop-{uid}")  # noqa: S108 - checked by _check_private


def _check_private(directory: str) -> None:
    """Create ``directory`` 0700, or accept it only if it is ours and nobody else may write it."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"{directory} is not a directory")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ControlError(f"{directory} is not a private directory of uid {os.geteuid()}")


# --------------------------------------------------------------------------- binding


def _answers(path: str) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _owner(path: str) -> int | None:
    """The pid of the master answering on ``path`` (None: nobody answers)."""
    if not _answers(path):
        return None
    try:
        master = call(path, {"cmd": "status"}, timeout_s=2.0).get("master")
    except ControlError:
        return -1
    pid = master.get("pid") if isinstance(master, dict) else None
    return pid if isinstance(pid, int) else -1


def _bind(path: str, *, take_over: int | None) -> socket.socket:
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISSOCK(existing.st_mode):
            raise ControlError(f"{path} exists and is not a socket")
        owner = _owner(path)
        if owner is not None and owner != take_over:  # a USR2 successor replaces its parent's
            holder = f"another master (pid {owner})" if owner > 0 else "another process"
            raise ControlError(f"{path} is in use by {holder}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    old_mask = os.umask(0o177)  # the file is born 0600: no window where others may connect
    try:
        sock.bind(temporary)
        os.chmod(temporary, 0o600)
        sock.listen(MAX_CLIENTS)
        # Renamed into place: a client never meets a half-made socket, and a USR2 successor
        # replaces its predecessor's socket without a moment with no socket at all.
        os.replace(temporary, path)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ControlError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old_mask)
    sock.setblocking(False)
    return sock


def open_server(
    option: str | None,
    pid_file: str | None,
    *,
    take_over: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ControlServer | None:
    """The server for ``--control`` (None: the default path; "off": no socket).

    ``take_over``: the pid of the master this one upgrades (USR2), whose socket it replaces.
    An explicit path that cannot be used raises :class:`ControlError`; the default path only
    logs a warning, and the master runs without a control socket.
    """
    if option is not None and option.strip().lower() in ("off", "none", "false", "0"):
        return None
    explicit = bool(option)
    path = os.path.abspath(option) if option else default_path(pid_file, environ)
    try:
        if not explicit and os.path.dirname(path) == private_dir(os.geteuid()):
            _check_private(os.path.dirname(path))
        return ControlServer(_bind(path, take_over=take_over), path)
    except ControlError as exc:
        if explicit:
            raise ControlError(f"--control {option}: {exc}") from None
        log.warning("no control socket: %s (set --control PATH)", exc)
        return None


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    command: str
    workers: int = 0  # scale
    graceful: bool = False  # stop


def parse_request(line: bytes) -> Request:
    """One request line -> :class:`Request`; raises :class:`RequestError` with the reason."""
    try:
        payload = json.loads(line)
    except (ValueError, RecursionError):
        raise RequestError("malformed JSON: a request is one JSON object per line") from None
    if not isinstance(payload, dict):
        raise RequestError('a request must be a JSON object such as {"cmd": "status"}')
    command = payload.get("cmd")
    if not isinstance(command, str) or command not in COMMANDS:
        shown = command if isinstance(command, str) else json.dumps(command)
        raise RequestError(f"unknown command {shown[:64]!r}: expected {', '.join(COMMANDS)}")
    if command == "scale":
        workers = payload.get("workers")
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise RequestError("scale needs an integer number of workers")
        if not 1 <= workers <= MAX_SCALE:
            raise RequestError(f"scale: workers must be between 1 and {MAX_SCALE}, got {workers}")
        return Request(command, workers=workers)
    if command == "stop":
        graceful = payload.get("graceful", False)
        if not isinstance(graceful, bool):
            raise RequestError("stop: graceful must be true or false")
        return Request(command, graceful=graceful)
    return Request(command)


def _encode(answer: Mapping[str, Any]) -> bytes:
    return (json.dumps(answer, separators=(",", ":"), default=str) + "\n").encode()


def error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": " ".join(message.split())}


# --------------------------------------------------------------------------- the server

Handler = Callable[[Request], Mapping[str, Any]]


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    last_active: float  # the last byte received or sent
    inbuf: bytes = b""  # an unfinished line
    pending: deque[bytes] = field(default_factory=deque)  # lines read, not yet answered
    outbuf: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the peer sends no more
    closing: bool = False  # close once outbuf is sent


class ControlServer:
    """The listening socket and its clients, driven by the arbiter's selector.

    ``attach(selector, handler, clock)`` registers the listener; the arbiter passes every
    selector event whose ``data`` this server owns to :meth:`on_event`, and calls
    :meth:`expire` once per loop turn.
    """

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path
        self.inode = os.stat(path).st_ino
        self.uid = os.geteuid()
        self.clients: dict[int, _Client] = {}
        self.refused = 0
        self.closed = False
        self._selector: selectors.BaseSelector | None = None
        self._handler: Handler | None = None
        self._clock: Callable[[], float] = lambda: 0.0

    def attach(
        self, selector: selectors.BaseSelector, handler: Handler, clock: Callable[[], float]
    ) -> None:
        self._selector = selector
        self._handler = handler
        self._clock = clock
        selector.register(self.sock, selectors.EVENT_READ, self)

    def fds(self) -> list[int]:
        """Every descriptor of this server (a forked worker closes them)."""
        return [self.sock.fileno(), *self.clients]

    def owns(self, data: object) -> bool:
        return data is self or isinstance(data, _Client)

    def on_event(self, data: object, events: int) -> None:
        if data is self:
            self._accept()
        elif isinstance(data, _Client) and data.sock.fileno() in self.clients:
            if events & selectors.EVENT_READ:
                self._read(data)
            if data.sock.fileno() in self.clients:
                self._work(data)

    def expire(self, now: float) -> None:
        for client in list(self.clients.values()):
            if now - client.last_active > IDLE_TIMEOUT_S:
                self._drop(client)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for client in list(self.clients.values()):
            with contextlib.suppress(OSError):
                client.sock.send(client.outbuf)  # a last answer ("stopping") if it fits
            self._drop(client)
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self.sock)
        # Unlink only our own socket: after USR2 the path names the new master's.
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        self.sock.close()

    # ------------------------------------------------------------------ connections

    def _accept(self) -> None:
        for _ in range(64):  # a bounded batch per turn; the rest wait in the backlog
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: try again next turn
                log.warning("control socket: accept failed: %s", exc)
                return
            sock.setblocking(False)
            refusal = self._refusal(sock)
            if refusal is not None:
                with contextlib.suppress(OSError):
                    sock.send(_encode(error(refusal)))
                sock.close()
                continue
            client = _Client(sock, self._clock())
            self.clients[sock.fileno()] = client
            if self._selector is not None:
                self._selector.register(sock, selectors.EVENT_READ, client)

    def _refusal(self, sock: socket.socket) -> str | None:
        try:
            _, uid, _ = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
        except OSError as exc:
            return f"cannot check the peer's credentials: {exc.strerror}"
        if uid != self.uid:
            self.refused += 1
            log.warning("control socket: refused a client of uid %d (master uid %d)", uid, self.uid)
            return f"refused: uid {uid} is not the master's uid {self.uid}"
        if len(self.clients) >= MAX_CLIENTS:
            return f"busy: {MAX_CLIENTS} control connections are open already"
        return None

    def _read(self, client: _Client) -> None:
        if client.pending or client.eof or client.closing:
            return  # answer what was read first: the work per turn stays bounded
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.last_active = self._clock()
        if not data:  # the peer is done sending: answer a last unterminated line too
            client.eof = True
            data = b"\n"
        *lines, client.inbuf = (client.inbuf + data).split(b"\n")
        client.pending.extend(lines)
        if len(client.inbuf) > MAX_LINE_BYTES:  # answered in its turn, after the lines before it
            client.pending.append(client.inbuf)
            client.inbuf = b""

    def _work(self, client: _Client) -> None:
        """Answer pending lines until about :data:`OUTPUT_HIGH_BYTES` wait to be sent, send."""
        while client.pending and not client.closing and len(client.outbuf) < OUTPUT_HIGH_BYTES:
            line = client.pending.popleft()
            if len(line) > MAX_LINE_BYTES:
                # The framing is unknown from here on: answer, then close.
                client.pending.clear()
                client.outbuf += _encode(error(f"request line longer than {MAX_LINE_BYTES} bytes"))
                client.closing = True
            elif line.strip():
                client.outbuf += _encode(self._answer(line))
        if client.eof and not client.pending:
            client.closing = True
        self._flush(client)

    def _answer(self, line: bytes) -> Mapping[str, Any]:
        try:
            request = parse_request(line)
        except RequestError as exc:
            return error(str(exc))
        return self._dispatch(request)

    def _dispatch(self, request: Request) -> Mapping[str, Any]:
        if self._handler is None:
            return error("the master is not ready for requests")
        try:
            return self._handler(request)
        except Exception as exc:  # the master keeps running whatever a request hits
            log.exception("control request %s failed", request.command)
            return error(f"{request.command} failed: {exc}")

    def _flush(self, client: _Client) -> None:
        while client.outbuf:
            try:
                sent = client.sock.send(client.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(client)
                return
            del client.outbuf[:sent]
            client.last_active = self._clock()
        if not client.outbuf and client.closing:
            self._drop(client)
            return
        # Writable also when lines wait to be answered: the next turn goes on with them. Reading
        # resumes only once every line read was answered and the answers are mostly sent.
        events = selectors.EVENT_WRITE if client.outbuf or client.pending else 0
        if not client.pending and not client.closing and len(client.outbuf) < OUTPUT_HIGH_BYTES:
            events |= selectors.EVENT_READ
        if self._selector is not None and events:
            self._selector.modify(client.sock, events, client)

    def _drop(self, client: _Client) -> None:
        fd = client.sock.fileno()
        if self.clients.pop(fd, None) is None:
            return
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(client.sock)
        client.sock.close()


# --------------------------------------------------------------------------- status


def worker_state(worker: Worker) -> str:
    """booting, ready or draining (and aborting/killing for a worker being put down)."""
    if worker.phase == Phase.BOOTING:
        return "booting"
    if worker.phase == Phase.READY:
        return "draining" if worker.draining else "ready"
    if worker.phase == Phase.STOPPING:
        return "draining"
    return str(worker.phase.value)


def status_report(
    state: State,
    now: float,
    *,
    pid: int,
    started_at: float,
    binds: Sequence[str],
    control: str,
    rss: Callable[[int], int] | None = None,
) -> dict[str, Any]:
    """What ``forkloop status`` shows, as plain JSON values. ``now`` is the policy clock."""
    snapshot = take(state, now)
    workers = []
    for w in sorted(state.workers, key=lambda w: (w.slot, w.pid)):
        resident = rss(w.pid) if rss is not None else 0
        workers.append(
            {
                "slot": w.slot,
                "pid": w.pid,
                "generation": w.generation,
                "state": worker_state(w),
                "phase": w.phase.value,
                "age_s": round(max(0.0, now - w.started_at), 3),
                "requests": w.requests,
                "inflight": w.inflight,
                "connections": w.connections,
                "rss_bytes": resident or w.rss_bytes,
                "loop_lag_s": w.lag_s,
                "last_beat_s": round(max(0.0, now - w.last_beat_at), 3),
            }
        )
    return {
        "v": VERSION,
        "ok": True,
        "master": {
            "pid": pid,
            "uptime_s": round(max(0.0, now - started_at), 3),
            "generation": state.generation,
            "mode": state.mode.value,
            "target": state.target,
            "reloads": state.reloads,
            "reload_failed": state.reload_failed,
            "binds": list(binds),
            "control": control,
        },
        "workers": workers,
        "restarts": dict(snapshot.restarts_by_cause),
    }


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _size(count: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if count < 1024 or unit == "G":
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.1f}{unit}"
        count /= 1024
    return f"{count:.1f}G"  # pragma: no cover - the loop returns


def format_status(report: Mapping[str, Any]) -> str:
    """The one table of ``forkloop status``."""
    master = report["master"]
    lines = [
        f"master {master['pid']}  up {_duration(master['uptime_s'])}  "
        f"generation {master['generation']}  {master['mode']}  "
        f"workers {len(report['workers'])} (target {master['target']})"
        + ("  last reload FAILED" if master.get("reload_failed") else ""),
        f"binds: {', '.join(master['binds']) or '-'}",
        "",
    ]
    header = (
        "SLOT",
        "PID",
        "GEN",
        "STATE",
        "AGE",
        "REQUESTS",
        "INFLIGHT",
        "CONNS",
        "RSS",
        "LAG",
        "HEARTBEAT",
    )
    rows = [header]
    rows.extend(
        (
            str(w["slot"]),
            str(w["pid"]),
            str(w["generation"]),
            w["state"],
            _duration(w["age_s"]),
            str(w["requests"]),
            str(w["inflight"]),
            str(w["connections"]),
            _size(w["rss_bytes"]),
            f"{w['loop_lag_s'] * 1000:.1f}ms",
            f"{_duration(w['last_beat_s'])} ago",
        )
        for w in report["workers"]
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
    restarts = report.get("restarts", {})
    shown = ", ".join(f"{cause} {count}" for cause, count in restarts.items()) or "none"
    lines += ["", f"restarts: {shown}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the client


def call(path: str, request: Mapping[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Send one request to the master at ``path``; its answer (``ok`` may be false).

    Raises :class:`ControlError` (one line) when the master cannot be reached or answers
    something that is not a JSON object line.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        _connect(sock, path)
        answer = _exchange(sock, path, _encode(request), timeout_s)
    finally:
        sock.close()
    line = answer.split(b"\n", 1)[0]
    if not line:
        raise ControlError(f"the master at {path} closed the connection without an answer")
    try:
        payload = json.loads(line)
    except ValueError:
        raise ControlError(f"{path} did not answer in JSON: is it a forkloop master?") from None
    if not isinstance(payload, dict):
        raise ControlError(f"{path} did not answer with a JSON object")
    return payload


def _connect(sock: socket.socket, path: str) -> None:
    try:
        sock.connect(path)
    except FileNotFoundError:
        raise ControlError(
            f"no control socket at {path}: is forkloop serve running? (--control PATH)"
        ) from None
    except PermissionError:
        raise ControlError(f"permission denied on {path}: run this as the master's user") from None
    except ConnectionRefusedError:
        raise ControlError(f"nothing listens on {path} (a stale socket?)") from None
    except OSError as exc:
        raise ControlError(f"cannot connect to {path}: {exc.strerror or exc}") from None


def _exchange(sock: socket.socket, path: str, data: bytes, timeout_s: float) -> bytes:
    """Send ``data``, return what came back up to the first newline (bounded)."""
    answer = bytearray()
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)  # on a refusal, the master's error line is still readable
        while b"\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
            if len(answer) > MAX_RESPONSE_BYTES:
                raise ControlError(f"the answer from {path} is too long")
    except TimeoutError:
        raise ControlError(f"no answer from {path} within {timeout_s:g}s") from None
    except OSError as exc:
        if b"\n" not in answer:
            raise ControlError(f"{path}: {exc.strerror or exc}") from None
    return bytes(answer)
