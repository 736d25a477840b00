"""The code is ruff- and mypy-clean, and the upstream data the tests rely on is what its SOURCES say."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, PROJECT_DIR

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", "."]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_upstream_test_data_matches_its_recorded_digest() -> None:
    rows = re.findall(r"\| `([^`]+)` \|[^|]+\| `([0-9a-f]{64})` \|", (DATA / "SOURCES.md").read_text())
    assert rows
    for name, digest in rows:
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_ci_runs_the_readme_test_command() -> None:
    """The README promises one command that runs all tests; CI must run that very command."""
    ci = (PROJECT_DIR / ".ci" / "run").read_text().splitlines()[-1]
    readme = (PROJECT_DIR / "README.md").read_text()
    commands = re.findall(r"```sh\n(.+)\n```", readme)
    assert len(commands) >= 2
    assert ci == commands[1]
    assert commands[0].endswith(".venv/bin/clustermesh plan --stack dev --out plan")
