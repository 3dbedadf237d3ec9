"""A values file written for k8gb's chart installs pygslb: k8gb's keys pass the schema with k8gb's types, the
ones that mean something here are honoured (the DNS Service type, pull secrets, legacy zone and edge server
keys, log levels), the rest are ignored and NOTES list them, and ExternalDNS, which pygslb lacks, fails the
render instead of being dropped silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.chart.scenarios import SCENARIOS
from tests.chart.test_controller import _settings
from tests.support import chart as helm

K8GB_VALUES = SCENARIOS["k8gb-values-file"]
DNS_SERVICE = f"{helm.FULLNAME}-dns"


def _dns_service_type(values: dict[str, Any]) -> str:
    service_type: str = helm.render(values).get("Service", DNS_SERVICE)["spec"]["type"]
    return service_type


def _ignored(rendered: helm.Rendered) -> list[str]:
    """The bullet lines under NOTES' "k8gb values ... ignored" note."""
    notes = rendered.notes
    if "are ignored:" not in notes:
        return []
    block = notes.split("are ignored:\n", 1)[1].split("\n\n", 1)[0]
    return [line.removeprefix("  - ") for line in block.splitlines()]


def test_a_k8gb_values_file_installs_and_reaches_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered = helm.render(K8GB_VALUES)
    settings = _settings(rendered, tmp_path, monkeypatch)
    assert settings.edge_servers == [("10.0.0.53", 53), ("dns.example.com", 5353)]
    assert [(z.parent_zone, z.load_balanced_zone, z.neg_ttl) for z in settings.zones] == [
        ("example.com", "cloud.example.com", 30)  # dnsZoneNegTTL "30": a string, as k8gb takes it
    ]
    assert (settings.log_level, settings.log_format) == ("error", "json")  # k8gb's panic: pygslb's error
    assert rendered.get("Service", DNS_SERVICE)["spec"]["type"] == "LoadBalancer"  # coredns.serviceType
    assert rendered.pod["imagePullSecrets"] == [{"name": "registry-credentials"}]  # global.imagePullSecrets
    report = helm_python.lint(helm.CHART_DIR, K8GB_VALUES, strict=True, namespace=helm.NAMESPACE)
    assert report["errors"] == []


def test_k8gb_values_without_effect_are_listed_in_notes() -> None:
    ignored = _ignored(helm.render(K8GB_VALUES))
    assert [line.split(":")[0] for line in ignored] == [
        "k8gb.imageRepo, k8gb.imageTag",
        "k8gb.metricsAddress",
        "k8gb.zoneDelegationRecoverySeconds",
        "k8gb.validatingAdmissionPolicy.enabled",
        "infoblox.httpPoolConnections",
        "coredns.deployment, coredns.image, coredns.isClusterService, coredns.serviceAccount",
        "extdns.domainFilters, extdns.interval, extdns.labelFilter, extdns.policy, extdns.sources, "
        "extdns.txtOwnerId, extdns.txtPrefix",
    ]
    assert _ignored(helm.render()) == []  # pygslb's own defaults: no note


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"k8gb": {"deployRbac": False}}, "k8gb.deployRbac: use rbac.create=false"),
        (
            {"k8gb": {"deployCrds": False}},
            "k8gb.deployCrds, k8gb.installLegacyCrds: Helm installs chart/crds/",
        ),
        ({"k8gb": {"splitBrainCheck": True}}, "k8gb.splitBrainCheck"),
        ({"k8gb": {"coredns": {"extraServerBlocks": "x.org:5353 {}"}}}, "k8gb.coredns"),
        (
            {"infoblox": {"sslVerify": False}},
            "infoblox.sslVerify=false: pygslb verifies the grid's certificate",
        ),
        ({"openshift": {"enabled": True}}, "openshift.enabled"),
        (
            {
                "k8gb": {
                    "dnsZones": [
                        {
                            "parentZone": "example.com",
                            "loadBalancedZone": "c.example.com",
                            "geoDataFilePath": "/geoip.mmdb",
                            "extraPlugins": ["log"],
                        }
                    ]
                }
            },
            "k8gb.dnsZones[0].extraPlugins: a CoreDNS setting",
        ),
        (
            {"k8gb": {"dnsZone": "legacy.example.com", "edgeDNSZone": "example.com"}},
            "k8gb.dnsZone, k8gb.edgeDNSZone: k8gb.dnsZones is set and wins",
        ),
    ],
    ids=lambda v: "" if isinstance(v, str) else str(v)[:50],
)
def test_an_ignored_value_set_to_something_pygslb_does_not_do_is_named(
    values: dict[str, Any], expected: str
) -> None:
    assert any(line.startswith(expected) for line in _ignored(helm.render(values))), _ignored(
        helm.render(values)
    )


