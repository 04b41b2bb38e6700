"""Train screen test helpers: the demo's state on a runs folder, the screen and what it shows,
and the `engines` fixture (kills the engines a test started)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Static

from engine.config import parse_config_text
from engine.runs import is_locked, pid_alive, read_run_json
from tui.screens.train import TrainScreen
from tui.state import AppState

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny


def static_text(screen, selector: str) -> str:
    content = screen.query_one(selector, Static).render()
    return content.plain if isinstance(content, Text) else str(content)


def demo_state(runs: Path, **train) -> AppState:
    text = DEMO.read_text(encoding="utf-8")
    overrides = {"train": {"output_dir": str(runs), **train}}
    cfg, _ = parse_config_text(text, str(DEMO), overrides=overrides)
    state = AppState(config_path=DEMO, output_dir=runs, image_protocol="halfcell")
    state.set_config(cfg, text)
    return state


def train_screen(app) -> TrainScreen:
    screen = app.screen
    assert isinstance(screen, TrainScreen), type(screen)
    return screen


def shown_keys(screen) -> set[str]:
    return {b.binding.id for b in screen.active_bindings.values() if b.enabled and b.binding.id}


@pytest.fixture(name="engines")
def engines_fixture() -> Iterator[list[Path]]:
    """Run directories whose engines the test started: killed at the end if still live."""
    started: list[Path] = []
    yield started
    for run_dir in started:
        if is_locked(run_dir):
            pid = read_run_json(run_dir).get("pid")
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
