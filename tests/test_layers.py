"""What import-linter cannot say: only app/telemetry imports the OpenTelemetry SDK (the API is fine
anywhere), so tracing switched off costs nothing outside that package."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_only_telemetry_imports_the_sdk():
    offenders = sorted(
        str(path.relative_to(APP.parent))
        for path in APP.rglob("*.py")
        if "telemetry" not in path.relative_to(APP).parts
        and any(
            m == "opentelemetry.sdk" or m.startswith("opentelemetry.sdk.") for m in imported_modules(path)
        )
    )
    assert offenders == []


def test_the_check_sees_sdk_imports():
    assert any(m.startswith("opentelemetry.sdk") for m in imported_modules(APP / "telemetry" / "setup.py"))
