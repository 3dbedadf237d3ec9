"""The controller Deployment a user relies on: settings the app really accepts, least-privilege RBAC,
k8gb's security context, DNS on 53, secrets as files, leader election with replicas, probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest

from app.settings import Settings, load_settings
from tests.chart.scenarios import SCENARIOS
from tests.support import chart as helm

SECRETS_ROOT = "/var/run/secrets/pygslb/"


def _settings(rendered: helm.Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Start the app's settings from the container's environment, as the pod would.

    Downward-API and secretKeyRef values get stand-ins; files under the secret mounts are created in
    tmp_path, so *_FILE variables are read for real.
    """
    for name in list(Settings.model_fields) + ["OTEL_SERVICE_NAME"]:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in rendered.env().items():
        if isinstance(value, dict):
            ref = value.get("fieldRef") or value.get("secretKeyRef") or {}
            value = f"from-{ref.get('fieldPath') or ref.get('key')}"
        if name.endswith("_FILE"):
            assert value.startswith(SECRETS_ROOT)
            path = tmp_path / value.removeprefix(SECRETS_ROOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"secret-of-{name}\n")
            value = str(path)
        monkeypatch.setenv(name, value)
    return load_settings()


def _rules(rendered: helm.Rendered, kind: str) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for role in rendered.all(kind):
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


# --- settings ------------------------------------------------------------------------------------


def test_default_environment_starts_the_app_in_kubernetes_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(helm.render(), tmp_path, monkeypatch)
    assert settings.gslb_mode == "kubernetes"
    assert settings.api_host_port == ("0.0.0.0", 8080)
    assert settings.dns_host_port == ("0.0.0.0", 5353)
    assert settings.gslb_data_dir == Path("/tmp/gslb")
    assert settings.api_token() is None  # Kubernetes tokens, reviewed by the API server
    assert settings.cluster_geo_tag == "eu"
    assert settings.ext_gslb_clusters_geo_tags == ["eu", "us"]
    assert settings.edge_servers == [("1.1.1.1", 53)]
    assert [(z.parent_zone, z.load_balanced_zone, z.neg_ttl) for z in settings.zones] == [
        ("example.com", "cloud.example.com", 30)
    ]
    assert (settings.edge_dns_type, settings.tracing_enabled, settings.gslb_leader_election) == (
        "none",
        False,
        False,
    )
    assert settings.pod_namespace == "from-metadata.namespace"


def test_k8gb_values_reach_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(helm.render(SCENARIOS["k8gb-settings"]), tmp_path, monkeypatch)
    assert settings.cluster_geo_tag == "us-east-1"
    assert settings.peer_tags == ["eu-west-1", "za"]
    assert settings.edge_servers == [("10.0.0.53", 53), ("dns.example.com", 5353)]
    assert [(z.parent_zone, z.load_balanced_zone, z.neg_ttl) for z in settings.zones] == [
        ("example.com", "cloud.example.com", 60),
        ("example.org", "gslb.example.org", 300),  # k8gb's default negative TTL
    ]
    assert (settings.reconcile_requeue_seconds, settings.ns_record_ttl, settings.gluea_prefix) == (
        10,
        120,
        "ns-",
    )
    assert settings.zone_delegation_reconcile_requeue_seconds == 60
    assert settings.cluster_exposed_ips == ["192.0.2.10", "192.0.2.11"]
    assert (settings.log_level, settings.log_format) == ("debug", "json")
    assert settings.peer_refresh_seconds == 2  # extraEnv


