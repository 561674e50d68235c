"""deploy/overload: the overlay that turns overload protection on and scales on queue time.

Checked: yamllint; the overlay's patches against the base (same names, an env patch the
supervisor accepts); the HPA's Pods metric is the one the prometheus-adapter rules expose, and
those rules query metrics forkloop exports; the patched HPA validates against Kubernetes'
schema (kubernetes-validate); kustomize renders it where kubectl exists.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deployspec import DEPLOY, K8S, ROOT, find_tool, load_yaml_documents

from forkloop.supervisor.config import load_config

OVERLAY = DEPLOY / "overload"


def _doc(name: str) -> dict[str, Any]:
    pytest.importorskip("yaml", reason="PyYAML missing: pip install yamllint kubernetes-validate")
    (doc,) = load_yaml_documents(OVERLAY / name)
    return doc


def _exported() -> set[str]:
    text = (ROOT / "forkloop" / "metrics" / "exposition.py").read_text()
    return set(re.findall(r'"((?:http_server|forkloop)_[a-z_]+)"', text))


def test_yamllint_strict_is_clean() -> None:
    pytest.importorskip("yamllint", reason="yamllint not installed (pip install yamllint)")
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-c", str(DEPLOY / "yamllint.yaml"), str(OVERLAY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_overlay_patches_the_base_by_name() -> None:
    kustomization = _doc("kustomization.yaml")
    assert kustomization["resources"] == ["../k8s"]
    patched = {p["path"] for p in kustomization["patches"]}
    assert patched == {p.name for p in OVERLAY.glob("*.yaml")} - {
        "kustomization.yaml",
        "prometheus-adapter-values.yaml",
    }
    base = {doc["kind"]: doc for p in K8S.glob("*.yaml") for doc in load_yaml_documents(p)}
    for name in patched:
        patch = _doc(name)
        target = base[patch["kind"]]
        assert patch["apiVersion"] == target["apiVersion"]
        assert patch["metadata"]["name"] == target["metadata"]["name"]


def test_the_env_patch_is_accepted_by_the_supervisor() -> None:
    patch = _doc("deployment-overload.yaml")
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    config = load_config(["forkloop.demo:app"], env)
    assert config.max_concurrency == 64
    assert config.max_queue_time_s == 0.5


def test_hpa_scales_on_the_metric_the_adapter_exposes() -> None:
    hpa = _doc("hpa-queue-time.yaml")
    kinds = [metric["type"] for metric in hpa["spec"]["metrics"]]
    assert kinds == ["Resource", "Pods"]  # the patch replaces the list: CPU is kept
    pods = hpa["spec"]["metrics"][1]["pods"]
    values = _doc("prometheus-adapter-values.yaml")
    rules = values["rules"]["custom"]
    exposed = {rule["name"]["as"]: rule for rule in rules}
    rule = exposed[pods["metric"]["name"]]
    assert "histogram_quantile(0.99" in rule["metricsQuery"]
    assert pods["target"]["type"] == "AverageValue"
    # Its threshold is below the overlay's --max-queue-time: scale out before shedding.
    env = _doc("deployment-overload.yaml")["spec"]["template"]["spec"]["containers"][0]["env"]
    max_queue = float(next(e["value"] for e in env if e["name"] == "FORKLOOP_MAX_QUEUE_TIME"))
    assert float(pods["target"]["averageValue"].removesuffix("m")) / 1000 < max_queue
    exported = _exported()
    for rule in rules:
        (series,) = re.findall(r"^(\w+)\{", rule["seriesQuery"])
        assert re.sub(r"_(bucket|total)$", "", series) in exported, series
        assert re.fullmatch(rule["name"]["matches"], series)
        assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
        assert "<<.LabelMatchers>>" in rule["metricsQuery"]


def test_patched_hpa_validates(tmp_path: Path) -> None:
    pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed")
    import yaml

    (hpa,) = load_yaml_documents(K8S / "hpa.yaml")
    merged = copy.deepcopy(hpa)
    merged["spec"]["metrics"] = _doc("hpa-queue-time.yaml")["spec"]["metrics"]
    path = tmp_path / "hpa.yaml"
    path.write_text(yaml.safe_dump(merged))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.30", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kustomize_renders_the_overlay() -> None:
    kubectl = find_tool("kubectl", "install kubectl to render the overlay")
    import yaml

    out = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(out) if doc}
    env = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]
    names = [item["name"] for item in env]
    assert {"WEB_CONCURRENCY", "FORKLOOP_MAX_CONCURRENCY", "FORKLOOP_MAX_QUEUE_TIME"} <= set(names)
    assert len(docs["HorizontalPodAutoscaler"]["spec"]["metrics"]) == 2
