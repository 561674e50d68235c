"""``cleanup_ctx``: open a resource at startup and close it at cleanup, in one generator.

The "database" is an in-memory stand-in for a real connection pool.
Try:   curl http://localhost:8080/     -> 3 rows, pool open
The server prints "pool opened" at startup and "pool closed" when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from forkloop import web


class Pool:
    """Stands in for an async database pool (asyncpg, aiomysql, ...)."""

    def __init__(self) -> None:
        self.open = False

    async def connect(self) -> None:
        self.open = True
        print("pool opened", flush=True)

    async def fetch_rows(self) -> list[int]:
        if not self.open:
            raise RuntimeError("pool is closed")
        return [1, 2, 3]

    async def close(self) -> None:
        self.open = False
        print("pool closed", flush=True)


pool_key = web.AppKey("pool", Pool)


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = Pool()
    await pool.connect()
    app[pool_key] = pool
    yield
    await pool.close()


async def rows(request: web.Request) -> web.Response:
    pool = request.app[pool_key]
    found = await pool.fetch_rows()
    return web.Response(text=f"{len(found)} rows, pool {'open' if pool.open else 'closed'}")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_get("/", rows)
    return app


if __name__ == "__main__":
    web.run_app(init_func())
