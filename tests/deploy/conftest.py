"""Fixtures for tests/deploy: the repository's deploy/ files, parsed once per session."""

from __future__ import annotations

from typing import Any

import pytest
from deployspec import DOCKERFILE, K8S, Instruction, load_yaml_documents, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="session")
def manifests() -> dict[str, dict[str, Any]]:
    """The kustomization's resources by kind (each kind appears once in this base)."""
    pytest.importorskip("yaml", reason="PyYAML missing: pip install yamllint kubernetes-validate")
    kustomization = load_yaml_documents(K8S / "kustomization.yaml")[0]
    by_kind: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in load_yaml_documents(K8S / name):
            assert doc["kind"] not in by_kind, f"duplicate {doc['kind']} in the base"
            by_kind[doc["kind"]] = doc
    return by_kind


@pytest.fixture(scope="session")
def deployment(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return manifests["Deployment"]


@pytest.fixture(scope="session")
def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="session")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec["containers"]
    assert len(containers) == 1, "the base runs one container per pod"
    result: dict[str, Any] = containers[0]
    return result
