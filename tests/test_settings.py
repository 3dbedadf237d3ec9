"""Settings read from the environment as k8gb reads its own: what k8gb refuses is refused with a message
naming the setting and the value, what k8gb still honours under an old name is honoured, and what pygslb
does not read is said at start instead of being ignored silently (k8gb.md §3)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.cli import _settings_errors
from app.settings import Settings, load_settings

INFOBLOX = {
    "INFOBLOX_GRID_HOST": "grid.example.com",
    "INFOBLOX_WAPI_USERNAME": "admin",
    "INFOBLOX_WAPI_PASSWORD": "secret",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment for the settings k8gb and pygslb read."""
    k8gb_only = (
        "METRICS_ADDRESS",
        "NO_COLOR",
        "ZONE_DELEGATION_RECOVERY_SECONDS",
        "INFOBLOX_HTTP_POOL_CONNECTIONS",
        "SPLIT_BRAIN_CHECK",
        "COREDNS_EXPOSED",
        "FEATURE_DYNAMIC_ZONES",
    )
    for name in (*Settings.model_fields, *k8gb_only):
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def refusal(env: pytest.MonkeyPatch, **values: str) -> str:
    for name, value in values.items():
        env.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    return "\n".join(f"error: {line}" for line in _settings_errors(caught.value))


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ("1.1.1.1", [("1.1.1.1", 53)]),
        (
            " 10.0.0.1:5053 , edge.test:53,edge-1.example",
            [("10.0.0.1", 5053), ("edge.test", 53), ("edge-1.example", 53)],
        ),
        ("edge.test:65535", [("edge.test", 65535)]),
    ],
)
def test_edge_servers_k8gb_accepts_are_used(env: pytest.MonkeyPatch, servers: str, expected: object) -> None:
    env.setenv("EDGE_DNS_SERVERS", servers)
    assert load_settings().edge_servers == expected


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        ("::1", "'::1': IPv6 addresses and URLs are not supported"),
        ("1.1.1.1,[::1]:53", "'[::1]:53': IPv6 addresses and URLs are not supported"),
        ("http://foo:53", "'http://foo:53': IPv6 addresses and URLs are not supported"),
        (":53", "':53': the host is missing"),
        ("bad_host!", "'bad_host!': not an IPv4 address or a host name"),
        ("-edge.test", "'-edge.test': not an IPv4 address or a host name"),
        ("10.0.0.1:0", "'10.0.0.1:0': the port must be a number from 1 to 65535"),
        ("10.0.0.1:", "'10.0.0.1:': the port must be a number from 1 to 65535"),
        ("10.0.0.256", "'10.0.0.256': 10.0.0.256 is not an IPv4 address"),
        ("1.1.1.1,8.8.8.8,1.1.1.1", "'1.1.1.1' is listed twice"),
    ],
)
def test_edge_servers_k8gb_refuses_are_refused_naming_the_entry(
    env: pytest.MonkeyPatch, servers: str, expected: str
) -> None:
    message = refusal(env, EDGE_DNS_SERVERS=servers)
    assert message.startswith(f"error: invalid setting EDGE_DNS_SERVERS: {expected}"), message
    assert "\n" not in message


def test_legacy_edge_server_is_the_fallback_with_a_deprecation_warning(env: pytest.MonkeyPatch) -> None:
    env.setenv("EDGE_DNS_SERVER", "10.0.0.53")
    env.setenv("EDGE_DNS_SERVER_PORT", "5353")
    settings = load_settings()
    assert settings.edge_servers == [("10.0.0.53", 5353)]
    assert settings.notices() == [
        "EDGE_DNS_SERVER and EDGE_DNS_SERVER_PORT deprecated, use EDGE_DNS_SERVERS instead "
        "(used as EDGE_DNS_SERVERS=10.0.0.53:5353)"
    ]

    env.delenv("EDGE_DNS_SERVER_PORT")
    assert load_settings().edge_servers == [("10.0.0.53", 53)]

    env.setenv("EDGE_DNS_SERVERS", "10.0.0.1")  # k8gb: the list wins, the old name is still warned about
    settings = load_settings()
    assert settings.edge_servers == [("10.0.0.1", 53)]
    assert settings.notices() == [
        "EDGE_DNS_SERVER deprecated, use EDGE_DNS_SERVERS instead (EDGE_DNS_SERVERS wins)"
    ]


