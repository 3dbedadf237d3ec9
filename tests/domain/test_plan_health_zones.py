import pytest

from app.domain.endpoint import Endpoint
from app.domain.gslb import HealthStatus, ServiceHealthPolicy
from app.domain.health import ServiceState, host_health
from app.domain.plan import plan
from app.domain.zones import ZoneConfig, localtargets_name, parse_dns_zones, zone_for

H, U, N = ServiceState.HEALTHY, ServiceState.UNHEALTHY, ServiceState.NOT_FOUND


@pytest.mark.parametrize(
    ("states", "policy", "expected"),
    [
        pytest.param([], None, HealthStatus.NOT_FOUND, id="no services"),
        pytest.param([H, U], None, HealthStatus.HEALTHY, id="any: one healthy"),
        pytest.param([U, N], None, HealthStatus.UNHEALTHY, id="any: unhealthy beats notfound"),
        pytest.param([N], None, HealthStatus.NOT_FOUND, id="any: only notfound"),
        pytest.param([H, U], ServiceHealthPolicy.ALL, HealthStatus.UNHEALTHY, id="all: one unhealthy"),
        pytest.param([H, N, U], ServiceHealthPolicy.ALL, HealthStatus.NOT_FOUND, id="all: notfound first"),
        pytest.param([H, H], ServiceHealthPolicy.ALL, HealthStatus.HEALTHY, id="all: all healthy"),
    ],
)
def test_host_health(states, policy, expected):
    assert host_health(states, policy) == expected


A = Endpoint("a.cloud.example.com", ("1.1.1.1",))
B = Endpoint("b.cloud.example.com", ("2.2.2.2",))
B2 = Endpoint("b.cloud.example.com", ("2.2.2.3",))


@pytest.mark.parametrize(
    ("current", "desired", "create", "update", "delete"),
    [
        pytest.param([], [A], [A], [], [], id="create"),
        pytest.param([A], [], [], [], [A], id="delete"),
        pytest.param([A, B], [A, B2], [], [B2], [], id="update targets"),
        pytest.param([A], [A], [], [], [], id="no change"),
        pytest.param([Endpoint("A.cloud.example.com.", ("1.1.1.1",))], [A], [], [], [], id="case and dot"),
    ],
)
def test_plan(current, desired, create, update, delete):
    changes = plan(current, desired)
    assert (list(changes.create), list(changes.update_new), list(changes.delete)) == (create, update, delete)
    assert changes.has_changes == bool(create or update or delete)


def test_dns_zones_parse_and_glue_names():
    zones = parse_dns_zones("example.com:cloud.example.com:30;example.org:gslb.example.org:300")
    assert zones[0] == ZoneConfig("example.com", "cloud.example.com", 30)
    assert zones[0].glue_name("gslb-ns-", "eu") == "gslb-ns-eu-cloud.example.com"
    assert zone_for("app.cloud.example.com", zones) == zones[0]
    assert zone_for("app.example.net", zones) is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("example.com:cloud.example.com", id="two fields"),
        pytest.param("example.com:cloud.example.com:x", id="ttl not a number"),
        pytest.param("example.com:cloud.example.org:30", id="not a subdomain"),
    ],
)
def test_dns_zones_errors(value):
    with pytest.raises(ValueError, match="DNS_ZONES"):
        parse_dns_zones(value)


def test_localtargets_name_length_limits():
    assert localtargets_name("app.cloud.example.com") == "localtargets-app.cloud.example.com"
    with pytest.raises(ValueError):
        localtargets_name("a" * 55 + ".cloud.example.com")
