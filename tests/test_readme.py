"""The README documents every setting, exactly as the code defines it, and the two set-up commands."""

import re
from pathlib import Path

from app.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_settings_table_matches_code():
    text = README.read_text()
    block = re.search(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", text, re.S)
    assert block, "README lost its settings-table markers"
    assert block.group(1) == settings_table(), (
        "README settings table is stale; regenerate with: "
        ".venv/bin/python -c 'from app.settings import settings_table; print(settings_table())'"
    )


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/test" in ci
    assert "scripts/test    # run every test" in README.read_text()