def test_legacy_edge_server_is_checked_as_an_entry(env: pytest.MonkeyPatch) -> None:
    assert refusal(env, EDGE_DNS_SERVER="::1").startswith(
        "error: invalid setting EDGE_DNS_SERVER: '::1:53': IPv6 addresses"
    )
    env.delenv("EDGE_DNS_SERVER")
    assert refusal(env, EDGE_DNS_SERVER_PORT="5353") == (
        "error: invalid setting EDGE_DNS_SERVER_PORT: set without EDGE_DNS_SERVER (write "
        "EDGE_DNS_SERVERS=host:port)"
    )
    assert refusal(env, EDGE_DNS_SERVER="10.0.0.53", EDGE_DNS_SERVER_PORT="0").startswith(
        "error: invalid setting EDGE_DNS_SERVER_PORT: Input should be greater than or equal to 1"
    )


def test_legacy_single_zone_is_refused_telling_how_to_write_dns_zones(env: pytest.MonkeyPatch) -> None:
    assert refusal(env, DNS_ZONE="cloud.example.org", EDGE_DNS_ZONE="example.org") == (
        "error: invalid settings: DNS_ZONE, EDGE_DNS_ZONE: k8gb <= 0.14's single zone is no longer read "
        "(k8gb requires DNS_ZONES too); set DNS_ZONES=example.org:cloud.example.org:30 instead "
        "(parent:loadBalancedZone:negTTL)"
    )
    env.setenv("DNS_ZONES", "example.org:cloud.example.org:30")  # then they are only mentioned
    settings = load_settings()
    assert [z.load_balanced_zone for z in settings.zones] == ["cloud.example.org"]
    assert settings.notices() == [
        "ignored k8gb settings: DNS_ZONE (k8gb <= 0.14's single zone; DNS_ZONES is set and wins); "
        "EDGE_DNS_ZONE (k8gb <= 0.14's single zone; DNS_ZONES is set and wins)"
    ]


def test_extdns_is_refused_naming_the_supported_providers(env: pytest.MonkeyPatch) -> None:
    assert refusal(env, EXTDNS_ENABLED="true") == (
        "error: invalid setting EXTDNS_ENABLED: pygslb does not write the edge delegation through "
        "ExternalDNS; set EDGE_DNS_TYPE to rfc2136, infoblox or none (docs/helm.md)"
    )
    env.setenv("EXTDNS_ENABLED", "false")
    assert load_settings().edge_dns_type == "none"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"EXTDNS_ENABLED": "true", **INFOBLOX},
            "error: invalid settings: EXTDNS_ENABLED, INFOBLOX_GRID_HOST: multiple DNS providers configured "
            "simultaneously (ExternalDNS, infoblox); pygslb writes the edge delegation through one",
        ),
        (
            {"EDGE_DNS_TYPE": "rfc2136", "RFC2136_HOST": "10.0.0.53", **INFOBLOX},
            "error: invalid settings: EDGE_DNS_TYPE, INFOBLOX_GRID_HOST: multiple DNS providers configured "
            "simultaneously (rfc2136, infoblox); pygslb writes the edge delegation through one",
        ),
    ],
)
def test_multiple_providers_are_refused(
    env: pytest.MonkeyPatch, values: dict[str, str], expected: str
) -> None:
    assert refusal(env, **values) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"INFOBLOX_GRID_HOST": "grid.example.com"},
            "error: invalid setting INFOBLOX_WAPI_USERNAME: required with Infoblox "
            "(INFOBLOX_GRID_HOST is set)",
        ),
        (
            {**INFOBLOX, "INFOBLOX_WAPI_PASSWORD": ""},
            "error: invalid setting INFOBLOX_WAPI_PASSWORD: required with Infoblox (or "
            "INFOBLOX_WAPI_PASSWORD_FILE)",
        ),
        (
            {**INFOBLOX, "INFOBLOX_GRID_HOST": "bad host!"},
            "error: invalid setting INFOBLOX_GRID_HOST: 'bad host!' is not a host name or an IP address",
        ),
        (
            {**INFOBLOX, "INFOBLOX_WAPI_VERSION": ""},
            "error: invalid setting INFOBLOX_WAPI_VERSION: empty; give the grid's WAPI version, e.g. 2.3.1",
        ),
        (
            {"EDGE_DNS_TYPE": "infoblox"},
            "error: invalid setting INFOBLOX_GRID_HOST: EDGE_DNS_TYPE=infoblox needs the grid's host name "
            "or IP",
        ),
        (
            {"EDGE_DNS_TYPE": "rfc2136"},
            "error: invalid setting RFC2136_HOST: EDGE_DNS_TYPE=rfc2136 needs the server, host or host:port",
        ),
        (
            {"EDGE_DNS_TYPE": "rfc2136", "RFC2136_HOST": "10.0.0.53", "RFC2136_TSIG_KEYNAME": "k"},
            "error: invalid setting RFC2136_TSIG_SECRET: RFC2136_TSIG_KEYNAME is set but the secret "
            "(or _FILE) is empty",
        ),
    ],
)
def test_provider_settings_are_complete_at_start(
    env: pytest.MonkeyPatch, values: dict[str, str], expected: str
) -> None:
    assert refusal(env, **values) == expected


