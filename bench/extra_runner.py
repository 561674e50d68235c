"""Run one other benchmark script's ``measure()`` in this (child) process; write its dict as JSON.

``bench/run.py`` starts one of these per ``bench/bench_*.py`` so that each benchmark gets a
fresh interpreter, a time limit and a process group of its own (what it starts, the harness can
stop). ``measure`` is called with ``quick=True`` when run.py is in quick mode and the function
accepts a ``quick`` parameter.

    python bench/extra_runner.py bench_routing OUT.json [--quick] [--path DIR]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--path", type=Path, default=BENCH_DIR, help="where the module lives")
    args = parser.parse_args(argv)
    for directory in (BENCH_DIR, args.path):
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
    module = importlib.import_module(args.module)
    measure = module.measure
    kwargs = {}
    if args.quick and "quick" in inspect.signature(measure).parameters:
        kwargs["quick"] = True
    result = measure(**kwargs)
    args.out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