def test_k8gb_defaults_that_pygslb_does_anyway_are_not_noise() -> None:
    values = {
        "k8gb": {"deployCrds": True, "installLegacyCrds": True, "deployRbac": True, "splitBrainCheck": False},
        "infoblox": {"sslVerify": True},
        "openshift": {"enabled": False},
        "extdns": {"enabled": False},
        "coredns": {"serviceType": "ClusterIP"},
    }
    assert _ignored(helm.render(values)) == []


# --- honoured -------------------------------------------------------------------------------------


def test_dns_service_type_follows_coredns_service_type_unless_set_here() -> None:
    assert _dns_service_type({}) == "ClusterIP"
    assert _dns_service_type({"coredns": {"serviceType": "LoadBalancer"}}) == "LoadBalancer"
    assert _dns_service_type({"coredns": {"serviceType": "NodePort"}}) == "NodePort"
    explicit = {
        "coredns": {"serviceType": "LoadBalancer"},
        "pygslb": {"dns": {"service": {"type": "ClusterIP"}}},
    }
    assert _dns_service_type(explicit) == "ClusterIP"  # pygslb's own value wins
    with pytest.raises(helm_python.HelmRenderError, match="coredns.serviceType=ExternalName"):
        helm.render({"coredns": {"serviceType": "ExternalName"}})


def test_global_pull_secrets_join_pygslbs_own() -> None:
    values = {
        "global": {"imagePullSecrets": [{"name": "shared"}, {"name": "both"}]},
        "pygslb": {"imagePullSecrets": [{"name": "both"}, {"name": "own"}]},
    }
    assert helm.render(values).pod["imagePullSecrets"] == [
        {"name": "both"},
        {"name": "own"},
        {"name": "shared"},
    ]
    assert "imagePullSecrets" not in helm.render().pod


def test_legacy_single_zone_and_edge_server_map_as_in_k8gb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = {
        "k8gb": {
            "dnsZones": [],
            "dnsZone": "gslb.example.org",
            "edgeDNSZone": "example.org",
            "dnsZoneNegTTL": 60,
            "edgeDNSServer": "10.1.1.53:5353",
            "edgeDNSServers": ["10.0.0.53"],
        }
    }
    settings = _settings(helm.render(legacy), tmp_path, monkeypatch)
    assert [(z.parent_zone, z.load_balanced_zone, z.neg_ttl) for z in settings.zones] == [
        ("example.org", "gslb.example.org", 60)
    ]
    assert settings.edge_servers == [("10.1.1.53", 5353)]  # the legacy single server wins, as in k8gb
    outside = {"k8gb": {"dnsZones": [], "dnsZone": "gslb.example.org", "edgeDNSZone": "example.com"}}
    with pytest.raises(helm_python.HelmRenderError, match="must be a subdomain of parentZone"):
        helm.render(outside)


def test_no_zone_at_all_is_refused() -> None:
    with pytest.raises(helm_python.HelmValuesError, match="at '/k8gb/dnsZones': minItems: got 0, want 1"):
        helm.render({"k8gb": {"dnsZones": []}})