def test_the_glue_is_the_charts_dns_load_balancer_unless_addresses_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster_ip = helm.render()  # k8gb's default: no Service address for the edge, the ip-source Ingress
    assert "DNS_SERVICE_NAME" not in cluster_ip.env() and "COREDNS_SERVICE_TYPE" not in cluster_ip.env()
    k8gb_style = helm.render({"coredns": {"serviceType": "LoadBalancer"}})
    assert k8gb_style.env()["DNS_SERVICE_NAME"] == f"{helm.FULLNAME}-dns"

    rendered = helm.render({"pygslb": {"dns": {"service": {"type": "LoadBalancer"}}}})
    settings = _settings(rendered, tmp_path, monkeypatch)
    assert settings.dns_service_name == f"{helm.FULLNAME}-dns"
    dns_service = rendered.get("Service", settings.dns_service_name)  # the Service the chart makes
    assert dns_service["metadata"]["namespace"] == helm.NAMESPACE  # = POD_NAMESPACE, where it is looked up
    assert dns_service["spec"]["selector"] == rendered.deployment["spec"]["selector"]["matchLabels"]
    assert settings.dns_exposed_ips == []

    given = helm.render({"pygslb": {"dns": {"exposedIPs": ["203.0.113.53", "203.0.113.54"]}}})
    settings = _settings(given, tmp_path, monkeypatch)
    assert settings.dns_exposed_ips == ["203.0.113.53", "203.0.113.54"]

    without = helm.render({"pygslb": {"dns": {"enabled": False}}})  # k8gb's CoreDNS: k8gb's own rules
    assert "DNS_SERVICE_NAME" not in without.env()
    assert not without.has("Service", f"{helm.FULLNAME}-dns")
    coredns = helm.render({"pygslb": {"dns": {"enabled": False}}, "coredns": {"serviceType": "LoadBalancer"}})
    assert coredns.env()["COREDNS_SERVICE_TYPE"] == "LoadBalancer" and "DNS_SERVICE_NAME" not in coredns.env()


def test_tracing_values_reach_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(helm.render(SCENARIOS["tracing-jaeger"]), tmp_path, monkeypatch)
    assert settings.tracing_enabled is True
    assert settings.otel_exporter_otlp_endpoint == "localhost:4318"
    assert settings.tracing_sampling_ratio == 0.25


def test_infoblox_credentials_come_from_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = helm.render(SCENARIOS["infoblox"])
    env = rendered.env()
    assert env["INFOBLOX_WAPI_USERNAME"] == {
        "secretKeyRef": {"name": "infoblox", "key": "INFOBLOX_WAPI_USERNAME"}
    }
    assert env["INFOBLOX_WAPI_PASSWORD"] == {
        "secretKeyRef": {"name": "infoblox", "key": "INFOBLOX_WAPI_PASSWORD"}
    }
    settings = _settings(rendered, tmp_path, monkeypatch)
    assert settings.edge_dns_type == "infoblox"
    assert (settings.infoblox_grid_host, settings.infoblox_wapi_port) == ("grid.example.com", 8443)
    assert (settings.infoblox_wapi_version, settings.infoblox_dns_view) == ("2.3.1", "default")
    assert settings.infoblox_http_request_timeout == 20


def test_rfc2136_tsig_secret_is_a_mounted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = helm.render(SCENARIOS["rfc2136"])
    assert rendered.volume("rfc2136-tsig")["secret"] == {
        "secretName": "edge-tsig",
        "items": [{"key": "secret", "path": "secret"}],
    }
    assert "RFC2136_TSIG_SECRET" not in rendered.env()  # never the secret itself in the pod spec
    settings = _settings(rendered, tmp_path, monkeypatch)
    assert (settings.edge_dns_type, settings.rfc2136_host, settings.rfc2136_tsig_keyname) == (
        "rfc2136",
        "10.0.0.53:53",
        "gslb-key",
    )
    assert settings.rfc2136_tsig_secret is not None
    assert settings.rfc2136_tsig_secret.get_secret_value() == "secret-of-RFC2136_TSIG_SECRET_FILE"


def test_two_edge_providers_are_refused() -> None:
    values = {**SCENARIOS["rfc2136"], **SCENARIOS["infoblox"]}
    with pytest.raises(helm_python.HelmRenderError, match="pick one edge DNS provider"):
        helm.render(values)


def test_a_load_balanced_zone_outside_its_parent_is_refused() -> None:
    zones = [{"parentZone": "example.com", "loadBalancedZone": "cloud.example.org"}]
    with pytest.raises(
        helm_python.HelmRenderError, match='"cloud.example.org" must be a subdomain of parentZone'
    ):
        helm.render({"k8gb": {"dnsZones": zones}})


# --- API credentials -------------------------------------------------------------------------------


def test_the_api_takes_kubernetes_tokens_not_a_chart_secret() -> None:
    """The chart runs kubernetes mode, where the REST API reviews Kubernetes tokens (TokenReview and
    SubjectAccessReview): no static token Secret, no token file, and NOTES say which credentials work."""
    rendered = helm.render()
    assert not rendered.all("Secret")
    assert "GSLB_API_TOKEN_FILE" not in rendered.env() and "GSLB_INSECURE" not in rendered.env()
    assert rendered.env()["GSLB_MODE"] == "kubernetes"
    assert "kubectl -n <namespace> create token" in rendered.notes
    assert "apiToken is ignored" not in rendered.notes


