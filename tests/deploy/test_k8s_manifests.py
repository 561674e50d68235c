"""deploy/k8s: the kustomize base validated by real tools, then checked for consistency.

Tools: `kubectl kustomize` renders the base (skipped where kubectl is absent),
`kubernetes-validate --strict` validates every built-in kind against Kubernetes 1.30 and 1.37,
yamllint checks the YAML. kubernetes-validate has no schema for the Prometheus Operator's
ServiceMonitor, so that one is checked here against the fields documented in the operator's API
reference (monitoring.coreos.com/v1). The rest are cross-checks between the manifests, the
Dockerfile and the supervisor's documented options: the things a schema cannot see.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deployspec import (
    DEPLOY,
    K8S,
    ROOT,
    Instruction,
    container_argv,
    cpu_quantity,
    downward_cpu,
    entrypoint_argv,
    final_stage,
    find_tool,
    load_yaml_documents,
    option_value,
    port_by_name,
)

EXPECTED_KINDS = {
    "Deployment",
    "Service",
    "ServiceMonitor",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
}
# Seconds left between the end of the supervisor's own shutdown budget and the kubelet's SIGKILL.
SHUTDOWN_MARGIN_S = 5
# Kubernetes takes a few seconds to take a terminating pod out of every kube-proxy, ingress and
# load balancer; below this the drain delay cannot cover endpoint propagation.
MIN_DRAIN_DELAY_S = 5


# --------------------------------------------------------------------------------------------
# yamllint


def yamllint(*paths: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("yamllint", reason="yamllint not installed (pip install yamllint)")
    return subprocess.run(
        [sys.executable, "-m", "yamllint", "-s", "-c", str(DEPLOY / "yamllint.yaml"), *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_yamllint_strict_is_clean() -> None:
    result = yamllint(K8S, DEPLOY / "yamllint.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\nmetadata:\n  name: a\n  name: b\nspec:  {x: yes}\n")
    result = yamllint(bad)
    assert result.returncode != 0
    assert "key-duplicates" in result.stdout


# --------------------------------------------------------------------------------------------
# kubectl kustomize


def kustomize_build() -> list[dict[str, Any]]:
    import yaml

    kubectl = find_tool("kubectl", "install kubectl to render the kustomize base")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def project_version() -> str:
    """forkloop/__init__.py's ``__version__`` (pyproject.toml reads it from there)."""
    match = re.search(
        r'^__version__ = "([^"]+)"$', (ROOT / "forkloop" / "__init__.py").read_text(), re.M
    )
    assert match, "forkloop/__init__.py sets __version__"
    return match.group(1)


def test_kustomize_renders_the_base() -> None:
    docs = kustomize_build()
    assert {doc["kind"] for doc in docs} == EXPECTED_KINDS
    assert len(docs) == len(EXPECTED_KINDS)
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"forkloop:{project_version()}", "the image tag follows the release"


def test_base_lists_every_manifest_file(manifests: dict[str, dict[str, Any]]) -> None:
    kustomization = load_yaml_documents(K8S / "kustomization.yaml")[0]
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    assert set(manifests) == EXPECTED_KINDS


# --------------------------------------------------------------------------------------------
# kubernetes-validate --strict


def validate_versions() -> list[str]:
    """1.30 and 1.37, or the newest the installed kubernetes-validate knows if it lacks 1.37."""
    try:
        from kubernetes_validate import utils
    except ImportError:
        return ["1.30", "1.37"]  # the tests skip below with the install hint
    newest = utils.major_minor(utils.latest_version())
    known = {utils.major_minor(v) for v in utils.all_versions()}
    return ["1.30", "1.37" if "1.37" in known else newest]


def kubernetes_validate(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed (pip install it)"
    )
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rendered_or_raw(tmp_path: Path) -> Path:
    """The kustomize output when kubectl exists, else the base's files concatenated."""
    import yaml

    try:
        docs = kustomize_build()
    except pytest.skip.Exception:
        docs = [doc for p in sorted(K8S.glob("*.yaml")) for doc in load_yaml_documents(p)]
        docs = [doc for doc in docs if doc["kind"] != "Kustomization"]
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return out


