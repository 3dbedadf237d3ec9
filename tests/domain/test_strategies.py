"""k8gb.md §5, row by row: the final `<host>` targets for each strategy and situation."""

import pytest

from app.domain.gslb import Strategy
from app.domain.strategies import final_targets, record_labels, targets_by_tag

RR = Strategy(type="roundRobin")
GEO = Strategy(type="geoip")
FO_EU = Strategy(type="failover", primaryGeoTag="eu")
L_EU = ["10.0.0.1", "10.0.0.2"]
US = ["10.1.0.1"]
ZA = ["10.2.0.1"]


@pytest.mark.parametrize(
    ("strategy", "own", "local", "peers", "expected"),
    [
        pytest.param(RR, "eu", L_EU, {"us": US}, L_EU + US, id="rr: local and peers"),
        pytest.param(RR, "eu", [], {"us": US}, US, id="rr: unhealthy here, peers only"),
        pytest.param(RR, "eu", L_EU, {}, L_EU, id="rr: no peer answered, local only"),
        pytest.param(RR, "eu", [], {}, [], id="rr: nothing healthy, no record"),
        pytest.param(RR, "eu", L_EU, {"us": [], "za": ZA}, L_EU + ZA, id="rr: empty peer answer ignored"),
        pytest.param(GEO, "eu", L_EU, {"us": US, "za": ZA}, L_EU + US + ZA, id="geoip: same set as rr"),
        pytest.param(FO_EU, "eu", L_EU, {"us": US}, L_EU, id="failover primary healthy: own only"),
        pytest.param(
            FO_EU, "eu", [], {"us": US, "za": ZA}, US + ZA, id="failover primary unhealthy: all peers"
        ),
        pytest.param(FO_EU, "eu", [], {}, [], id="failover primary unhealthy, no peers: no record"),
        pytest.param(FO_EU, "us", US, {"eu": L_EU}, L_EU, id="failover secondary sees primary: primary only"),
        pytest.param(FO_EU, "us", [], {"eu": L_EU}, L_EU, id="failover secondary unhealthy sees primary"),
        pytest.param(FO_EU, "us", US, {"za": ZA}, US + ZA, id="failover secondary, primary gone: all"),
        pytest.param(FO_EU, "us", US, {}, US, id="failover secondary alone: premature failover to self"),
        pytest.param(
            FO_EU, "za", ZA, {"eu": L_EU, "us": US}, L_EU, id="3 clusters: secondary returns only the primary"
        ),
        pytest.param(
            FO_EU, "za", [], {"us": US}, US, id="3 clusters: primary down, secondary sees other secondary"
        ),
        pytest.param(RR, "eu", L_EU, {"eu": ["9.9.9.9"]}, L_EU, id="own tag among peers is ignored"),
    ],
)
def test_final_targets(strategy, own, local, peers, expected):
    assert final_targets(strategy, own, local, peers) == expected


def test_weight_labels_follow_k8gb_layout():
    strategy = Strategy(type="roundRobin", weight={"eu": 80, "us": 20})
    final = final_targets(strategy, "eu", L_EU, {"us": US})
    labels = dict(record_labels(strategy, final, targets_by_tag("eu", L_EU, {"us": US})))
    assert labels == {
        "strategy": "roundRobin",
        "weight-eu-0-80": "10.0.0.1",
        "weight-eu-1-80": "10.0.0.2",
        "weight-us-0-20": "10.1.0.1",
    }


def test_no_weight_labels_for_tags_without_weight_or_targets():
    strategy = Strategy(type="roundRobin", weight={"eu": 5, "za": 5})
    labels = record_labels(strategy, US, targets_by_tag("eu", [], {"us": US}))
    assert labels == (("strategy", "roundRobin"),)
