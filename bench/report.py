"""From raw wrk runs to the figures people read: medians, ratios, checks, Markdown, chart, docs.

Pure functions over plain dicts (the same dicts that go into bench/results/*.json), so the
report can be rebuilt from a results file: ``python bench/report.py bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BASELINE = "aiohttp"
TARGET_RATIO = 2.0  # issue 2 acceptance: forkloop >= 2.0x aiohttp req/s
LONG_RUN_RATIO = 2.5  # issue 2: the long-run target
METRICS_MAX_COST = 0.05  # issue 8: metrics on costs <= 5 % of plaintext throughput
# Above this median share of a pinned CPU taken by other processes, a run is called noisy.
NOISY_SHARE = 0.10

TIMES = "\u00d7"  # the multiplication sign of "2.10x"

# One colour per server, the same in every chart.
CHART_COLORS = {
    "forkloop": "#1f6feb",
    "forkloop-metrics": "#79a8f5",
    "aiohttp": "#8c8c8c",
    "uvicorn": "#e0823d",
    "granian-rsgi": "#b04fc9",
    "granian-asgi": "#d9a0e6",
    "granian": "#b04fc9",
    "gunicorn": "#c9b037",
    "nginx": "#2f8f8f",
    "ceiling": "#3fa34d",
}
ISSUE17_RATIO = 3.0  # issue 17: plaintext and JSON >= 3x aiohttp and ahead of granian

DOCS_BEGIN = "<!-- bench:results:begin -->"
DOCS_END = "<!-- bench:results:end -->"


# ------------------------------------------------------------------------------ numbers


def _median(values: Iterable[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else None


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario and peer: median req/s over rounds, p99, CPU per request, ratio to aiohttp.

    ``runs`` are the measured (not warm-up) runs, each with ``scenario``, ``peer``, ``round``,
    ``rps``, ``latency_p99_ms``, ``errors``, ``non_2xx`` and ``cpu_us_per_req``.
    """
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for run in runs:
        grouped.setdefault(run["scenario"], {}).setdefault(run["peer"], []).append(run)
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario, by_peer in grouped.items():
        rows: dict[str, dict[str, Any]] = {}
        for peer, peer_runs in by_peer.items():
            ordered = sorted(peer_runs, key=lambda r: int(r["round"]))
            rows[peer] = {
                "rps_median": _median(float(r["rps"]) for r in ordered),
                "rps_rounds": [float(r["rps"]) for r in ordered],
                "latency_p99_ms_median": _median(float(r["latency_p99_ms"]) for r in ordered),
                "cpu_us_per_req_median": _median(
                    float(r.get("cpu_us_per_req", math.nan)) for r in ordered
                ),
                "rss_mib_max": max(
                    (float(r["server_rss_mib"]) for r in ordered if "server_rss_mib" in r),
                    default=None,
                ),
                "errors": sum(int(r["errors"]) for r in ordered),
                "non_2xx": sum(int(r["non_2xx"]) for r in ordered),
            }
        base = rows.get(BASELINE, {}).get("rps_median")
        base_cpu = rows.get(BASELINE, {}).get("cpu_us_per_req_median")
        for row in rows.values():
            rps, cpu = row["rps_median"], row["cpu_us_per_req_median"]
            row["ratio_to_aiohttp"] = rps / base if base and rps is not None else None
            # The same comparison by server CPU per request: aiohttp's cost over this one's.
            # It moves much less than req/s when other work shares the machine.
            row["cpu_ratio_to_aiohttp"] = base_cpu / cpu if base_cpu and cpu else None
        summary[scenario] = rows
    return summary


def paired_ratio(
    runs: Sequence[Mapping[str, Any]], scenario: str, peer: str, other: str, field: str = "rps"
) -> float | None:
    """Median over rounds of ``peer``/``other`` (req/s, or ``field``) measured in one round.

    Pairing by round cancels most of the drift of a shared machine, which matters when the
    difference sought (a few per cent) is smaller than the drift between rounds.
    """
    by_round: dict[int, dict[str, float]] = {}
    for run in runs:
        if run["scenario"] == scenario and run["peer"] in (peer, other) and field in run:
            by_round.setdefault(int(run["round"]), {})[run["peer"]] = float(run[field])
    ratios = [r[peer] / r[other] for r in by_round.values() if r.get(other) and peer in r]
    return statistics.median(ratios) if ratios else None


