"""Snapshots of the Train and Generate screens at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic: the run is synthetic (EventWriter at fixed timestamps, small PNG samples), the
images are drawn in half-cells, nothing shows wall-clock time, no input has the focus (no
blinking cursor). Update with `pytest tests/test_tui_snapshots_b.py --snapshot-update` and look
at the SVGs before committing them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tui_synthetic import write_finished_run, write_generate_output

import tui.screens.generate as generate_screen
from engine.config import parse_config_text
from tui.app import DreamBoothApp
from tui.state import AppState
from tui.widgets.image_grid import ImageGrid, ImageItem

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny
SIZES = [(80, 24), (120, 40)]


async def settle(pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            break
        await pilot.pause(0.05)
    assert predicate(), "the screen did not settle"
    await pilot.pause(0.4)  # one more redraw tick, then nothing changes


def make_app(tmp_path: Path, run_dir: Path) -> DreamBoothApp:
    text = DEMO.read_text(encoding="utf-8")
    cfg, _ = parse_config_text(text, "demo.yaml", overrides={"train": {"output_dir": "runs"}})
    state = AppState(output_dir=tmp_path / "runs", image_protocol="halfcell")
    state.set_config(cfg, text)
    state.output_dir = tmp_path / "runs"
    state.run_dir = run_dir
    return DreamBoothApp(state)


@pytest.fixture(autouse=True)
def fixed_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    monkeypatch.setattr(generate_screen, "history_path", lambda: tmp_path / "history.json")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_screen_finished_run(snap_compare, tmp_path, size) -> None:
    run_dir = write_finished_run(tmp_path / "runs", total=40, error=True)
    app = make_app(tmp_path, run_dir)

    async def run_before(pilot) -> None:
        await pilot.press("3")
        screen = pilot.app.screen

        def ready() -> bool:
            grid = screen.query_one("#samples", ImageGrid)
            return (
                screen.model is not None
                and screen.model.status == "completed"
                and len(grid.tiles) == 2
                and all(t.loaded for t in grid.tiles)
            )

        await settle(pilot, ready)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_generate_screen_with_images(snap_compare, tmp_path, size) -> None:
    run_dir = write_finished_run(tmp_path / "runs", total=40)
    (run_dir / "final").mkdir()
    out = write_generate_output(run_dir / "generated" / "fixed", n=3)
    items = [ImageItem(p, f"seed {i} · [bold red]x[/] a photo of sks shape")
             for i, p in enumerate(sorted(out.glob("*.png")))]  # fmt: skip
    app = make_app(tmp_path, run_dir)

    async def run_before(pilot) -> None:
        await pilot.press("4")
        grid = pilot.app.screen.query_one("#images", ImageGrid)
        grid.add_images(items)  # as the sample events would, one after another
        await settle(pilot, lambda: len(grid.tiles) == 3 and all(t.loaded for t in grid.tiles))

    assert snap_compare(app, terminal_size=size, run_before=run_before)
