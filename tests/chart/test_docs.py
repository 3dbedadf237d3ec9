"""docs/helm.md tells the truth: its values table matches values.yaml, its RBAC table matches the rendered
ClusterRole, and every values example in it renders."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import chart as helm

DOC = Path(__file__).resolve().parents[2] / "docs" / "helm.md"
_MISSING = object()


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _table(section: str) -> list[list[str]]:
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]  # header + rule


def _lookup(values: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return _MISSING
        values = values[part]
    return values


def _leaves(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        return [leaf for key, sub in values.items() for leaf in _leaves(sub, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def _documented() -> dict[str, str]:
    return {row[0].strip("`"): row[1].strip("`") for row in _table(_section("Values"))}


def _chart_values() -> dict[str, Any]:
    values = yaml.safe_load((helm.CHART_DIR / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def test_every_documented_value_exists_with_its_default() -> None:
    values = _chart_values()
    documented = _documented()
    assert len(documented) > 50
    for key, default in documented.items():
        actual = _lookup(values, key)
        assert actual is not _MISSING, f"docs/helm.md documents {key}, which values.yaml does not have"
        assert json.loads(default) == actual, (
            f"{key}: documented default {default}, values.yaml has {actual!r}"
        )


def test_every_value_is_documented() -> None:
    documented = set(_documented())
    for leaf in _leaves(_chart_values()):
        parts = leaf.split(".")
        covered = any(".".join(parts[:i]) in documented for i in range(1, len(parts) + 1))
        assert covered, f"values.yaml has {leaf}, which docs/helm.md does not document"


def test_rbac_table_is_what_the_chart_grants() -> None:
    section = _section("Security")
    documented: dict[tuple[str, str], set[str]] = {}
    for groups, resources, verbs in _table(section):
        for group in re.findall(r"`([^`]+)`|(core)", groups):
            name = "" if group[1] else group[0]
            verb_set = {v.strip() for v in re.sub(r"\(.*\)", "", verbs).split(",")}
            for resource in re.findall(r"`([^`]+)`", resources):
                documented.setdefault((name, resource), set()).update(verb_set)
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in helm.render().get("ClusterRole", helm.FULLNAME)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert documented == granted


def _value_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    return [yaml.safe_load(block) for block in blocks]


@pytest.mark.parametrize("example", _value_examples(), ids=lambda e: "+".join(e))
def test_values_examples_in_the_doc_render(example: dict[str, Any]) -> None:
    rendered = helm.render(example)
    assert rendered.deployment


def test_port_forward_commands_name_rendered_services() -> None:
    jaeger = helm.render({"tracing": {"enabled": True, "deployJaeger": True}})
    for service, port in re.findall(r"port-forward svc/([a-z-]+) (\d+)", DOC.read_text()):
        assert service == "jaeger-collector"
        ports = [p["port"] for p in jaeger.get("Service", service)["spec"]["ports"]]
        assert int(port) in ports
