"""Listening sockets: parse bind addresses, bind every socket once in the master.

Owns: the bind syntax (``host:port``, ``[::1]:port``, ``unix:/path``, ``fd://N``), systemd
socket activation (``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``, sd_listen_fds(3)), the
``--reuse-port`` mode (one SO_REUSEPORT listener per worker, allowed only when the kernel
migrates a closed listener's queue: ``net.ipv4.tcp_migrate_req=1``), and handing the sockets
to a re-executed master (USR2) through the same systemd variables.

Besides the app listeners, a master may own *side sockets* that are not served by the workers
(the ``--metrics-bind`` listener, the channel on which an old master hands its metrics totals
to the new one). They travel the same way, told apart by their ``LISTEN_FDNAMES`` name
(``forkloop-metrics``, ``forkloop-metrics-carry``): :func:`bind_all` sets them aside, and
:func:`take_side_socket` gives them to their owner. Systemd may pass ``forkloop-metrics`` too.

Workers inherit the master's sockets across ``fork``; in reuse-port mode the master only binds
(reserving the port, never listening, so it gets no connections) and each worker opens its own
listener on the same address.

Imports: stdlib only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass

__all__ = [
    "SD_LISTEN_FDS_START",
    "SIDE_SOCKET_NAMES",
    "BindError",
    "BindSpec",
    "Listener",
    "ReusePortRefusedError",
    "bind_all",
    "check_reuse_port",
    "close_all",
    "close_side_sockets",
    "exec_environment",
    "open_worker_socket",
    "parse_bind",
    "parse_host_port",
    "take_side_socket",
]

SD_LISTEN_FDS_START = 3
MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req"
# Names of inherited sockets that are not app listeners (see the module docstring).
SIDE_SOCKET_NAMES = frozenset({"forkloop-metrics", "forkloop-metrics-carry"})
# Side sockets found by bind_all, waiting for take_side_socket(). Process-wide, as the
# LISTEN_FDS variables they come from are.
_side_sockets: dict[str, socket.socket] = {}


def take_side_socket(name: str) -> socket.socket | None:
    """The inherited side socket called ``name`` (once), or None."""
    return _side_sockets.pop(name, None)


def close_side_sockets() -> None:
    """Close the inherited side sockets nobody took (e.g. metrics turned off across a USR2)."""
    while _side_sockets:
        with contextlib.suppress(OSError):
            _side_sockets.popitem()[1].close()


class BindError(Exception):
    """A socket could not be bound or adopted; ``str(exc)`` is one line."""

    exit_code = 1


class ReusePortRefusedError(BindError):
    """--reuse-port on a kernel that would drop a closed listener's queue: a config error."""

    exit_code = 2


@dataclass(frozen=True)
class BindSpec:
    """A parsed ``--bind`` value."""

    kind: str  # "tcp" | "unix" | "fd"
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); raises ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"expected [IPV6]:PORT, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        if ":" in host:
            raise ValueError(f"write IPv6 addresses as [ADDR]:PORT, got {text!r}")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"bad port in {text!r}")
    if not host:
        host = "0.0.0.0"
    return host, int(port_text)


def parse_bind(text: str) -> BindSpec:
    """Parse one ``--bind`` value; raises ValueError with a readable message."""
    text = text.strip()
    if text.startswith("unix:"):
        path = text[5:]
        if not path:
            raise ValueError("unix: needs a path, e.g. unix:/run/app.sock")
        return BindSpec("unix", path=path)
    if text.startswith("fd://"):
        number = text[5:]
        if not number.isdigit():
            raise ValueError(f"fd:// needs a file descriptor number, got {text!r}")
        return BindSpec("fd", fd=int(number))
    host, port = parse_host_port(text)
    return BindSpec("tcp", host=host, port=port)


class Listener:
    """A socket bound by the master, shared by (or, with reuse-port, reserved for) workers."""

    def __init__(
        self,
        spec: BindSpec,
        sock: socket.socket,
        *,
        reuse_port: bool = False,
        owned_path: str | None = None,
        name: str = "",
    ) -> None:
        self.spec = spec
        self.sock = sock
        self.reuse_port = reuse_port
        self.owned_path = owned_path  # a unix socket file we created and remove at exit
        self.name = name

    @property
    def family(self) -> int:
        return int(self.sock.family)

    @property
    def address(self) -> str:
        """Human-readable address with the real port (after binding port 0)."""
        if self.family == socket.AF_UNIX:
            name = self.sock.getsockname()
            return f"unix:{name.decode() if isinstance(name, bytes) else name}"
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if self.family == socket.AF_INET6 else f"{host}:{port}"

    def url(self, tls: bool = False) -> str:
        scheme = "https" if tls else "http"
        return f"{scheme}://{self.address}" if self.family != socket.AF_UNIX else self.address

    def __repr__(self) -> str:
        return f"<Listener {self.address} fd={self.sock.fileno()}>"


def check_reuse_port(path: str = MIGRATE_REQ) -> None:
    """Refuse --reuse-port unless the kernel migrates a closing listener's accept queue."""
    try:
        with open(path, encoding="ascii") as file:
            value = file.read().strip()
    except OSError:
        value = "unavailable"
    if value != "1":
        raise ReusePortRefusedError(
            f"--reuse-port refused: net.ipv4.tcp_migrate_req is {value} (needs 1), so a worker "
            "that stops would drop the connections queued on its listener; enable it with "
            "`sysctl -w net.ipv4.tcp_migrate_req=1` or run without --reuse-port"
        )


