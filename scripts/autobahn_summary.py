"""Summarise an Autobahn|Testsuite fuzzingclient report (``index.json``) for forkloop.

Prints the number of cases per behaviour and per case group, lists every case that is not OK,
NON-STRICT or INFORMATIONAL, and exits 1 when there is one (or when no case ran).

    python scripts/autobahn_summary.py REPORTS_DIR/index.json [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    index = json.loads(args.index.read_text())
    bad: list[str] = []
    totals: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = {}
    for agent, cases in index.items():
        for case in sorted(cases, key=case_key):
            result = cases[case]
            behavior = result["behavior"]
            close = result.get("behaviorClose", "OK")
            totals[behavior] += 1
            groups.setdefault(case.split(".")[0], Counter())[behavior] += 1
            if behavior not in ACCEPTED or close not in ACCEPTED:
                bad.append(f"{agent} {case}: behavior={behavior} close={close}")
    count = sum(totals.values())
    if args.markdown:
        names = sorted({b for c in groups.values() for b in c})
        print("| cases | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for group in sorted(groups, key=int):
            row = [str(groups[group].get(n, 0)) for n in names]
            print(f"| {group}.* | " + " | ".join(row) + " |")
        print(f"| **all {count}** | " + " | ".join(str(totals.get(n, 0)) for n in names) + " |")
    else:
        print(f"{count} cases: " + ", ".join(f"{n} {b}" for b, n in sorted(totals.items())))
        for group in sorted(groups, key=int):
            print(
                f"  {group}.*: " + ", ".join(f"{n} {b}" for b, n in sorted(groups[group].items()))
            )
    for line in bad:
        print("NOT ACCEPTED:", line)
    return 1 if bad or not count else 0


if __name__ == "__main__":
    sys.exit(main())
