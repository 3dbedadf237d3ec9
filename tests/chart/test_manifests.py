"""Every option set renders, lints clean under `--strict`, validates against Kubernetes' schemas, and hangs
together: selectors select, named ports exist, mounts have volumes, bindings bind what was rendered."""

from __future__ import annotations

from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest

from app.domain import crds as crd_models
from tests.chart.scenarios import SCENARIOS
from tests.support import chart as helm

Obj = dict[str, Any]
IDS = list(SCENARIOS)


@pytest.fixture(scope="module", params=IDS)
def scenario(request: pytest.FixtureRequest) -> tuple[str, Obj, helm.Rendered]:
    values = SCENARIOS[request.param]
    return request.param, values, helm.render(values)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pods(rendered: helm.Rendered) -> list[Obj]:
    return [d["spec"]["template"] for d in rendered.all("Deployment")]


def test_lint_is_clean_under_strict(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, values, _ = scenario
    report = helm_python.lint(
        helm.CHART_DIR, values, strict=True, namespace=helm.NAMESPACE, kube_version=f"v{helm.KUBE_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert (report["errors"], problems) == ([], [])


def test_every_object_validates_against_kubernetes(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, _, rendered = scenario
    for obj in rendered.objects:
        if obj["kind"] == "ServiceMonitor":
            continue  # a CR of the Prometheus Operator: checked below against what it points at
        kubernetes_validate.validate(obj, helm.KUBE_VERSION, strict=True)
        assert obj["metadata"].get("namespace", helm.NAMESPACE) == helm.NAMESPACE


def test_everything_is_namespaced_in_the_release_namespace(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, _, rendered = scenario
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in rendered.objects:
        assert ("namespace" in obj["metadata"]) != (obj["kind"] in cluster_scoped), obj["kind"]
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == helm.NAMESPACE


def test_selectors_select_the_pods_they_mean(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, _, rendered = scenario
    pods = _pods(rendered)
    for deployment in rendered.all("Deployment"):
        assert _selects(
            deployment["spec"]["selector"]["matchLabels"],
            deployment["spec"]["template"]["metadata"]["labels"],
        )
    for service in rendered.all("Service"):
        matched = [p for p in pods if _selects(service["spec"]["selector"], p["metadata"]["labels"])]
        assert len(matched) == 1, (
            f"Service {service['metadata']['name']} selects {len(matched)} pod templates"
        )
        ports = {
            (p["name"], p.get("protocol", "TCP"))
            for c in matched[0]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert (port["targetPort"], port["protocol"]) in ports, f"{service['metadata']['name']}: {port}"
    for pdb in rendered.all("PodDisruptionBudget"):
        assert _selects(
            pdb["spec"]["selector"]["matchLabels"],
            rendered.deployment["spec"]["template"]["metadata"]["labels"],
        )


def test_service_monitor_scrapes_a_real_port(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, _, rendered = scenario
    for monitor in rendered.all("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        services = [
            s
            for s in rendered.all("Service")
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        port_names = {p["name"] for s in services for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"


def test_mounts_and_references_resolve(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, values, rendered = scenario
    for pod in _pods(rendered):
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        for container in pod["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{container['name']} mounts missing volume {mount['name']}"
        for volume in volumes.values():
            if "configMap" in volume:
                assert rendered.has("ConfigMap", volume["configMap"]["name"])
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                supplied = name in {"my-token", "edge-tsig"}  # Secrets the scenario says the user made
                assert supplied or rendered.has("Secret", name), (
                    f"Secret {name} neither rendered nor supplied"
                )
    # Files named by *_FILE variables live on a mounted volume.
    mounts = rendered.mounts()
    for name, value in rendered.env().items():
        if name.endswith("_FILE"):
            assert any(value.startswith(path + "/") for path in mounts), (
                f"{name}={value} is not on a mounted volume"
            )
    account = rendered.pod["serviceAccountName"]
    assert rendered.has("ServiceAccount", account)
    for binding in rendered.all("ClusterRoleBinding") + rendered.all("RoleBinding"):
        assert rendered.has(binding["roleRef"]["kind"], binding["roleRef"]["name"])
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": helm.NAMESPACE}
        ]


def test_objects_have_unique_names_per_kind(scenario: tuple[str, Obj, helm.Rendered]) -> None:
    _, _, rendered = scenario
    names = rendered.names()
    assert len(names) == len(set(names))


# --- CRDs shipped with the chart -----------------------------------------------------------------


def test_chart_ships_the_generated_crds() -> None:
    shipped = sorted(helm.crds(), key=lambda c: c["metadata"]["name"])
    assert shipped == sorted(crd_models.gslb_crds(), key=lambda c: c["metadata"]["name"])
    for crd in shipped:
        kubernetes_validate.validate(crd, helm.KUBE_VERSION, strict=True)


def test_a_gslb_the_chart_user_applies_passes_the_shipped_crd() -> None:
    (crd,) = [c for c in helm.crds() if c["metadata"]["name"] == "gslbs.k8gb.io"]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    gslb = {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "resourceRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "app"},
            "strategy": {"type": "roundRobin", "weight": {"eu": 1001}},
        },
    }
    errors = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(gslb)]
    assert errors == ["1001 is greater than the maximum of 1000"]