def noise(runs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Median share of the server's and of wrk's CPU that other processes took, over runs."""
    out: dict[str, float] = {}
    for field in ("others_on_server_cpu", "others_on_client_cpu"):
        values = [float(r[field]) for r in runs if r.get(field) is not None]
        clean = [v for v in values if not math.isnan(v)]
        if clean:
            out[field] = statistics.median(clean)
    return out


def is_noisy(runs: Sequence[Mapping[str, Any]]) -> bool:
    return any(share > NOISY_SHARE for share in noise(runs).values())


def checks(
    summary: Mapping[str, Mapping[str, Mapping[str, Any]]],
    runs: Sequence[Mapping[str, Any]],
    skipped: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The acceptance figures of issues 2 and 8, each with its value, target and verdict.

    On a noisy run (see ``noise``) every verdict is marked provisional.
    """
    noisy = is_noisy(runs)
    result: list[dict[str, Any]] = []
    for scenario in ("plaintext", "json"):
        row = summary.get(scenario, {}).get("forkloop")
        ratio = row.get("ratio_to_aiohttp") if row else None
        result.append(
            {
                "name": f"forkloop {scenario} >= {TARGET_RATIO:g}x aiohttp req/s",
                "value": ratio,
                "value_by_cpu": row.get("cpu_ratio_to_aiohttp") if row else None,
                "target": TARGET_RATIO,
                "long_run_target": LONG_RUN_RATIO,
                "ok": None if ratio is None else ratio >= TARGET_RATIO,
                "provisional": noisy,
                "note": None if ratio is not None else skipped.get("forkloop", "forkloop not run"),
            }
        )
    for scenario in ("plaintext", "json"):
        result.extend(_issue17_checks(summary.get(scenario, {}), scenario, noisy))
    ratio = paired_ratio(runs, "plaintext", "forkloop-metrics", "forkloop")
    cost = None if ratio is None else 1.0 - ratio
    # The same cost read from server CPU per request (throughput of a CPU-bound server is its
    # inverse): steadier than req/s when other work shares the machine.
    cpu_ratio = paired_ratio(runs, "plaintext", "forkloop", "forkloop-metrics", "cpu_us_per_req")
    result.append(
        {
            "name": f"metrics on costs <= {METRICS_MAX_COST:.0%} of plaintext req/s",
            "value": cost,
            "value_by_cpu": None if cpu_ratio is None else 1.0 - cpu_ratio,
            "target": METRICS_MAX_COST,
            "ok": None if cost is None else cost <= METRICS_MAX_COST,
            "provisional": noisy,
            "note": None
            if cost is not None
            else skipped.get("forkloop-metrics", "forkloop and forkloop-metrics not both run"),
        }
    )
    return result


def _issue17_checks(
    rows: Mapping[str, Mapping[str, Any]], scenario: str, noisy: bool
) -> list[dict[str, Any]]:
    """Issue 17: forkloop >= 3x aiohttp, and ahead of granian RSGI and ASGI (req/s and CPU)."""
    out: list[dict[str, Any]] = []
    mine = rows.get("forkloop")
    if mine is None:
        return out
    ratio = mine.get("ratio_to_aiohttp")
    out.append(
        {
            "name": f"forkloop {scenario} >= {ISSUE17_RATIO:g}x aiohttp req/s (issue 17)",
            "value": ratio,
            "value_by_cpu": mine.get("cpu_ratio_to_aiohttp"),
            "target": ISSUE17_RATIO,
            "ok": None if ratio is None else ratio >= ISSUE17_RATIO,
            "provisional": noisy,
            "note": None,
        }
    )
    for peer in ("granian-rsgi", "granian-asgi"):
        other = rows.get(peer)
        if other is None:
            continue
        rps, other_rps = mine.get("rps_median"), other.get("rps_median")
        cpu, other_cpu = mine.get("cpu_us_per_req_median"), other.get("cpu_us_per_req_median")
        value = rps / other_rps if rps and other_rps else None
        by_cpu = other_cpu / cpu if cpu and other_cpu else None
        out.append(
            {
                "name": f"forkloop {scenario} ahead of {peer} (req/s and CPU/req; issue 17)",
                "value": value,
                "value_by_cpu": by_cpu,
                "target": 1.0,
                "ok": None if value is None or by_cpu is None else value > 1 and by_cpu > 1,
                "provisional": noisy,
                "note": None,
            }
        )
    return out


def workload_chart(result: Mapping[str, Any], path: Path) -> Path | None:
    """The chart of one workload of bench/bench_*.py that returns a ``chart`` entry.

    ``chart`` is ``{"title": str, "panels": [{"title", "unit", "lower_is_better",
    "groups": {group: {peer: value}}}]}``: one panel per figure (e.g. req/s, CPU µs per
    request), a group of bars per case, one bar per server. None without matplotlib or data.
    """
    spec = result.get("chart")
    if not isinstance(spec, Mapping) or not spec.get("panels"):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = list(spec["panels"])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.6), dpi=110)
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, panel in zip(axes, panels, strict=True):
        groups: Mapping[str, Mapping[str, float]] = panel["groups"]
        peers = list(dict.fromkeys(p for g in groups.values() for p in g))
        width = 0.8 / max(len(peers), 1)
        for i, peer in enumerate(peers):
            xs, ys = [], []
            for j, values in enumerate(groups.values()):
                value = values.get(peer)
                if value is not None and not math.isnan(value):
                    xs.append(j + width * (i + 0.5 - len(peers) / 2))
                    ys.append(value)
            bars = ax.bar(xs, ys, width * 0.92, label=peer, color=CHART_COLORS.get(peer))
            shown = [f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}" for y in ys]
            ax.bar_label(bars, labels=shown, fontsize=7, padding=2)
        ax.set_xticks(range(len(groups)), list(groups))
        better = "lower" if panel.get("lower_is_better") else "higher"
        ax.set_title(f"{panel['title']} ({panel.get('unit', '')}) — {better} is better", fontsize=9)
        ax.margins(y=0.2)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels) or 1), fontsize=8,
               frameon=False)  # fmt: skip
    fig.suptitle(str(spec.get("title", "")), fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- Markdown


def _fmt_int(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _table(header: Sequence[str], align: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def http_table(results: Mapping[str, Any]) -> str:
    summary = results["summary"]
    labels = {key: peer["label"] for key, peer in results["peers"].items()}
    rows = []
    for scenario, by_peer in summary.items():
        order = [k for k in results["peers"] if k in by_peer]
        for peer in order:
            row = by_peer[peer]
            ratio = row["ratio_to_aiohttp"]
            rounds = " / ".join(f"{v:,.0f}" for v in row["rps_rounds"])
            flags = ""
            if row["errors"] or row["non_2xx"]:
                flags = f" ⚠ {row['errors']} socket errors, {row['non_2xx']} HTTP >= 400"
            rows.append(
                [
                    scenario,
                    labels.get(peer, peer),
                    _fmt_int(row["rps_median"]),
                    _fmt(ratio, ".2f", TIMES),
                    _fmt(row["latency_p99_ms_median"], ".2f"),
                    _fmt(row["cpu_us_per_req_median"], ".1f"),
                    _fmt(row.get("cpu_ratio_to_aiohttp"), ".2f", TIMES),
                    _fmt(row.get("rss_mib_max"), ".1f"),
                    rounds + flags,
                ]
            )
    return _table(
        [
            "test",
            "server",
            "req/s (median)",
            "vs aiohttp",
            "p99 ms",
            "server CPU µs/req",
            "vs aiohttp by CPU",
            "RSS MiB",
            "rounds (req/s)",
        ],
        ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---"],
        rows,
    )


def _shown_value(item: Mapping[str, Any]) -> str:
    value, by_cpu = item["value"], item.get("value_by_cpu")
    if value is None:
        return f"not measured ({item['note']})"
    if "metrics" in item["name"]:
        shown = f"{value:+.1%} cost"
        if by_cpu is not None:
            shown += f" (by server CPU per request: {by_cpu:+.1%})"
        return shown
    shown = f"{value:.2f}{TIMES}"
    if by_cpu is not None:
        shown += f" (by server CPU per request: {by_cpu:.2f}{TIMES})"
    goal = item.get("long_run_target")
    if goal and value < goal:
        shown += f"; {value / goal:.0%} of the {goal:g}{TIMES} long-run target"
    elif goal:
        shown += f"; meets the {goal:g}{TIMES} long-run target"
    return shown


def checks_markdown(items: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for item in items:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}[item["ok"]]
        if item["ok"] is not None and item.get("provisional"):
            mark += " (provisional: noisy machine)"
        lines.append(f"- **{mark}** {item['name']}: {_shown_value(item)}")
    return "\n".join(lines)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), sub, out)
    else:
        out[prefix] = value


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def extra_markdown(name: str, entry: Mapping[str, Any]) -> str:
    """One other benchmark's section. Its ``measure()`` dict may carry ``title`` and either
    ``markdown`` (used as is) or ``rows`` (a list of dicts, shown as a table); without those,
    every other key becomes a figure/value row. The whole dict is kept in the JSON either way.
    """
    if entry.get("status") != "ok":
        return f"#### {name}\n\n{entry.get('status', 'failed')}: {entry.get('error', '')}"
    result = entry.get("result")
    if not isinstance(result, Mapping):
        return f"#### {name}\n\n`{result!r}`"
    parts = [f"#### {result.get('title') or name}"]
    if isinstance(result.get("markdown"), str):
        parts.append(result["markdown"].strip())
        return "\n\n".join(parts)
    rows = result.get("rows")
    if isinstance(rows, list) and rows and all(isinstance(r, Mapping) for r in rows):
        header = list(dict.fromkeys(k for r in rows for k in r))
        parts.append(
            _table(
                header, ["---"] * len(header), ([_cell(r.get(k, "")) for k in header] for r in rows)
            )
        )
        return "\n\n".join(parts)  # the rows are the presentation; the rest stays in the JSON
    flat: dict[str, Any] = {}
    _flatten("", {k: v for k, v in result.items() if k not in ("title", "rows")}, flat)
    if flat:
        parts.append(
            _table(["figure", "value"], ["---", "---:"], ([k, _cell(v)] for k, v in flat.items()))
        )
    return "\n\n".join(parts)


def machine_line(results: Mapping[str, Any]) -> str:
    m = results["machine"]
    load_start = m.get("load_average", [math.nan])[0]
    load_end = results.get("load_average_end", [math.nan])[0]
    pkgs = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items() if v)
    wrk = f"{m['wrk']}; " if m.get("wrk") else ""
    return (
        f"{m.get('cpu_model')} ({m.get('cpu_count')} CPUs), {m.get('memory_gib')} GiB, "
        f"{m.get('kernel')}, Python {m.get('python')}; {pkgs}; {wrk}"
        f"forkloop at {m.get('git_revision') or '?'}; load average {load_start:.2f} at start, "
        f"{load_end:.2f} at end"
    )