@pytest.mark.parametrize("host", ["grid.example.com", "10.0.0.1", "fd00::1"])
def test_infoblox_grid_host_k8gb_accepts(env: pytest.MonkeyPatch, host: str) -> None:
    for name, value in {**INFOBLOX, "INFOBLOX_GRID_HOST": host}.items():
        env.setenv(name, value)
    assert load_settings().edge_dns_type == "infoblox"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"NS_RECORD_TTL": "4294967296"}, "NS_RECORD_TTL: Input should be less than or equal to 2147483647"),
        ({"NS_RECORD_TTL": "2147483648"}, "NS_RECORD_TTL: Input should be less than or equal to 2147483647"),
        (
            {"DNS_ZONES": "example.com:cloud.example.com:99999999999"},
            "DNS_ZONES: DNS_ZONES entry 'example.com:cloud.example.com:99999999999': negTTL must be a whole "
            "number from 0 to 2147483647",
        ),
        (
            {"DNS_ZONES": "example.com:cloud.example.com:3000000000"},
            "DNS_ZONES: DNS_ZONES entry 'example.com:cloud.example.com:3000000000': negTTL must be",
        ),
    ],
)
def test_ttls_are_bounded_by_rfc_2181(env: pytest.MonkeyPatch, values: dict[str, str], expected: str) -> None:
    assert refusal(env, **values).startswith(f"error: invalid setting {expected}")


def test_largest_ttls_are_taken(env: pytest.MonkeyPatch) -> None:
    env.setenv("NS_RECORD_TTL", "2147483647")
    env.setenv("DNS_ZONES", "example.com:cloud.example.com:2147483647")
    settings = load_settings()
    assert (settings.ns_record_ttl, settings.zones[0].neg_ttl) == (2147483647, 2147483647)


def test_zone_delegation_requeue_of_zero_is_taken(env: pytest.MonkeyPatch) -> None:
    env.setenv("ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS", "0")
    assert load_settings().zone_delegation_reconcile_requeue_seconds == 0


def test_ignored_k8gb_settings_are_named_once_with_why(env: pytest.MonkeyPatch) -> None:
    assert load_settings().notices() == []
    env.setenv("METRICS_ADDRESS", "0.0.0.0:8080")
    env.setenv("NO_COLOR", "true")
    env.setenv("SPLIT_BRAIN_CHECK", "false")
    assert load_settings().notices() == [
        "ignored k8gb settings: METRICS_ADDRESS (/metrics is served on API_ADDRESS); NO_COLOR (log lines "
        "are never coloured); SPLIT_BRAIN_CHECK (k8gb <= 0.14's split-brain TXT heartbeat is gone, as in "
        "k8gb)"
    ]


def test_otlp_export_timeout_is_milliseconds_and_the_traces_one_wins() -> None:
    """The standard's unit; pygslb's 3 s when neither is set."""
    assert Settings().otlp_export_timeout_s == 3.0
    assert Settings(otel_exporter_otlp_timeout="10000").otlp_export_timeout_s == 10.0
    both = Settings(otel_exporter_otlp_timeout="10000", otel_exporter_otlp_traces_timeout="250")
    assert both.otlp_export_timeout_s == 0.25


def test_an_export_timeout_that_looks_like_seconds_is_warned_about(env: pytest.MonkeyPatch) -> None:
    """The Python SDK alone reads OTEL_EXPORTER_OTLP_TIMEOUT in seconds: `10` written for it is 10 ms here."""
    env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10")
    assert load_settings().notices() == []  # tracing off: no export at all
    env.setenv("TRACING_ENABLED", "true")
    assert load_settings().notices() == [
        "OTEL_EXPORTER_OTLP_TIMEOUT=10 is 10 ms (the standard's unit is milliseconds, 10000 for 10 s): an "
        "export that takes longer fails"
    ]
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500")  # the one in use: nothing to warn about
    assert load_settings().notices() == []
    env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10000")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "5")
    assert [n.split(" is ")[0] for n in load_settings().notices()] == ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=5"]


def test_an_empty_otlp_protocol_is_unset(env: pytest.MonkeyPatch) -> None:
    """The OpenTelemetry standard reads an empty variable as unset (a chart or a shell leaves some)."""
    env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", " ")
    assert load_settings().otlp_protocol == "http/protobuf"
    env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert load_settings().otlp_protocol == "grpc"
