"""docs/reliability.md names a test for every promise: each `path::name` it cites must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
CITATION = re.compile(r"`(tests/[\w/]+\.py)?::(\w+)")


def cited() -> list[tuple[str, str]]:
    """(file, test name) for every citation; `::name` continues the file cited before it."""
    found: list[tuple[str, str]] = []
    current = ""
    for match in CITATION.finditer(DOC.read_text()):
        current = match.group(1) or current
        found.append((current, match.group(2)))
    return found


def defined_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_cited_test_exists() -> None:
    citations = cited()
    assert len(citations) > 50
    missing = [f"{path}::{name}" for path, name in citations if name not in defined_in(ROOT / path)]
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"