def settings_line(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    pin = (
        f"servers pinned to CPU {s['server_cpu']}, wrk to CPU {s['client_cpu']}"
        if s.get("pin")
        else "no CPU pinning"
    )
    return (
        f"wrk -t{s['threads']} -c{s['connections']} -d{s['duration_s']:g}s, "
        f"{s['rounds']} interleaved round(s) after a {s['warmup_s']:g} s warm-up per server and "
        f"test; one server process each; {pin}"
    )


def markdown(results: Mapping[str, Any]) -> str:
    """The whole report as Markdown: what stdout shows and what docs/benchmarks.md embeds.

    Sections are level-3 headings (the docs page puts the block under a level-2 heading).
    """
    http = results["settings"].get("http", True)
    parts = [f"Run {results['started_at']}: `{results['command']}`"]
    if http:
        parts.append(f"Settings: {settings_line(results)}.")
    parts.append(f"Machine: {machine_line(results)}.")
    if results["summary"]:
        parts += ["### Plaintext and JSON", http_table(results)]
    if http:
        parts += ["### Checks", checks_markdown(results["checks"])]
    if results["notes"]:
        parts += ["### Notes", "\n".join(f"- {n}" for n in results["notes"])]
    if results.get("extras"):
        parts.append("### Other benchmarks")
        parts += [extra_markdown(name, entry) for name, entry in results["extras"].items()]
    return "\n\n".join(parts) + "\n"


# -------------------------------------------------------------------------------- chart


def _bar_group(
    ax: Any,
    results: Mapping[str, Any],
    scenarios: Sequence[str],
    peers: Sequence[str],
    value_key: str,
    ratio_key: str,
    shown: str,
) -> None:
    """One panel: a group of bars per test, one bar per server, value and ratio on top."""
    summary = results["summary"]
    width = 0.8 / len(peers)
    # Each group is centred on its test and holds only the servers measured in that test.
    position: dict[tuple[str, str], float] = {}
    for j, scenario in enumerate(scenarios):
        present = [p for p in peers if summary[scenario].get(p, {}).get(value_key) is not None]
        for i, peer in enumerate(present):
            position[(scenario, peer)] = j + width * (i + 0.5 - len(present) / 2)
    for peer in peers:
        xs, ys, labels = [], [], []
        for scenario in scenarios:
            if (scenario, peer) not in position:
                continue
            row = summary[scenario][peer]
            xs.append(position[(scenario, peer)])
            ys.append(row[value_key])
            ratio = row.get(ratio_key)
            text = shown.format(row[value_key])
            labels.append(text if ratio is None else f"{text}\n{ratio:.2f}{TIMES}")
        color = CHART_COLORS.get(peer, "#a371f7")
        bars = ax.bar(xs, ys, width * 0.92, label=results["peers"][peer]["label"], color=color)
        ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
    ax.set_xticks(range(len(scenarios)), scenarios)
    ax.margins(y=0.2)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def chart(results: Mapping[str, Any], path: Path) -> Path | None:
    """Two panels per test and server: req/s (higher is better) and server CPU per request
    (lower is better), each bar labelled with its ratio to aiohttp.

    Returns None (with no file written) when matplotlib is missing or nothing was measured.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    summary = results["summary"]
    scenarios = [s for s in ("plaintext", "json") if s in summary] or list(summary)
    peers = [k for k in results["peers"] if any(k in summary[s] for s in scenarios)]
    if not scenarios or not peers:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.2), dpi=120)
    _bar_group(left, results, scenarios, peers, "rps_median", "ratio_to_aiohttp", "{:,.0f}")
    left.set_title("requests per second (median of rounds) — higher is better", fontsize=9)
    left.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    _bar_group(
        right, results, scenarios, peers, "cpu_us_per_req_median", "cpu_ratio_to_aiohttp", "{:.1f}"
    )
    right.set_title("server CPU µs per request — lower is better", fontsize=9)
    when = results["started_at"][:16].replace("T", " ")
    fig.suptitle(
        f"One process per server, wrk on the other CPU; ratio to aiohttp on the bars ({when} UTC)",
        fontsize=10,
    )
    runs = results.get("runs", [])
    if is_noisy(runs):
        worst = max(noise(runs).values())
        fig.text(
            0.5, 0.005,
            f"Provisional: other processes took {worst:.0%} of a benchmark CPU (median over "
            "runs); req/s is noisy, CPU per request much less so.",
            ha="center", fontsize=8, color="#b3261e",
        )  # fmt: skip
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(peers)), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.04))  # fmt: skip
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------- docs


def update_docs(doc: Path, report: str) -> bool:
    """Replace the text between the results markers of ``doc``; False when they are missing."""
    text = doc.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(DOCS_BEGIN) + r".*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        return False
    new = pattern.sub(lambda _: f"{DOCS_BEGIN}\n\n{report.strip()}\n\n{DOCS_END}", text, count=1)
    doc.write_text(new, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the Markdown report of a results file.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--chart", type=Path, help="also write the PNG chart here")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    if results.get("runs"):  # recompute, so an older file gets today's columns and checks
        results["summary"] = summarize(results["runs"])
        skipped = {k: p.get("note") for k, p in results["peers"].items() if p.get("note")}
        results["checks"] = checks(results["summary"], results["runs"], skipped)
    print(markdown(results))
    if args.chart:
        chart(results, args.chart)


if __name__ == "__main__":
    main()
