"""`gslb get -o wide` answers "why are there no A records?" from status alone."""

from app.cli import _wide_row


def test_wide_row_shows_health_records_peers_and_failing_conditions():
    item = {
        "status": {
            "serviceHealth": {"app.cloud.example.com": "Unhealthy"},
            "healthyRecords": {"app.cloud.example.com": ["10.0.2.1"]},
            "peers": [
                {"geoTag": "us", "host": "app.cloud.example.com", "targets": ["10.0.2.1"]},
                {"geoTag": "za", "host": "app.cloud.example.com", "targets": [], "error": "timeout"},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "message": "1 of 1 hosts have targets"},
                {"type": "EdgeDelegated", "status": "False", "message": "rfc2136: REFUSED"},
            ],
        }
    }
    health, records, peers, error = _wide_row(item)
    assert health == "app.cloud.example.com=Unhealthy"
    assert records == "app.cloud.example.com=10.0.2.1"
    assert peers == "us:10.0.2.1;za:timeout"
    assert error == "EdgeDelegated: rfc2136: REFUSED"


def test_wide_row_without_status():
    assert _wide_row({}) == ["-", "-", "-", "-"]


def test_names_are_one_percent_encoded_path_segment_each():
    from app.cli import _item

    assert (
        _item("k8gb.io", "a/b", "../x?y#z") == "/apis/k8gb.io/v1beta1/namespaces/a%2Fb/gslbs/..%2Fx%3Fy%23z"
    )
