"""The Prometheus alert rules for the runbook's thresholds, checked and unit-tested by promtool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


@pytest.mark.parametrize(
    "command", [["check", "rules", "chat-alerts.yml"], ["test", "rules", "chat-alerts.test.yml"]]
)
def test_promtool_accepts_and_passes_the_rules(command: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed; run `make test` (it installs Debian's prometheus)")
    done = subprocess.run(
        [promtool, *command], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