@pytest.mark.parametrize("scenario", ["existing-token", "insecure"])
def test_old_api_token_values_are_accepted_ignored_and_said_so(scenario: str) -> None:
    rendered = helm.render(SCENARIOS[scenario])
    assert not rendered.all("Secret")
    assert "GSLB_API_TOKEN_FILE" not in rendered.env() and "GSLB_INSECURE" not in rendered.env()
    assert "pygslb.apiToken is ignored (deprecated)" in rendered.notes


# --- RBAC ------------------------------------------------------------------------------------------

CLUSTER_RULES = {
    ("k8gb.io", "gslbs"): {"get", "list", "watch", "create", "update", "delete"},
    ("k8gb.absa.oss", "gslbs"): {"get", "list", "watch", "create", "update", "delete"},
    ("k8gb.io", "gslbs/status"): {"update"},
    ("k8gb.absa.oss", "gslbs/status"): {"update"},
    ("k8gb.io", "gslbs/finalizers"): {"update"},
    ("k8gb.absa.oss", "gslbs/finalizers"): {"update"},
    ("networking.k8s.io", "ingresses"): {"get", "list", "watch", "create", "update"},
    ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
    ("", "services"): {"get", "list", "watch"},
    ("externaldns.k8s.io", "dnsendpoints"): {"get", "list", "watch", "create", "update", "delete"},
    ("", "events"): {"create", "patch"},
    ("authentication.k8s.io", "tokenreviews"): {"create"},
    ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
}
GATEWAY_API_RULES = {
    ("gateway.networking.k8s.io", plural): {"get", "list"}
    for plural in ("httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes")
} | {("gateway.networking.k8s.io", "gateways"): {"get"}}
ISTIO_RULES = {
    ("networking.istio.io", "virtualservices"): {"get", "list"},
    ("networking.istio.io", "gateways"): {"get"},
}


