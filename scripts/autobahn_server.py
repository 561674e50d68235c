"""The echo server the Autobahn|Testsuite fuzzing client tests (run by scripts/autobahn.sh).

Every text and binary message comes back unchanged; permessage-deflate is offered; messages up
to 64 MiB are accepted (the suite's largest is 16 MiB).

    python scripts/autobahn_server.py --port 9001
"""

from __future__ import annotations

import argparse
import asyncio

from forkloop import web


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024, compress=True)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"autobahn echo server on ws://{host}:{port}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
