"""Route resolution cost: a 1,000-route table with path parameters vs a 10-route table.

forkloop indexes resources by their static path prefix, so resolving a path should cost about
the same whatever the size of the table. This measures what ``Application._handle`` does per
request to route it (extract the path, resolve it to a match info) on the same kind of paths in
both tables, interleaving rounds and keeping each table's best round. Time is the thread's CPU
time, so other processes on a shared machine distort it less than wall-clock time would.

    python bench/bench_routing.py            # prints ns per resolution and the ratio

``measure()`` returns the figures as a dict for the bench harness. When aiohttp is installed
its router is measured on the same tables for comparison (``await router.resolve``).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from forkloop import web
from forkloop.core.web.urldispatcher import request_path
from forkloop.test_utils import make_mocked_request

ROUNDS = 7
LOOKUPS = 20_000


async def _handler(request: Any) -> Any:  # never called
    raise NotImplementedError


def route_specs(size: int) -> list[tuple[str, str]]:
    """``size`` routes of a REST-like API: (path pattern, a concrete path that matches it).

    Two fifths plain, two fifths with one parameter, one fifth with two.
    """
    specs: list[tuple[str, str]] = []
    for i in range(size):
        kind = i % 5
        n = i // 5
        if kind in (0, 1):
            specs.append((f"/api/v1/res{n}/op{kind}", f"/api/v1/res{n}/op{kind}"))
        elif kind in (2, 3):
            specs.append((f"/api/v1/res{n}/{{id}}/f{kind}", f"/api/v1/res{n}/{n * 7 + 1}/f{kind}"))
        else:
            specs.append(
                (f"/api/v1/res{n}/{{id}}/items/{{item:\\d+}}", f"/api/v1/res{n}/9/items/{n}")
            )
    return specs


def _targets(specs: list[tuple[str, str]], count: int) -> list[str]:
    rng = random.Random(1234)
    paths = [path for _, path in specs]
    targets = [rng.choice(paths) for _ in range(count - count // 20)]
    targets += ["/api/v1/missing/path"] * (count // 20)  # 5 % misses (404)
    rng.shuffle(targets)
    return targets


def _forkloop_router(specs: list[tuple[str, str]]) -> web.UrlDispatcher:
    app = web.Application()
    for pattern, _ in specs:
        app.router.add_get(pattern, _handler)
    app.freeze()
    return app.router


def _time_forkloop(router: web.UrlDispatcher, requests: list[Any]) -> float:
    resolve = router._resolve_sync
    start = time.thread_time_ns()
    for request in requests:
        resolve(request, request.method, request_path(request))
    return (time.thread_time_ns() - start) / len(requests)


def _check_forkloop(router: web.UrlDispatcher, specs: list[tuple[str, str]]) -> None:
    for _, path in specs:
        request = make_mocked_request("GET", path)
        info = router._resolve_sync(request, "GET", request_path(request))
        if info is None or info.http_exception is not None:
            raise RuntimeError(f"bench table broken: {path} did not resolve")


def _aiohttp_side(
    specs_small: list[tuple[str, str]],
    specs_big: list[tuple[str, str]],
    targets_small: list[str],
    targets_big: list[str],
    rounds: int,
) -> dict[str, float] | None:
    try:
        from aiohttp import web as aio_web
        from aiohttp.test_utils import make_mocked_request as aio_mocked
    except ImportError:
        return None

    def router_for(specs: list[tuple[str, str]]) -> Any:
        app = aio_web.Application()
        for pattern, _ in specs:
            app.router.add_get(pattern, _handler)
        app.freeze()
        return app.router

    async def run() -> dict[str, float]:
        small, big = router_for(specs_small), router_for(specs_big)
        reqs_small = [aio_mocked("GET", p) for p in targets_small]
        reqs_big = [aio_mocked("GET", p) for p in targets_big]
        best = {"small": float("inf"), "big": float("inf")}
        for _ in range(rounds):
            for key, router, reqs in (("small", small, reqs_small), ("big", big, reqs_big)):
                resolve = router.resolve
                start = time.thread_time_ns()
                for request in reqs:
                    await resolve(request)
                best[key] = min(best[key], (time.thread_time_ns() - start) / len(reqs))
        return best

    best = asyncio.run(run())
    return {
        "aiohttp_ns_10": round(best["small"], 1),
        "aiohttp_ns_1000": round(best["big"], 1),
        "aiohttp_ratio": round(best["big"] / best["small"], 3),
    }


def measure(lookups: int = LOOKUPS, rounds: int = ROUNDS, *, quick: bool = False) -> dict[str, Any]:
    """ns per resolution on a 10- and a 1,000-route table, and their ratio (1000 / 10).

    ``quick`` (the harness's smoke mode) uses a tenth of the lookups and three rounds.
    """
    if quick:
        lookups, rounds = max(lookups // 10, 100), min(rounds, 3)
    specs_small, specs_big = route_specs(10), route_specs(1000)
    router_small, router_big = _forkloop_router(specs_small), _forkloop_router(specs_big)
    _check_forkloop(router_small, specs_small)
    _check_forkloop(router_big, specs_big)
    targets_small, targets_big = _targets(specs_small, lookups), _targets(specs_big, lookups)
    reqs_small = [make_mocked_request("GET", p) for p in targets_small]
    reqs_big = [make_mocked_request("GET", p) for p in targets_big]
    best_small = best_big = float("inf")
    for _ in range(rounds):  # interleaved, so machine noise hits both tables alike
        best_small = min(best_small, _time_forkloop(router_small, reqs_small))
        best_big = min(best_big, _time_forkloop(router_big, reqs_big))
    result: dict[str, Any] = {
        "title": "Route resolution: 1,000 routes with path parameters vs 10 (ns per request)",
        "lookups": lookups,
        "rounds": rounds,
        "ns_per_resolve_10": round(best_small, 1),
        "ns_per_resolve_1000": round(best_big, 1),
        "ratio_1000_vs_10": round(best_big / best_small, 3),
    }
    aio = _aiohttp_side(
        specs_small, specs_big, targets_small[: lookups // 4], targets_big[: lookups // 4], rounds
    )
    rows = [
        {"table": "10 routes", "forkloop ns": result["ns_per_resolve_10"]},
        {"table": "1,000 routes", "forkloop ns": result["ns_per_resolve_1000"]},
        {"table": "ratio 1,000 / 10 (target <= 1.5)", "forkloop ns": result["ratio_1000_vs_10"]},
    ]
    if aio is not None:
        result.update(aio)
        for row, key in zip(
            rows, ("aiohttp_ns_10", "aiohttp_ns_1000", "aiohttp_ratio"), strict=True
        ):
            row["aiohttp ns"] = aio[key]
    result["rows"] = rows
    return result


def main() -> None:
    r = measure()
    print(
        f"route resolution, {r['lookups']} lookups x {r['rounds']} rounds "
        "(thread CPU time, best round)"
    )
    print(f"  forkloop   10 routes: {r['ns_per_resolve_10']:8.1f} ns/resolve")
    print(f"  forkloop 1000 routes: {r['ns_per_resolve_1000']:8.1f} ns/resolve")
    print(f"  ratio 1000/10: {r['ratio_1000_vs_10']:.2f}x (acceptance: <= 1.5x)")
    if "aiohttp_ns_10" in r:
        print(
            f"  aiohttp    10 routes: {r['aiohttp_ns_10']:8.1f} ns/resolve, "
            f"1000 routes: {r['aiohttp_ns_1000']:8.1f} ns/resolve "
            f"(ratio {r['aiohttp_ratio']:.2f}x)"
        )


if __name__ == "__main__":
    main()