def test_cluster_role_grants_exactly_the_least_verbs() -> None:
    rendered = helm.render()
    assert _rules(rendered, "ClusterRole") == CLUSTER_RULES | GATEWAY_API_RULES | ISTIO_RULES
    without = helm.render({"gatewayapi": {"enabled": False}, "istio": {"enabled": False}})
    assert _rules(without, "ClusterRole") == CLUSTER_RULES
    assert not rendered.all("Role"), "no namespaced role without leader election"
    for role in rendered.all("ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule
    assert not any("secrets" in resource for _, resource in CLUSTER_RULES)


def test_several_replicas_elect_a_leader_through_a_namespaced_lease() -> None:
    rendered = helm.render(SCENARIOS["replicas"])
    assert rendered.deployment["spec"]["replicas"] == 3
    assert rendered.env()["GSLB_LEADER_ELECTION"] == "true"
    (role,) = rendered.all("Role")
    assert role["metadata"]["namespace"] == helm.NAMESPACE
    assert _rules(rendered, "Role") == {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
    assert helm.render().env()["GSLB_LEADER_ELECTION"] == "false"


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    rendered = helm.render(SCENARIOS["no-pdb-no-rbac"])
    assert not rendered.all("ClusterRole") and not rendered.all("ClusterRoleBinding")
    assert not rendered.all("PodDisruptionBudget")


# --- pod -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["defaults", "tracing-jaeger", "rfc2136"])
def test_every_container_runs_as_k8gb_does_non_root_read_only_unprivileged(name: str) -> None:
    rendered = helm.render(SCENARIOS[name])
    for deployment in rendered.all("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            context: dict[str, Any] = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            if deployment["metadata"]["name"] == helm.FULLNAME:
                assert context["readOnlyRootFilesystem"] is True
                assert context["runAsUser"] == 10001
            assert container["resources"]["limits"]["memory"]


def test_writable_paths_are_an_empty_dir_on_tmp() -> None:
    rendered = helm.render()
    assert rendered.mounts()["/tmp"]["name"] == "tmp"
    assert "emptyDir" in rendered.volume("tmp")
    assert rendered.env()["GSLB_DATA_DIR"].startswith("/tmp/")


def test_probes_hit_healthz_and_readyz_on_the_api_port() -> None:
    container = helm.render({"probes": {"liveness": {"periodSeconds": 20}}}).container()
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["periodSeconds"] == 20
    assert container["args"] == ["serve"]


def test_image_tag_defaults_to_the_app_version() -> None:
    assert helm.render().container()["image"] == f"pygslb:{helm.chart().metadata['appVersion']}"
    tagged = helm.render({"pygslb": {"image": {"repository": "r.example/pygslb", "tag": "abc"}}})
    assert tagged.container()["image"] == "r.example/pygslb:abc"


# --- Services ------------------------------------------------------------------------------------


def test_dns_service_maps_udp_and_tcp_53_to_the_builtin_server() -> None:
    rendered = helm.render()
    service = rendered.get("Service", f"{helm.FULLNAME}-dns")
    assert {(p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("UDP", 53, "dns-udp"),
        ("TCP", 53, "dns-tcp"),
    }
    ports = {(p["name"], p["protocol"]): p["containerPort"] for p in rendered.container()["ports"]}
    assert ports[("dns-udp", "UDP")] == ports[("dns-tcp", "TCP")] == 5353


def test_dns_disabled_has_no_dns_service_port_or_address() -> None:
    rendered = helm.render(SCENARIOS["dns-disabled"])
    assert not rendered.has("Service", f"{helm.FULLNAME}-dns")
    assert [p["name"] for p in rendered.container()["ports"]] == ["http"]
    assert rendered.env()["DNS_ADDRESS"] == ""


def test_service_types_ports_and_annotations_are_configurable() -> None:
    rendered = helm.render(SCENARIOS["dns-loadbalancer"])
    dns = rendered.get("Service", f"{helm.FULLNAME}-dns")
    assert dns["spec"]["type"] == "LoadBalancer"
    assert dns["metadata"]["annotations"] == {"example.com/lb": "internal"}
    api = rendered.get("Service", helm.FULLNAME)
    assert [(p["port"], p["targetPort"]) for p in api["spec"]["ports"]] == [(80, "http")]
    assert rendered.env()["API_ADDRESS"] == "0.0.0.0:9000"


def test_metrics_are_exposed_by_annotation_and_service_monitor() -> None:
    rendered = helm.render(SCENARIOS["monitoring"])
    annotations = rendered.get("Service", helm.FULLNAME)["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    monitor = rendered.get("ServiceMonitor", helm.FULLNAME)
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    assert not helm.render().all("ServiceMonitor")
    assert "annotations" not in helm.render().get("Service", helm.FULLNAME)["metadata"]


def test_disruption_budget_never_blocks_a_single_replica() -> None:
    assert helm.render().get("PodDisruptionBudget", helm.FULLNAME)["spec"]["maxUnavailable"] == 1
    percent = helm.render(SCENARIOS["pdb-percent"]).get("PodDisruptionBudget", helm.FULLNAME)
    assert percent["spec"]["maxUnavailable"] == "50%"


def test_notes_say_where_the_glue_comes_from_when_no_address_is_given() -> None:
    rfc2136 = {"enabled": True, "host": "10.0.0.53:53", "tsigKeyName": "k", "tsigSecretRef": {"name": "s"}}
    note = "the edge zone's glue for this cluster is the first Ingress labelled k8gb.io/ip-source=true"
    assert note in helm.render({"rfc2136": rfc2136}).notes
    assert note not in helm.render().notes  # no edge provider: nothing to delegate
    for given in (
        {"pygslb": {"dns": {"service": {"type": "LoadBalancer"}}}},
        {"coredns": {"serviceType": "LoadBalancer"}},
        {"pygslb": {"dns": {"exposedIPs": ["203.0.113.53"]}}},
        {"k8gb": {"clusterExposedIPs": ["203.0.113.9"]}},
    ):
        assert note not in helm.render({"rfc2136": rfc2136, **given}).notes, given


def test_leader_election_can_be_kept_on_for_a_deployment_scaled_by_others() -> None:
    """Decided from `replicas` at render time, `kubectl scale` or an autoscaler ran reconcilers side by
    side with no Lease; `pygslb.leaderElection: true` keeps it on (and the Role for Leases) at any count."""
    assert helm.render().env()["GSLB_LEADER_ELECTION"] == "false"
    assert helm.render({"pygslb": {"replicas": 2}}).env()["GSLB_LEADER_ELECTION"] == "true"
    kept = helm.render({"pygslb": {"leaderElection": True}})
    assert kept.env()["GSLB_LEADER_ELECTION"] == "true"
    assert kept.has("Role", f"{helm.FULLNAME}-leader-election")
    off = helm.render({"pygslb": {"replicas": 2, "leaderElection": False}})
    assert off.env()["GSLB_LEADER_ELECTION"] == "false" and not off.has(
        "Role", f"{helm.FULLNAME}-leader-election"
    )