@pytest.mark.parametrize("version", validate_versions())
def test_kubernetes_validate_strict(version: str, tmp_path: Path) -> None:
    result = kubernetes_validate(rendered_or_raw(tmp_path), version)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for kind in EXPECTED_KINDS - {"ServiceMonitor"}:
        assert any(
            "passed" in line and f"resource {kind.lower()}/forkloop" in line for line in lines
        ), f"{kind} not validated against {version}:\n{result.stdout}"
    # The only resource without a schema must be the CRD, checked by the tests further down.
    unchecked = [line for line in lines if not line.startswith("INFO")]
    assert all("ServiceMonitor" in line for line in unchecked), unchecked


def test_strict_validation_rejects_unknown_fields(
    tmp_path: Path, deployment: dict[str, Any]
) -> None:
    import yaml

    broken = copy.deepcopy(deployment)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")  # a typo that kubectl drops
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = kubernetes_validate(path, "1.30")
    assert result.returncode != 0
    assert "did not validate" in result.stdout


# --------------------------------------------------------------------------------------------
# ServiceMonitor: the fields documented in the Prometheus Operator's API reference.

DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
_STR_LIST = {"type": "array", "items": {"type": "string"}}
_OBJECT = {"type": "object"}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STR_LIST,
                },
            },
        },
    },
}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"},
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https"]},
        "params": {"type": "object", "additionalProperties": _STR_LIST},
        "interval": {"type": "string", "pattern": DURATION},
        "scrapeTimeout": {"type": "string", "pattern": DURATION},
        "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"},
        "trackTimestampsStaleness": {"type": "boolean"},
        "enableHttp2": {"type": "boolean"},
        "followRedirects": {"type": "boolean"},
        "filterRunning": {"type": "boolean"},
        "proxyUrl": {"type": "string"},
        "noProxy": {"type": "string"},
        "proxyFromEnvironment": {"type": "boolean"},
        "proxyConnectHeader": _OBJECT,
        "relabelings": {"type": "array", "items": _OBJECT},
        "metricRelabelings": {"type": "array", "items": _OBJECT},
        "tlsConfig": _OBJECT,
        "authorization": _OBJECT,
        "basicAuth": _OBJECT,
        "oauth2": _OBJECT,
        "bearerTokenFile": {"type": "string"},
        "bearerTokenSecret": _OBJECT,
    },
}
_SCRAPE_PROTOCOLS = [
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
]
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": _STR_LIST},
                },
                "jobLabel": {"type": "string"},
                "targetLabels": _STR_LIST,
                "podTargetLabels": _STR_LIST,
                "sampleLimit": {"type": "integer", "minimum": 0},
                "targetLimit": {"type": "integer", "minimum": 0},
                "labelLimit": {"type": "integer", "minimum": 0},
                "labelNameLengthLimit": {"type": "integer", "minimum": 0},
                "labelValueLengthLimit": {"type": "integer", "minimum": 0},
                "keepDroppedTargets": {"type": "integer", "minimum": 0},
                "bodySizeLimit": {"type": "string"},
                "attachMetadata": _OBJECT,
                "scrapeClass": {"type": "string"},
                "scrapeProtocols": {"type": "array", "items": {"enum": _SCRAPE_PROTOCOLS}},
                "fallbackScrapeProtocol": {"enum": _SCRAPE_PROTOCOLS},
                "scrapeClassicHistograms": {"type": "boolean"},
                "nativeHistogramBucketLimit": {"type": "integer", "minimum": 0},
                "nativeHistogramMinBucketFactor": {"type": ["string", "integer"]},
                "selectorMechanism": {"enum": ["RelabelConfig", "RoleSelector"]},
            },
        },
    },
}


