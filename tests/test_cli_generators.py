"""`gslb crds` and `gslb openapi` print exactly what is committed, so users and CI see one truth."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def gslb(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_gslb_crds_prints_the_committed_crds():
    printed = list(yaml.safe_load_all(gslb("crds")))
    committed = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "chart" / "crds").glob("*.yaml"))]
    assert sorted(d["metadata"]["name"] for d in printed) == [
        "dnsendpoints.externaldns.k8s.io",
        "gslbs.k8gb.absa.oss",
        "gslbs.k8gb.io",
    ]
    assert sorted(printed, key=lambda d: d["metadata"]["name"]) == sorted(
        committed, key=lambda d: d["metadata"]["name"]
    )


def test_gslb_crds_split_writes_the_chart_files(tmp_path):
    gslb("crds", "--split", str(tmp_path))
    for committed in (ROOT / "chart" / "crds").glob("*.yaml"):
        assert (tmp_path / committed.name).read_text() == committed.read_text()


def test_gslb_openapi_prints_the_committed_document():
    assert gslb("openapi") == (ROOT / "openapi" / "openapi.json").read_text()


def test_an_unavailable_propagator_is_one_line_for_every_command():
    """OTEL_PROPAGATORS is read when OpenTelemetry's propagate module is imported (the API imports it):
    a propagator that is not installed was a traceback from `gslb openapi`, as from `gslb serve`."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "openapi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OTEL_PROPAGATORS": "b3"},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: invalid setting OTEL_PROPAGATORS: 'b3' is not an installed")
    assert len(result.stderr.splitlines()) == 1
