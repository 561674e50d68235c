"""Where does a server's time go? Profile the benchmark app under wrk load with cProfile.

Starts ``bench/peers/web_app.py`` (forkloop by default) under ``python -m cProfile``, pinned to
CPU 0, loads it with wrk pinned to CPU 1, stops it with SIGTERM (run_app exits cleanly, so the
profile is written) and prints the functions with the most own time. cProfile slows everything
down several times, so read the proportions, not the req/s.

    python bench/profile_peer.py                      # forkloop, GET /, 5 s
    python bench/profile_peer.py --framework aiohttp --path /json --top 40
    python bench/profile_peer.py --output /tmp/forkloop.prof   # keep the stats for snakeviz
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    HOST,
    PEERS_DIR,
    ServerProcess,
    WrkConfig,
    find_wrk,
    free_port,
    pinned,
    run_wrk,
    write_lua_script,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=("forkloop", "aiohttp"), default="forkloop")
    parser.add_argument("--metrics", action="store_true", help="profile the metrics variant")
    parser.add_argument("--path", default="/", choices=("/", "/json"))
    parser.add_argument("-d", "--duration", type=int, default=5)
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative", "ncalls"))
    parser.add_argument("--output", type=Path, help="keep the cProfile stats file here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="forkloop-profile-") as tmp:
        stats_file = args.output or Path(tmp) / "server.prof"
        port = free_port()
        command = [
            sys.executable, "-m", "cProfile", "-o", str(stats_file),
            str(PEERS_DIR / "web_app.py"), "--framework", args.framework,
            "--host", HOST, "--port", str(port),
            *(["--metrics"] if args.metrics else []),
        ]  # fmt: skip
        server = ServerProcess(f"{args.framework}-profiled", pinned(0, command), port)
        wrk = WrkConfig(
            wrk=find_wrk(),
            lua_script=write_lua_script(Path(tmp)),
            connections=args.connections,
            cpu=1,
        )
        server.start()
        try:
            server.wait_ready(30)
            result = run_wrk(wrk, f"http://{HOST}:{port}{args.path}", args.duration)
        finally:
            server.stop(timeout_s=30)
        print(
            f"{args.framework} {args.path}: {result.rps:,.0f} req/s under cProfile "
            f"({result.requests:,} requests, {result.errors} socket errors)\n"
        )
        if not stats_file.exists():
            print("the server wrote no profile (did it exit cleanly?)", file=sys.stderr)
            return 1
        out = io.StringIO()
        stats = pstats.Stats(str(stats_file), stream=out)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
        per_request = stats.total_tt / max(result.requests, 1) * 1e6  # type: ignore[attr-defined]
        print(f"profiled time per request: {per_request:.1f} µs (cProfile overhead included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
