"""The checkout itself: what git must never pick up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", ["venv/bin/python", ".venv/bin/python", "runs/x/run.json"])
def test_virtual_environments_and_runs_are_ignored(path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, capture_output=True
    )
    assert out.returncode == 0, f"{path} is not in .gitignore"
