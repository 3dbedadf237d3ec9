"""Tracing exactly as k8gb's design note: off means no sidecar; on adds the collector sidecar, its env and
ConfigMap; otelConfig overrides; deployJaeger adds Jaeger behind svc/jaeger-collector; images are tunable;
an existing collector can be used without a sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.chart.scenarios import OTEL_CONFIG, SCENARIOS
from tests.chart.test_controller import _settings
from tests.support import chart as helm

TRACING_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "TRACING_SAMPLING_RATIO")


def _agent_config(rendered: helm.Rendered) -> dict[str, Any]:
    config = yaml.safe_load(rendered.get("ConfigMap", "agent-config")["data"]["agent.yaml"])
    assert isinstance(config, dict)
    return config


def test_off_by_default_and_then_nothing_of_it_exists() -> None:
    rendered = helm.render()
    assert rendered.container_names() == ["pygslb"]
    assert rendered.env()["TRACING_ENABLED"] == "false"
    assert not set(TRACING_ENV) & set(rendered.env())
    for kind, name in [
        ("ConfigMap", "agent-config"),
        ("Service", "otel-collector"),
        ("Deployment", "jaeger"),
        ("Service", "jaeger-collector"),
    ]:
        assert not rendered.has(kind, name), f"{kind}/{name} rendered with tracing off"


def test_deploy_jaeger_alone_does_nothing_while_tracing_is_off() -> None:
    rendered = helm.render({"tracing": {"deployJaeger": True}})
    assert not rendered.has("Deployment", "jaeger")
    assert rendered.container_names() == ["pygslb"]


def test_enabled_adds_the_sidecar_env_and_configmap() -> None:
    rendered = helm.render(SCENARIOS["tracing-sidecar"])
    sidecar = rendered.container("otel-collector")
    assert sidecar["image"] == "otel/opentelemetry-collector:0.159.0"
    assert sidecar["imagePullPolicy"] == "Always"
    assert sidecar["args"] == ["--config=/conf/agent.yaml"]
    assert {p["containerPort"] for p in sidecar["ports"]} == {4317, 4318}
    assert rendered.mounts("otel-collector")["/conf"]["name"] == "otel-config"
    assert rendered.volume("otel-config")["configMap"]["name"] == "agent-config"

    env = rendered.env()
    assert env["TRACING_ENABLED"] == "true"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "localhost:4318"  # the sidecar's OTLP/HTTP receiver
    assert "TRACING_SAMPLING_RATIO" not in env  # null: the app's default applies

    configmap = rendered.get("ConfigMap", "agent-config")
    assert configmap["metadata"]["namespace"] == helm.NAMESPACE  # not a hard-coded namespace
    assert list(configmap["data"]) == ["agent.yaml"]
    assert rendered.has("Service", "otel-collector")
    assert not rendered.has("Deployment", "jaeger")


def test_default_collector_config_receives_otlp_and_exports_to_the_release_jaeger() -> None:
    rendered = helm.render(SCENARIOS["tracing-sidecar"], namespace="observability")
    assert rendered.get("ConfigMap", "agent-config")["metadata"]["namespace"] == "observability"
    config = _agent_config(rendered)
    assert config["receivers"] == {
        "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}
    }
    assert config["exporters"] == {
        "otlp": {
            "endpoint": "jaeger-collector.observability:4317",
            "tls": {"insecure": True},
            "retry_on_failure": {"enabled": True},
        }
    }
    assert config["service"] == {
        "pipelines": {"traces": {"receivers": ["otlp"], "processors": [], "exporters": ["otlp"]}}
    }


def test_otel_config_replaces_the_collector_configuration_verbatim() -> None:
    rendered = helm.render(SCENARIOS["tracing-otel-config"])
    assert _agent_config(rendered) == OTEL_CONFIG
    assert rendered.env()["TRACING_SAMPLING_RATIO"] == "0.5"


def test_config_change_rolls_the_pods() -> None:
    default = helm.render(SCENARIOS["tracing-sidecar"]).deployment["spec"]["template"]["metadata"][
        "annotations"
    ]
    custom = helm.render(SCENARIOS["tracing-otel-config"]).deployment["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert default["checksum/otel-config"] != custom["checksum/otel-config"]


def test_deploy_jaeger_keeps_the_default_config_and_adds_jaeger_with_its_service() -> None:
    rendered = helm.render({"tracing": {"enabled": True, "deployJaeger": True, "otelConfig": OTEL_CONFIG}})
    # As k8gb: with Jaeger deployed the sidecar must feed it, whatever otelConfig says.
    assert (
        _agent_config(rendered)["exporters"]["otlp"]["endpoint"] == f"jaeger-collector.{helm.NAMESPACE}:4317"
    )

    jaeger = rendered.get("Deployment", "jaeger")
    (container,) = jaeger["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "jaegertracing/all-in-one:1.76.0"
    assert {"name": "COLLECTOR_OTLP_ENABLED", "value": "true"} in container["env"]

    service = rendered.get("Service", "jaeger-collector")
    ports = {p["port"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert set(ports) == {16686, 4317, 4318}
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # `kubectl port-forward svc/jaeger-collector 16686` reaches the UI.
    assert container_ports[ports[16686]] == 16686
    assert container_ports[ports[4317]] == 4317
    pod_labels = jaeger["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert "port-forward svc/jaeger-collector 16686" in rendered.notes


def test_jaeger_service_does_not_select_the_controller() -> None:
    rendered = helm.render(SCENARIOS["tracing-jaeger"])
    selector = rendered.get("Service", "jaeger-collector")["spec"]["selector"]
    controller_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    assert not all(controller_labels.get(k) == v for k, v in selector.items())


def test_sidecar_and_jaeger_images_are_honoured() -> None:
    rendered = helm.render(SCENARIOS["tracing-images"])
    sidecar = rendered.container("otel-collector")
    assert (sidecar["image"], sidecar["imagePullPolicy"]) == ("registry.local/otelcol:1.2.3", "IfNotPresent")
    (jaeger,) = rendered.get("Deployment", "jaeger")["spec"]["template"]["spec"]["containers"]
    assert (jaeger["image"], jaeger["imagePullPolicy"]) == ("registry.local/jaeger:9.9.9", "Never")


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(None, None), (0, "0"), (0.25, "0.25"), ("0.125", "0.125"), (1, "1"), ("1.0", "1.0")],
)
def test_sampling_ratio_is_set_only_when_not_null(ratio: object, expected: str | None) -> None:
    env = helm.render({"tracing": {"enabled": True, "samplingRatio": ratio}}).env()
    assert env.get("TRACING_SAMPLING_RATIO") == expected


def test_custom_architecture_points_at_the_existing_collector_without_a_sidecar() -> None:
    rendered = helm.render(SCENARIOS["tracing-custom-architecture"])
    assert rendered.container_names() == ["pygslb"]
    assert rendered.env()["TRACING_ENABLED"] == "true"
    assert rendered.env()["OTEL_EXPORTER_OTLP_ENDPOINT"] == "otel-collector.monitoring:4318"
    assert not rendered.has("ConfigMap", "agent-config")
    assert not rendered.has("Service", "otel-collector")
    assert "checksum/otel-config" not in rendered.deployment["spec"]["template"]["metadata"]["annotations"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "localhost:4318",  # the default
        "localhost",
        "LOCALHOST.:4318",
        "otel.localhost:4318",
        "127.0.0.1:4318",
        "127.1.2.3",
        "[::1]:4318",
        "0.0.0.0:4318",
        "http://localhost:4318",
        "https://127.0.0.1/otlp",
        "http://[::1]:4318/v1/traces",
    ],
)
def test_custom_architecture_with_a_loopback_endpoint_is_refused(endpoint: str) -> None:
    """Without the sidecar nothing listens on the pod's loopback: the spans would go nowhere."""
    values = {"tracing": {"enabled": True, "sidecar": False, "endpoint": endpoint}}
    with pytest.raises(helm_python.HelmRenderError, match="tracing.sidecar=false needs tracing.endpoint"):
        helm.render(values)


