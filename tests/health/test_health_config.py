"""The services file: what is accepted, what is refused, and that refusals name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.health.config import (
    HttpProbe,
    ServicesFileError,
    TcpProbe,
    aload_services,
    load_services,
    parse_services,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "services.yaml"


def one(**fields: object) -> dict[str, object]:
    return {"services": [{"namespace": "ns", "name": "svc", "endpoints": ["127.0.0.1:80"], **fields}]}


def test_example_file_is_the_walkthrough_service() -> None:
    [svc] = load_services(EXAMPLE)
    assert (svc.namespace, svc.name, svc.endpoints) == ("test-gslb", "frontend-podinfo", ["127.0.0.1:9898"])
    assert isinstance(svc.probe, HttpProbe)
    assert (svc.probe.path, svc.probe.expected_status, svc.probe.failure_threshold) == ("/", 200, 2)


async def test_async_load_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "services:\n  - {namespace: ns, name: db, endpoints: ['10.0.0.1:5432'], probe: {type: tcp}}\n"
    )
    [svc] = await aload_services(path)
    assert isinstance(svc.probe, TcpProbe) and svc.endpoints == ["10.0.0.1:5432"]


def test_defaults_follow_kubernetes_probes() -> None:
    [svc] = parse_services({"services": [{"namespace": "ns", "name": "svc"}]})
    assert isinstance(svc.probe, TcpProbe)
    assert (svc.probe.timeout_seconds, svc.probe.success_threshold, svc.probe.failure_threshold) == (1, 1, 3)
    assert svc.endpoints == []


PROBE, ENDPOINT = "services[0].probe", "services[0].endpoints[0]"
BAD_FIELDS = {
    "status": ({"probe": {"type": "http", "expectedStatus": 700}}, f"{PROBE}.expectedStatus:"),
    "path": ({"probe": {"type": "http", "path": "healthz"}}, f"{PROBE}.path:"),
    "threshold": ({"probe": {"type": "tcp", "failureThreshold": 0}}, f"{PROBE}.failureThreshold:"),
    "interval": ({"probe": {"type": "tcp", "intervalSeconds": 0}}, f"{PROBE}.intervalSeconds:"),
    "typo": ({"probe": {"type": "http", "expectStatus": 200}}, f"{PROBE}.expectStatus:"),
    "type": ({"probe": {"type": "udp"}}, f"{PROBE}: Input tag 'udp'"),
    "no-port": ({"endpoints": ["127.0.0.1"]}, f"{ENDPOINT}: '127.0.0.1' must be host:port"),
    "port": ({"endpoints": ["host:99999"]}, f"{ENDPOINT}: 'host:99999': port"),
    "bare-v6": ({"endpoints": ["::1:80"]}, f"{ENDPOINT}: '::1:80': write IPv6 addresses as [address]:port"),
    "host": ({"endpoints": ["bad_host:80"]}, f"{ENDPOINT}: 'bad_host:80': 'bad_host' is not"),
    "namespace": ({"namespace": "Bad_NS"}, "services[0].namespace: 'Bad_NS' is not a valid namespace"),
    "name": ({"name": "-x"}, "services[0].name: '-x' is not a valid name"),
    # A value that would probe wrongly, or not at all, instead of being refused:
    "path-newline": ({"probe": {"type": "http", "path": "/a\nb"}}, f"{PROBE}.path:"),
    "bool-threshold": ({"probe": {"type": "tcp", "failureThreshold": True}}, f"{PROBE}.failureThreshold:"),
    "infinite-timeout": (
        {"probe": {"type": "tcp", "timeoutSeconds": float("inf")}},
        f"{PROBE}.timeoutSeconds:",
    ),
    "infinite-interval": (
        {"probe": {"type": "tcp", "intervalSeconds": float("inf")}},
        f"{PROBE}.intervalSeconds:",
    ),
    "spinning-interval": (
        {"probe": {"type": "tcp", "intervalSeconds": 0.000001}},
        f"{PROBE}.intervalSeconds:",
    ),
    "non-ascii-port": ({"endpoints": ["127.0.0.1:\u0664\u0667\u0661"]}, f"{ENDPOINT}: '127.0.0.1:"),
}


@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_errors_name_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ServicesFileError) as caught:
        parse_services(one(**fields), "svc.yaml")
    assert str(caught.value).startswith("svc.yaml: ")
    assert message in str(caught.value)


def test_ipv6_endpoint_in_brackets_is_accepted() -> None:
    [svc] = parse_services(one(endpoints=["[::1]:8080", "backend.example.com:443"]))
    assert svc.endpoints == ["[::1]:8080", "backend.example.com:443"]


def test_duplicate_service_is_refused() -> None:
    data = {"services": [{"namespace": "ns", "name": "a"}, {"namespace": "ns", "name": "a"}]}
    with pytest.raises(ServicesFileError, match=r"services\[1\]: ns/a is already declared at services\[0\]"):
        parse_services(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("services: [unclosed", "not valid YAML", id="yaml"),
        pytest.param("- just a list\n", "top level must be a mapping", id="toplevel"),
        pytest.param("services: {a: 1}\n", "services:", id="not-a-list"),
        pytest.param("services: []\nservices: []\n", "not valid YAML", id="duplicate-key"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ServicesFileError) as caught:
        load_services(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ServicesFileError, match="cannot read"):
        load_services(tmp_path / "absent.yaml")


def test_empty_file_declares_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_services(path) == []
