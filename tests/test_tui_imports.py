"""Importing every tui module loads no ML library: the app starts instantly."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import tui

HEAVY = ("torch", "diffusers", "transformers", "accelerate", "datasets", "peft")
ROOT = Path(__file__).resolve().parent.parent


def _tui_modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages(tui.__path__, prefix="tui.") if not m.ispkg
    ) + ["tui", "tui.screens", "tui.widgets"]


def test_every_tui_module_imports_without_ml_libraries():
    modules = _tui_modules()
    assert {
        "tui.app",
        "tui.screens.data",
        "tui.screens.config",
        "tui.screens.runs",
        "tui.widgets.config_form",
        "tui.widgets.folder_picker",
    } <= set(modules)
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