@pytest.mark.parametrize(
    "endpoint",
    ["collector.monitoring:4318", "localhost-collector:4318", "127.example.com", "http://10.0.0.1"],
)
def test_custom_architecture_with_a_collector_elsewhere_renders(endpoint: str) -> None:
    values = {"tracing": {"enabled": True, "sidecar": False, "endpoint": endpoint}}
    assert helm.render(values).env()["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint


def test_endpoint_override_with_the_sidecar_is_kept_as_k8gb_does() -> None:
    env = helm.render({"tracing": {"enabled": True, "endpoint": "collector.obs:4318"}}).env()
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "collector.obs:4318"


def test_grpc_goes_to_the_sidecars_grpc_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tracing.protocol=grpc: the app exports OTLP/gRPC to the sidecar's gRPC receiver (4317). docs/helm.md
    advised OTEL_EXPORTER_OTLP_PROTOCOL=grpc through extraEnv, which kept localhost:4318, the HTTP port:
    no span arrived."""
    rendered = helm.render({"tracing": {"enabled": True, "protocol": "grpc"}})
    settings = _settings(rendered, tmp_path, monkeypatch)
    assert (settings.otlp_protocol, settings.otlp_traces_url) == ("grpc", "http://localhost:4317")
    assert {p["containerPort"] for p in rendered.container("otel-collector")["ports"]} >= {4317}
    assert _agent_config(rendered)["receivers"]["otlp"]["protocols"]["grpc"] == {"endpoint": "0.0.0.0:4317"}
    assert "Traces go to localhost:4317 over gRPC" in rendered.notes


def test_grpc_to_a_collector_of_ones_own_keeps_its_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"tracing": {"enabled": True, "sidecar": False, "protocol": "grpc", "endpoint": "otel.mon:4317"}}
    settings = _settings(helm.render(values), tmp_path, monkeypatch)
    assert (settings.otlp_protocol, settings.otlp_traces_url) == ("grpc", "http://otel.mon:4317")


def test_http_is_the_default_and_sets_no_protocol() -> None:
    env = helm.render({"tracing": {"enabled": True}}).env()
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "localhost:4318"
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" not in env  # extraEnv may still set it, without a duplicate


@pytest.mark.parametrize(
    ("tracing", "name", "value"),
    [
        ({}, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ({}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ({"endpoint": "http://localhost:4318"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),  # URL form
        ({"protocol": "grpc"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),  # HTTP to 4317
    ],
)
def test_a_protocol_through_extra_env_to_the_sidecars_other_port_is_refused(
    tracing: dict[str, str], name: str, value: str
) -> None:
    """The app's protocol (the traces one wins) must be the one of the sidecar port it sends to, or no
    span arrives; the message names the value that picks both."""
    values = {
        "tracing": {"enabled": True, **tracing},
        "pygslb": {"extraEnv": [{"name": name, "value": value}]},
    }
    with pytest.raises(
        helm_python.HelmRenderError,
        match=f"pygslb.extraEnv {name} is {value} but .* set tracing.protocol={value}",
    ):
        helm.render(values)


@pytest.mark.parametrize(
    "tracing",
    [
        {"protocol": "grpc"},  # the sidecar's gRPC port, said twice
        {"sidecar": False, "endpoint": "otel.mon:4317"},  # a collector of one's own: not checked
    ],
)
def test_a_protocol_through_extra_env_that_fits_its_port_renders(tracing: dict[str, object]) -> None:
    extra = [{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "grpc"}]
    env = helm.render({"tracing": {"enabled": True, **tracing}, "pygslb": {"extraEnv": extra}}).env()
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


def test_a_sampling_ratio_string_of_any_precision_reaches_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/helm.md: "number or string like "0.25"": "0.0001" was refused by the schema (three decimals
    at most) while 0.0001 as a number passed."""
    rendered = helm.render({"tracing": {"enabled": True, "samplingRatio": "0.0001"}})
    assert _settings(rendered, tmp_path, monkeypatch).tracing_sampling_ratio == 0.0001
