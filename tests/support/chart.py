"""Render the Helm chart with Helm itself (helm-python-sdk, offline) and look into what it produced."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "chart"
RELEASE = "gslb"
NAMESPACE = "k8gb"
FULLNAME = f"{RELEASE}-pygslb"
KUBE_VERSION = "1.33.0"

Obj = dict[str, Any]


@cache
def chart() -> helm_python.Chart:
    """Loaded once per test process; Helm charts are immutable and thread-safe."""
    return helm_python.Chart.load(CHART_DIR)


@dataclass(frozen=True)
class Rendered:
    """Every object one `helm template` produced, plus NOTES.txt."""

    objects: list[Obj]
    notes: str

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}: {self.names()}"
        return found[0]

    def has(self, kind: str, name: str) -> bool:
        return any(o["metadata"]["name"] == name for o in self.all(kind))

    def names(self) -> list[str]:
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects)

    @property
    def deployment(self) -> Obj:
        return self.get("Deployment", FULLNAME)

    @property
    def pod(self) -> Obj:
        spec: Obj = self.deployment["spec"]["template"]["spec"]
        return spec

    def container(self, name: str = "pygslb") -> Obj:
        found: list[Obj] = [c for c in self.pod["containers"] if c["name"] == name]
        assert len(found) == 1, f"no container {name!r} in {[c['name'] for c in self.pod['containers']]}"
        return found[0]

    def container_names(self) -> list[str]:
        return [c["name"] for c in self.pod["containers"]]

    def env(self, container: str = "pygslb") -> dict[str, Any]:
        """name → plain value, or the valueFrom dict for references."""
        return {
            e["name"]: e.get("value", e.get("valueFrom")) for e in self.container(container).get("env", [])
        }

    def volume(self, name: str) -> Obj:
        found: list[Obj] = [v for v in self.pod.get("volumes", []) if v["name"] == name]
        assert len(found) == 1, f"no volume {name!r}"
        return found[0]

    def mounts(self, container: str = "pygslb") -> dict[str, Obj]:
        return {m["mountPath"]: m for m in self.container(container).get("volumeMounts", [])}


def _documents(text: str) -> Iterator[Obj]:
    for doc in yaml.safe_load_all(text):
        if doc:
            yield doc


def render(values: Obj | None = None, *, namespace: str = NAMESPACE) -> Rendered:
    """`helm template gslb chart/ -n <namespace>` with these values (the chart's schema is enforced)."""
    files = chart().render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
    notes = ""
    objects: list[Obj] = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            notes = text
        else:
            objects.extend(_documents(text))
    return Rendered(objects=objects, notes=notes)


def crds() -> list[Obj]:
    """The CRDs Helm installs from chart/crds/ before the templates."""
    return [doc for item in chart().crds for doc in _documents(item["data"])]