@pytest.mark.parametrize(
    ("k8gb_level", "level"), [("panic", "error"), ("fatal", "error"), ("trace", "trace")]
)
def test_k8gb_log_levels_map_to_the_nearest_pygslb_has(
    k8gb_level: str, level: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(helm.render({"k8gb": {"log": {"level": k8gb_level}}}), tmp_path, monkeypatch)
    assert settings.log_level == level


def test_extdns_enabled_fails_the_render_naming_the_edges_pygslb_has() -> None:
    with pytest.raises(helm_python.HelmRenderError) as caught:
        helm.render({"extdns": {"enabled": True}})
    message = str(caught.value)
    assert "extdns.enabled=true: pygslb has no ExternalDNS edge" in message
    assert "infoblox.enabled=true or rfc2136.enabled=true" in message


# --- what the schema accepts, the app accepts -------------------------------------------------------


def _schema_accepts(values: dict[str, Any]) -> bool:
    try:
        helm.chart().validate_schema(values)
    except helm_python.HelmValuesError:
        return False
    return True


def _app_accepts(**settings: Any) -> bool:
    try:
        Settings(cluster_geo_tag="eu", **settings)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "server",
    [
        "1.1.1.1",
        "1.1.1.1:53",
        "dns.example.com:65535",
        "dns.example.com:1",
        "2001:db8::53",
        "[2001:db8::53]:53",
        "1.1.1.1:99999",
        "dns.example.com:abc",
        "1.1.1.1:",
        "1.1.1.1:65536",
        "1.1.1.1:0",
    ],
)
def test_an_edge_server_passes_the_schema_only_if_the_app_starts_with_it(server: str) -> None:
    in_schema = _schema_accepts({"k8gb": {"edgeDNSServers": [server]}})
    assert in_schema == _schema_accepts({"k8gb": {"edgeDNSServer": server}})
    if in_schema:
        assert _app_accepts(edge_dns_servers=server)
    refused = {"1.1.1.1:99999", "dns.example.com:abc", "1.1.1.1:", "1.1.1.1:65536", "1.1.1.1:0"}
    refused |= {"2001:db8::53", "[2001:db8::53]:53"}  # k8gb's validation refuses IPv6 edge servers
    assert in_schema == (server not in refused)


@pytest.mark.parametrize("prefix", ["gslb-ns-", "ns", "", "9ns-", "-ns-", "ns_", "ns."])
def test_a_glue_prefix_passes_the_schema_only_if_the_app_starts_with_it(prefix: str) -> None:
    assert _schema_accepts({"k8gb": {"glueAPrefix": prefix}}) == _app_accepts(gluea_prefix=prefix)


@pytest.mark.parametrize(
    "endpoint",
    [
        "collector:4318",
        "collector",
        "http://collector:4318",
        "https://otel.example.com/otlp",
        "http://[2001:db8::1]:4318",
        "collector:99999",
        "collector:0",
        "http://collector:70000/",
        "http://collector:4318/?x=1",
        "http//collector",
    ],
)
def test_a_tracing_endpoint_passes_the_schema_only_if_the_app_starts_with_it(endpoint: str) -> None:
    in_schema = _schema_accepts({"tracing": {"enabled": True, "sidecar": False, "endpoint": endpoint}})
    if in_schema:
        assert _app_accepts(tracing_enabled=True, otel_exporter_otlp_endpoint=endpoint)
    # the schema is stricter where the app would post somewhere odd: "http//collector" is host "http"
    refused = {"collector:99999", "collector:0", "http://collector:70000/", "http://collector:4318/?x=1"}
    assert in_schema == (endpoint not in refused | {"http//collector"})


@pytest.mark.parametrize(
    "ratio",
    [
        "0",
        "0.25",
        "0.0001",
        "0.",
        ".5",
        "00.5",
        "1",
        "1.",
        "1.000",
        "1.5",
        "2",
        "-0.1",
        "",
        "abc",
        "1e-4",
        " 0.5",
    ],
)
def test_a_sampling_ratio_string_passes_the_schema_only_if_the_app_starts_with_it(ratio: str) -> None:
    """Any decimal string from 0 to 1 (the app decides the rest: it takes it as a float)."""
    in_schema = _schema_accepts({"tracing": {"enabled": True, "samplingRatio": ratio}})
    if in_schema:
        assert _app_accepts(tracing_enabled=True, tracing_sampling_ratio=ratio)
    refused = {"1.5", "2", "-0.1", "", "abc"}  # the app refuses them too
    stricter = {"1e-4", " 0.5"}  # the app takes these; the schema keeps to decimals
    assert in_schema == (ratio not in refused | stricter)
    if ratio in refused:
        assert not _app_accepts(tracing_enabled=True, tracing_sampling_ratio=ratio)


def test_api_and_dns_on_one_port_is_refused() -> None:
    with pytest.raises(
        helm_python.HelmRenderError, match="pygslb.api.port and pygslb.dns.port are both 5353"
    ):
        helm.render({"pygslb": {"api": {"port": 5353}}})
    helm.render({"pygslb": {"api": {"port": 5353}, "dns": {"enabled": False}}})  # no DNS server: no clash
