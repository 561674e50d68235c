"""Accept-queue depth of listening TCP sockets, read from Linux's /proc/net/tcp{,6}.

Owns the parsing of those tables: for a socket in LISTEN state the kernel reports the
connections waiting to be accepted as ``rx_queue`` and the queue's size as ``tx_queue``.
Elsewhere (no /proc) it reports nothing. Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["listen_queues", "parse_proc_net_tcp"]

_LISTEN = "0A"


def parse_proc_net_tcp(text: str) -> Iterator[tuple[int, int, int]]:
    """``(local port, queued, maximum)`` of each LISTEN socket in a /proc/net/tcp table."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5 or fields[3] != _LISTEN:
            continue
        try:
            port = int(fields[1].rsplit(":", 1)[1], 16)
            tx_queue, rx_queue = (int(part, 16) for part in fields[4].split(":"))
        except (ValueError, IndexError):
            continue
        yield port, rx_queue, tx_queue


def listen_queues(ports: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int, int]]:
    """``(listener name, queued, maximum)`` for the named TCP ports that are listening here."""
    wanted = dict((port, name) for name, port in ports)
    if not wanted:
        return
    seen: dict[str, tuple[int, int]] = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path, encoding="ascii") as table:
                text = table.read()
        except OSError:
            continue
        for port, queued, maximum in parse_proc_net_tcp(text):
            name = wanted.get(port)
            if name is not None:
                old = seen.get(name, (0, 0))
                seen[name] = (old[0] + queued, max(old[1], maximum))
    for name, (queued, maximum) in sorted(seen.items()):
        yield name, queued, maximum