def service_monitor_errors(doc: dict[str, Any]) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema", reason="pip install kubernetes-validate")
    validator = jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA)
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_service_monitor_uses_documented_fields(manifests: dict[str, dict[str, Any]]) -> None:
    assert service_monitor_errors(manifests["ServiceMonitor"]) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "endpoints", 0, "targetport"), 9100),  # unknown field (typo)
        (("spec", "endpoints", 0, "interval"), "15 seconds"),  # not a Prometheus duration
        (("spec", "endpoints", 0, "scheme"), "tcp"),
        (("spec", "selector", "matchLabel"), {"a": "b"}),
        (("spec", "namespaceSelector", "matchName"), ["x"]),
    ],
)
def test_service_monitor_schema_rejects(
    manifests: dict[str, dict[str, Any]], path: tuple[str | int, ...], value: object
) -> None:
    doc = copy.deepcopy(manifests["ServiceMonitor"])
    node: Any = doc
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    assert service_monitor_errors(doc)


def duration_s(text: str) -> float:
    import re

    units = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[ywdhms])", text))


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_service_monitor_scrapes_the_metrics_port(
    manifests: dict[str, dict[str, Any]],
    container: dict[str, Any],
    dockerfile: list[Instruction],
) -> None:
    monitor, service = manifests["ServiceMonitor"], manifests["Service"]
    assert labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert "namespaceSelector" not in monitor["spec"], "same namespace as the Service"
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in service_ports, "endpoints[].port names a Service port"
    assert endpoint["path"] == "/metrics"
    assert endpoint.get("scheme", "http") == "http"
    assert duration_s(endpoint["scrapeTimeout"]) <= duration_s(endpoint["interval"])
    # ... and that Service port reaches the supervisor's --metrics-bind port in the container.
    target = service_ports[endpoint["port"]]["targetPort"]
    metrics_port = port_by_name(container, target) if isinstance(target, str) else int(target)
    argv = container_argv(dockerfile, container)
    assert metrics_port == int(option_value(argv, "--metrics-bind").rsplit(":", 1)[1])


# --------------------------------------------------------------------------------------------
# Service, probes, drain arithmetic, workers, security.


def test_service_routes_named_ports_to_the_pods(
    manifests: dict[str, dict[str, Any]],
    deployment: dict[str, Any],
    container: dict[str, Any],
    dockerfile: list[Instruction],
) -> None:
    service = manifests["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels_match(service["spec"]["selector"], pod_labels)
    assert labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    names = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert set(names) == {"http", "metrics"}
    for target in names.values():
        port_by_name(container, target)  # each target is a named container port
    argv = container_argv(dockerfile, container)
    assert port_by_name(container, "http") == int(option_value(argv, "--bind").rsplit(":", 1)[1])


def probe_seconds(probe: dict[str, Any], field: str) -> int:
    defaults = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}
    return int(probe.get(field, defaults[field]))


def test_probes_hit_the_supervisor_endpoints(container: dict[str, Any]) -> None:
    expected = {
        "startupProbe": "/-/readyz",
        "readinessProbe": "/-/readyz",
        "livenessProbe": "/-/healthz",
    }
    for name, path in expected.items():
        probe = container[name]
        assert probe["httpGet"]["path"] == path, name
        port = probe["httpGet"]["port"]
        http_port = port_by_name(container, "http")
        assert (port_by_name(container, port) if isinstance(port, str) else port) == http_port
        assert probe_seconds(probe, "timeoutSeconds") < probe_seconds(probe, "periodSeconds")
    startup = container["startupProbe"]
    # A worker loads the app before READY: give a cold start at least 30 s before the kubelet
    # gives up, and let liveness begin only after startup succeeded (no initialDelaySeconds).
    assert (
        probe_seconds(startup, "periodSeconds") * probe_seconds(startup, "failureThreshold") >= 30
    )
    assert "initialDelaySeconds" not in container["livenessProbe"]