def _tcp_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return sock


def _unix_socket(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode
        if not stat.S_ISSOCK(mode):
            raise BindError(f"cannot bind unix:{path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: nobody is listening on it
        else:
            raise BindError(f"cannot bind unix:{path}: another server is listening on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind unix:{path}: {exc.strerror}") from None
    return sock


def _adopt_fd(fd: int, what: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise BindError(f"cannot use {what}: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BindError(f"cannot use {what}: not a stream socket")
    return sock


def _systemd_fds(environ: MutableMapping[str, str]) -> list[tuple[int, str]]:
    """Consume LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES when they are meant for this process."""
    count = environ.get("LISTEN_FDS", "")
    pid = environ.get("LISTEN_PID", "")
    names = environ.get("LISTEN_FDNAMES", "")
    for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        environ.pop(key, None)  # never leak them to workers or the app
    if not count.isdigit() or pid != str(os.getpid()):
        return []
    labels = names.split(":") if names else []
    return [
        (SD_LISTEN_FDS_START + i, labels[i] if i < len(labels) else "") for i in range(int(count))
    ]


def bind_all(
    specs: Iterable[BindSpec],
    *,
    backlog: int,
    reuse_port: bool = False,
    environ: MutableMapping[str, str] | None = None,
) -> list[Listener]:
    """Bind (or adopt) every listener once. Raises :class:`BindError`.

    Sockets passed by systemd or by a previous master (``LISTEN_FDS``) replace ``--bind``.
    """
    env = os.environ if environ is None else environ
    inherited = _systemd_fds(env)
    listeners: list[Listener] = []
    if reuse_port:
        check_reuse_port()
    try:
        side = [(fd, name) for fd, name in inherited if name in SIDE_SOCKET_NAMES]
        for fd, name in side:
            with contextlib.suppress(BindError):
                _side_sockets[name] = _adopt_fd(fd, f"LISTEN_FDS socket {fd}")
        inherited = [(fd, name) for fd, name in inherited if name not in SIDE_SOCKET_NAMES]
        if inherited:
            for fd, name in inherited:
                sock = _adopt_fd(fd, f"LISTEN_FDS socket {fd}")
                share = not (reuse_port and sock.family in (socket.AF_INET, socket.AF_INET6))
                if share:
                    sock.listen(backlog)
                listeners.append(
                    Listener(_spec_of(sock, fd), sock, reuse_port=not share, name=name)
                )
            return listeners
        for spec in specs:
            listeners.append(_bind_one(spec, backlog=backlog, reuse_port=reuse_port))  # noqa: PERF401 - partial list closed on error
    except BaseException:
        close_all(listeners)
        raise
    return listeners


def _spec_of(sock: socket.socket, fd: int) -> BindSpec:
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        return BindSpec("unix", path=name.decode() if isinstance(name, bytes) else str(name))
    host, port = sock.getsockname()[:2]
    return BindSpec("tcp", host=host, port=port, fd=fd)


def _bind_one(spec: BindSpec, *, backlog: int, reuse_port: bool) -> Listener:
    if spec.kind == "unix":
        sock = _unix_socket(spec.path)
        sock.listen(backlog)
        return Listener(spec, sock, owned_path=spec.path)
    if spec.kind == "fd":
        sock = _adopt_fd(spec.fd, f"fd://{spec.fd}")
        sock.listen(backlog)
        return Listener(spec, sock)
    sock = _tcp_socket(spec.host, spec.port, reuse_port=reuse_port)
    if reuse_port:
        return Listener(spec, sock, reuse_port=True)  # bound, never listening
    sock.listen(backlog)
    return Listener(spec, sock)


def open_worker_socket(listener: Listener, backlog: int) -> socket.socket:
    """The socket a worker serves on: the shared one, or its own SO_REUSEPORT listener."""
    if not listener.reuse_port:
        return listener.sock
    sock = socket.socket(listener.sock.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listener.sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(listener.sock.getsockname())
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def close_all(listeners: Iterable[Listener], *, unlink: bool = True) -> None:
    """Close every listener; remove the unix socket files this master created."""
    for listener in listeners:
        with contextlib.suppress(OSError):
            listener.sock.close()
        if unlink and listener.owned_path:
            with contextlib.suppress(OSError):
                os.unlink(listener.owned_path)


def exec_environment(
    listeners: list[Listener],
    base: Mapping[str, str],
    side: Mapping[str, socket.socket] | None = None,
) -> dict[str, str]:
    """In a forked child about to ``exec`` a new master: move the listeners, then the named
    ``side`` sockets, to fds 3.. and return the environment announcing them (LISTEN_PID is
    this child's pid)."""
    named = [(listener.sock, listener.name or "forkloop") for listener in listeners]
    named += [(sock, name) for name, sock in (side or {}).items()]
    # First move every socket above the target range so dup2 never clobbers one we still need.
    high = [fcntl_dup(sock.fileno()) for sock, _ in named]
    for index, fd in enumerate(high):
        os.dup2(fd, SD_LISTEN_FDS_START + index, inheritable=True)
        os.close(fd)
    env = dict(base)
    env["LISTEN_FDS"] = str(len(named))
    env["LISTEN_PID"] = str(os.getpid())
    env["LISTEN_FDNAMES"] = ":".join(name for _, name in named)
    return env


def fcntl_dup(fd: int) -> int:
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)
    except OSError as exc:  # pragma: no cover - fd table full
        raise BindError(f"cannot duplicate fd {fd}: {errno.errorcode.get(exc.errno or 0)}") from exc
