"""The worker's balanced acceptor, in one process: real sockets, a real shared scoreboard."""

from __future__ import annotations

import asyncio
import os
import socket
import time

from forkloop.supervisor.scoreboard import Scoreboard
from forkloop.workers.accept import BalancedAcceptor


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(b"ok:" + data)  # type: ignore[attr-defined]
        self.transport.close()


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def test_connections_queued_before_the_stop_are_accepted_and_served() -> None:
    sock = listener()
    acceptor = BalancedAcceptor(
        sock, Echo, ssl_context=None, connections=lambda: 0, scoreboard=None, slot=0, fresh_s=1.0
    )
    acceptor.stop()  # never watched the socket: everything stays in the kernel's queue
    clients = [await asyncio.open_connection(*sock.getsockname()) for _ in range(5)]
    assert await acceptor.accept_queued() == 5
    for number, (reader, writer) in enumerate(clients):
        writer.write(f"{number}".encode())
        assert await asyncio.wait_for(reader.read(), 5) == f"ok:{number}".encode()
        writer.close()
    assert await acceptor.accept_queued() == 0  # the queue is empty now: EAGAIN, no error
    sock.close()


async def test_a_busier_worker_steps_aside_then_still_accepts_one() -> None:
    sock = listener()
    board = Scoreboard(4)
    now = time.monotonic()
    board.publish(0, os.getpid(), 5, stamp=now)  # us: 5 connections
    board.publish(1, 99999, 1, stamp=now)  # a live sibling with 1
    acceptor = BalancedAcceptor(
        sock, Echo, ssl_context=None, connections=lambda: 5, scoreboard=board, slot=0, fresh_s=5.0
    )
    clients = [await asyncio.open_connection(*sock.getsockname()) for _ in range(3)]
    acceptor._on_readable()  # as the loop would, with 3 connections queued
    assert (acceptor.accepted, acceptor.deferrals) == (0, 1)  # stepped aside ...
    assert not acceptor.watching
    await asyncio.sleep(0.2)
    # ... but after each pause it takes one anyway: the queue is never starved.
    assert acceptor.accepted == 3
    assert acceptor.deferrals >= 3
    # A sibling whose heartbeat stamp is stale (a stuck loop) does not count.
    board.publish(1, 99999, 1, stamp=now - 60)
    acceptor._refresh_at = 0.0
    deferrals = acceptor.deferrals
    clients += [await asyncio.open_connection(*sock.getsockname()) for _ in range(2)]
    await asyncio.sleep(0.2)
    assert acceptor.accepted == 5
    assert acceptor.deferrals == deferrals
    acceptor.stop()
    for reader, writer in clients:
        writer.write(b"x")
        assert await asyncio.wait_for(reader.read(), 5) == b"ok:x"
        writer.close()
    sock.close()
    board.close()