def test_grace_period_covers_drain_and_graceful_timeout(
    deployment: dict[str, Any], container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    argv = container_argv(dockerfile, container)
    drain = float(option_value(argv, "--drain-delay"))
    graceful = float(option_value(argv, "--graceful-timeout"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > drain + graceful + SHUTDOWN_MARGIN_S
    assert drain >= MIN_DRAIN_DELAY_S, "drain-delay must cover endpoint propagation"
    # Whatever watches readiness (a load balancer's readiness gate) sees the 503 within the delay.
    readiness = container["readinessProbe"]
    noticed = probe_seconds(readiness, "periodSeconds") * probe_seconds(
        readiness, "failureThreshold"
    )
    assert noticed <= drain
    # The Deployment's comment states the same budget; keep the two in step.
    header = (K8S / "deployment.yaml").read_text()
    assert f"terminationGracePeriodSeconds {grace}" in header
    assert f"drain-delay {drain:g} s + graceful-timeout {graceful:g} s" in header


def test_workers_follow_the_cpu_request(
    container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    env = {e["name"]: e for e in container["env"]}
    ref = env["WEB_CONCURRENCY"]["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "requests.cpu"
    assert ref["containerName"] == container["name"]
    request = container["resources"]["requests"]["cpu"]
    assert downward_cpu(request, ref.get("divisor", "1")) == 2
    argv = container_argv(dockerfile, container)
    # An explicit worker count would override WEB_CONCURRENCY.
    assert not {"-w", "--workers"} & set(argv)
    assert not any(a.startswith("--workers=") for a in argv)


def test_downward_cpu_rounds_up() -> None:
    assert downward_cpu("500m") == 1
    assert downward_cpu("1500m") == 2
    assert downward_cpu("2") == 2
    assert downward_cpu("2", "500m") == 4
    assert cpu_quantity("250m") == 0.25


def test_resources_are_set(container: dict[str, Any]) -> None:
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    # No CPU limit: CFS throttling stalls event loops; the request sizes workers and the HPA.
    assert "cpu" not in resources["limits"]


def test_pod_security_is_restricted(
    pod_spec: dict[str, Any], container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    # The Pod Security Standards' "restricted" profile, rule by rule.
    pod_sc = pod_spec["securityContext"]
    sc = container["securityContext"]
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod_spec.get(key)
    assert pod_sc["runAsNonRoot"] is True
    assert sc.get("runAsNonRoot", True) is True
    assert sc["allowPrivilegeEscalation"] is False
    assert not sc.get("privileged")
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}
    for context in (pod_sc, sc):
        if "seccompProfile" in context:
            assert context["seccompProfile"]["type"] in {"RuntimeDefault", "Localhost"}
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc["readOnlyRootFilesystem"] is True
    assert "hostPort" not in str(container["ports"])
    allowed_volumes = {"emptyDir", "configMap", "secret", "projected", "downwardAPI", "ephemeral"}
    for volume in pod_spec.get("volumes", []):
        assert set(volume) - {"name"} <= allowed_volumes, volume
    # The image's numeric USER is the pod's user, so file ownership in the image is predictable.
    user = next(i.args for i in reversed(final_stage(dockerfile)) if i.keyword == "USER")
    uid, _, gid = user.partition(":")
    assert sc["runAsUser"] == pod_sc["runAsUser"] == int(uid)
    assert pod_sc["runAsGroup"] == int(gid or uid)


def test_tmp_is_the_only_writable_mount(
    pod_spec: dict[str, Any], container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp"}
    tmp = volumes[mounts["/tmp"]["name"]]
    assert "emptyDir" in tmp
    assert "sizeLimit" in tmp["emptyDir"], "bound the upload spool"
    declared = [i.args for i in final_stage(dockerfile) if i.keyword == "VOLUME"]
    assert declared == ['["/tmp"]'], "the image's declared volume is the mounted emptyDir"


def test_rollout_never_drops_capacity(
    deployment: dict[str, Any], manifests: dict[str, dict[str, Any]]
) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    rolling = spec["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0
    assert rolling["maxSurge"] not in (0, "0%")
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["minReplicas"] == spec["replicas"] <= hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"  # meaningful because requests.cpu is set
    pdb = manifests["PodDisruptionBudget"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert labels_match(pdb["selector"]["matchLabels"], pod_labels)
    # A drain of one node must stay possible at the minimum replica count.
    if "maxUnavailable" in pdb:
        assert int(pdb["maxUnavailable"]) >= 1
    else:
        assert int(pdb["minAvailable"]) < hpa["minReplicas"]


# --------------------------------------------------------------------------------------------
# The container's argv against the supervisor's documented options (issue 6, docs/supervisor.md).


class ArgvError(Exception):
    pass


def supervisor_parser() -> Any:
    """`forkloop serve` as documented: gunicorn-spelled options, APP positional."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # type: ignore[override]
            raise ArgvError(message)

    p = Parser(prog="forkloop serve", add_help=False, allow_abbrev=False)
    p.add_argument("app")
    p.add_argument("-w", "--workers", type=int)
    p.add_argument("-b", "--bind", action="append")
    p.add_argument("--reuse-port", action="store_true")
    p.add_argument("--backlog", type=int)
    p.add_argument("--graceful-timeout", type=float)
    p.add_argument("--timeout", type=float)
    p.add_argument("--max-requests", type=int)
    p.add_argument("--max-requests-jitter", type=int)
    p.add_argument("--max-worker-memory")
    p.add_argument("--preload", action="store_true")
    p.add_argument("--pid")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--access-log", action="store_true", default=None)
    p.add_argument("--no-access-log", dest="access_log", action="store_false")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error", "critical"])
    p.add_argument("--log-format", choices=["text", "json"])
    p.add_argument("--loop", choices=["uvloop", "asyncio"])
    p.add_argument("--drain-delay", type=float)
    p.add_argument("--reload", action="store_true")
    p.add_argument("--config")
    p.add_argument("--metrics-bind")
    return p


def test_container_argv_parses_as_documented_options(
    container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    argv = container_argv(dockerfile, container)
    assert argv[:2] == ["forkloop", "serve"]
    options = supervisor_parser().parse_args(argv[2:])
    assert options.app == "forkloop.demo:app"
    assert options.bind == ["0.0.0.0:8080"]
    assert options.metrics_bind == "0.0.0.0:9100"
    assert options.graceful_timeout == 30
    assert options.workers is None
    assert options.reload is False, "--reload is for development"


def test_container_argv_loads_with_the_supervisor_config(
    container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    # The supervisor's own option table (forkloop.supervisor.config), with the environment the
    # kubelet gives the container: WEB_CONCURRENCY from the downward API.
    config = pytest.importorskip("forkloop.supervisor.config")
    argv = container_argv(dockerfile, container)
    ref = next(e for e in container["env"] if e["name"] == "WEB_CONCURRENCY")
    divisor = ref["valueFrom"]["resourceFieldRef"].get("divisor", "1")
    workers = downward_cpu(container["resources"]["requests"]["cpu"], divisor)
    loaded = config.load_config(argv[2:], {"WEB_CONCURRENCY": str(workers)})
    assert loaded.app == argv[-1]
    assert loaded.workers == workers
    assert len(loaded.binds) == 1
    assert loaded.metrics_bind == ("0.0.0.0", 9100)
    assert loaded.drain_delay_s == float(option_value(argv, "--drain-delay"))
    assert loaded.graceful_timeout_s == float(option_value(argv, "--graceful-timeout"))
    assert loaded.reload is False
    with pytest.raises(config.ConfigError):
        config.load_config([*argv[2:], "--drain-delay", "soon"], {})


def test_the_option_parser_rejects_nonsense() -> None:
    with pytest.raises(ArgvError):
        supervisor_parser().parse_args(["app:app", "--drain-delay", "soon"])
    with pytest.raises(ArgvError):
        supervisor_parser().parse_args(["app:app", "--grace", "3"])


def test_entrypoint_options_are_known_to_the_real_cli(
    container: dict[str, Any], dockerfile: list[Instruction]
) -> None:
    if not (ROOT / "forkloop" / "cli.py").exists():
        pytest.skip("forkloop/cli.py not written yet (issue 6)")
    result = subprocess.run(
        [sys.executable, "-m", "forkloop", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    argv = [*entrypoint_argv(dockerfile), *container["args"]]
    for arg in argv[2:]:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in result.stdout, f"{arg} not in `forkloop serve --help`"
