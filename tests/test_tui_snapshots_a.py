"""Snapshots of the Data, Config and Runs screens at 80x24 and 120x40.

Deterministic content: fixed fake runs with fixed timestamps (no clock-dependent text), images
drawn as half-cells, a fixed project folder name, and every worker done before the picture.
Update with `pytest tests/test_tui_snapshots_a.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

import pytest
from conftest_tui import (
    BASE_TIME,
    make_app,
    make_fake_run,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)

from engine.tiny import write_images
from tui.widgets.thumbnail_grid import Thumbnail

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


def _project(folder):
    photos = folder / "photos"
    write_images(photos)
    (photos / "bad.png").write_bytes(b"not an image")
    return write_demo_config(folder, instance_data="./photos")


async def _data_checked(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, what="check")
    await wait_for(pilot, lambda: len(app.screen.query(Thumbnail)) == 7, what="thumbnails")
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_data_screen(snap_compare, tui_env, size):
    app = make_app(_project(tui_env))
    assert snap_compare(app, terminal_size=size, run_before=_data_checked)


@pytest.mark.parametrize("size", SIZES)
def test_config_screen(snap_compare, tui_env, size):
    app = make_app(_project(tui_env))

    async def run_before(pilot) -> None:
        await _data_checked(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "form", None) is not None)
        await wait_for(pilot, lambda: app.screen.form.ready, timeout=60, what="the form")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, tui_env, size):
    runs = tui_env / "runs"
    make_fake_run(runs, "20250102-030405-a-photo-of-sks-shape", started=BASE_TIME)
    make_fake_run(
        runs,
        "20250102-040405-[bold]lora-test",
        started=BASE_TIME + 3600,
        steps=12,
        status="stopped",
        loss0=0.7,
    )
    make_fake_run(
        runs,
        "20250102-050405-oom",
        started=BASE_TIME + 7200,
        steps=3,
        status="failed",
        error="CUDA out of memory: try gradient_checkpointing",
    )
    app = make_app(None)

    async def run_before(pilot) -> None:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "runs")
        table = app.screen.query_one("#runs-table")
        await wait_for(pilot, lambda: table.row_count == 3, what="the runs")
        await pilot.press("down", "space", "space", "o")
        await wait_for(pilot, lambda: app.screen.query_one("#runs-plot").display, what="plot")
        await pilot.press("up")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
