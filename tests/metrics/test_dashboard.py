"""The Grafana dashboard: valid, and every metric it queries is one forkloop exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "forkloop-dashboard.json"
DOCS = ROOT / "docs" / "metrics.md"


def _exported_names() -> set[str]:
    """Every metric family the collectors define (read from their source, names in quotes)."""
    text = (ROOT / "forkloop" / "metrics" / "exposition.py").read_text()
    return set(re.findall(r'"((?:http_server|forkloop)_[a-z_]+)"', text))


def _queried(expr: str) -> set[str]:
    names = set(re.findall(r"\b((?:http_server|forkloop)_[a-z_]+)\b", expr))
    return {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in names}


def test_dashboard_is_valid_and_queries_real_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    exported = _exported_names()
    assert "http_server_request_duration_seconds" in exported
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            unknown = _queried(target["expr"]) - exported
            assert not unknown, f"{panel['title']}: {unknown}"


@pytest.mark.parametrize("name", sorted(_exported_names()))
def test_every_metric_is_documented(name: str) -> None:
    assert f"`{name}" in DOCS.read_text(), f"{name} missing from docs/metrics.md"


def test_dashboard_has_the_overload_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in dashboard["panels"]
    }
    shed = exprs["Overload: requests shed by reason"]
    assert "sum by (reason) (rate(http_server_requests_shed_total" in shed
    queue = exprs["Request queue time p99 (admitted)"]
    assert "histogram_quantile(0.99" in queue
    assert "http_server_request_queue_duration_seconds_bucket" in queue
    # Laid out below the others, not over them.
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
    assert len(boxes) == len(set(boxes))
