"""The Data previews and the Train samples grow with the terminal, by the sizing rule the
Generate grid uses (tui.widgets.tile_size.grow_rows)."""

from __future__ import annotations

import pytest
from conftest_tui import make_app as make_project_app
from conftest_tui import (
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from test_tui_snapshots_b import make_app as make_run_app
from tui_synthetic import write_finished_run

from engine.tiny import write_images
from tui.widgets.image_grid import ImageGrid
from tui.widgets.thumbnail_grid import Thumbnail
from tui.widgets.tile_size import grow_rows

SIZES = [(80, 24), (120, 40), (180, 50)]  # the old samples grid stopped at 8 rows


async def _data_preview_size(project, size: tuple[int, int]) -> tuple[int, int]:
    app = make_project_app(write_demo_config(project, instance_data="./photos"))
    async with app.run_test(size=size) as pilot:
        await pilot.press("1")
        await wait_for(pilot, lambda: len(app.screen.query(Thumbnail)) >= 3, 60, "previews")
        await settle(pilot)
        image = app.screen.query(".thumb-image").first()
        return image.size.width, image.size.height


async def test_data_previews_grow_with_the_terminal(tui_env):
    write_images(tui_env / "photos")
    small = await _data_preview_size(tui_env, (80, 24))
    large = await _data_preview_size(tui_env, (120, 40))
    assert small == (14, 7)  # the least (the size they always had)
    assert large[1] > small[1] and large[0] == 2 * large[1], (small, large)


def _train_app(tmp_path):
    run_dir = write_finished_run(tmp_path / "runs", total=40, error=True)
    return make_run_app(tmp_path, run_dir)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_train_samples_fill_their_panel_as_generate_does(tmp_path, monkeypatch, size):
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    app = _train_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("3")
        grid = app.screen.query_one("#samples", ImageGrid)
        await wait_for(pilot, lambda: len(grid.tiles) == 2, 60, "two samples")
        await settle(pilot)
        width, height = grid.content_size
        assert grid.rows == grow_rows(2, width, height, 1, 40) == grid.tiles[0].rows
