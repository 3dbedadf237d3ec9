"""The Dockerfile: hadolint clean (the real binary), and the properties the chart relies on.

No Docker engine runs here, so the image is checked by reading the Dockerfile: multi-stage, a slim
Python 3.12 final stage without build tools, a numeric non-root user matching the chart's runAsUser,
nothing written outside /tmp, the ports the chart maps, and `gslb serve` as the process.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages(text: str) -> list[Stage]:
    """Split into stages of (INSTRUCTION, arguments), joining continuation lines and dropping comments."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    args = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = parts[0]
            for name, value in args.items():
                base = base.replace(f"${{{name}}}", value)
            stages.append(Stage(base=base, name=parts[2] if len(parts) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def _final() -> Stage:
    return _stages(DOCKERFILE.read_text())[-1]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_hadolint_is_real_and_does_report_problems(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install flask\n")
    result = subprocess.run(
        [str(HADOLINT), "--format", "json", str(bad)], capture_output=True, text=True, timeout=30, check=False
    )
    codes = {f["code"] for f in json.loads(result.stdout)}
    assert {"DL3007", "DL3003", "DL3013"} <= codes
    assert result.returncode != 0


def test_multi_stage_with_a_slim_python_312_final_stage() -> None:
    stages = _stages(DOCKERFILE.read_text())
    assert len(stages) >= 2
    final = stages[-1]
    assert final.base.startswith("python:3.12-slim")
    copies = final.all("COPY")
    assert copies and all(c.startswith(f"--from={stages[0].name} ") for c in copies), (
        "final stage copies only build output"
    )


def test_no_build_tools_or_package_managers_in_the_final_stage() -> None:
    runs = " ".join(_final().all("RUN"))
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip install", "make "):
        assert tool not in runs, f"{tool!r} in the final stage"


def test_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = _final().all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    chart_values = yaml.safe_load((ROOT / "chart" / "values.yaml").read_text())
    assert int(uid) == chart_values["k8gb"]["securityContext"]["runAsUser"]
    instructions = [kw for kw, _ in _final().instructions]
    assert instructions.index("USER") > max(i for i, kw in enumerate(instructions) if kw in {"RUN", "COPY"})


def test_read_only_root_filesystem_friendly() -> None:
    env = _env(_final())
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["GSLB_DATA_DIR"].startswith("/tmp/")
    assert all(w.startswith("/tmp") for w in _final().all("WORKDIR"))
    # bytecode compiled at build time, so imports never need to write
    assert any("compileall" in run for run in _stages(DOCKERFILE.read_text())[0].all("RUN"))


def test_environment_names_are_settings_the_app_reads() -> None:
    names = {name.upper() for name in Settings.model_fields}
    env = _env(_final())
    for key in env.keys() - {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}:
        assert key in names, f"{key} is not an app setting"
    assert env["API_ADDRESS"].endswith(":8080") and env["DNS_ADDRESS"].endswith(":5353")


def test_exposes_api_dns_and_metrics_ports() -> None:
    exposed = {port for args in _final().all("EXPOSE") for port in args.split()}
    assert {"8080/tcp", "5353/udp", "5353/tcp"} <= exposed  # /metrics is served on the API port
    values = yaml.safe_load((ROOT / "chart" / "values.yaml").read_text())
    assert values["pygslb"]["api"]["port"] == 8080 and values["pygslb"]["dns"]["port"] == 5353


def test_entrypoint_is_the_gslb_console_script() -> None:
    final = _final()
    assert [json.loads(a) for a in final.all("ENTRYPOINT")] == [["gslb"]]
    assert [json.loads(a) for a in final.all("CMD")] == [["serve"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gslb"] == "app.cli:main"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/")) for p in prefixes
        ):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_nothing_local() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for args in _stages(DOCKERFILE.read_text())[0].all("COPY"):
        for source in args.split()[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} missing"
            assert not _ignored(source.rstrip("/"), patterns), f"{source} is excluded by .dockerignore"
    assert not _ignored("app/cli.py", patterns)
    for local in (
        ".venv/bin/python",
        ".git/config",
        "tests/test_dockerfile.py",
        ".gslb-data/gslb.db",
        "app/__pycache__/cli.cpython-312.pyc",
        "chart/values.yaml",
    ):
        assert _ignored(local, patterns), f"{local} would be sent to the build"
