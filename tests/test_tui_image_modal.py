"""The large image (o on the Train and Generate screens) at 80 columns: its path ends in the
file's name, the part that tells which image it is, so that is the part that stays."""

from __future__ import annotations

from conftest_tui import screen_text, wait_for
from tui_synthetic import write_finished_run

from tui.app import DreamBoothApp
from tui.state import AppState
from tui.widgets.image_grid import ImageModal


async def test_a_long_path_keeps_the_file_name_at_80_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    runs = tmp_path / "a-project-folder-with-a-long-name" / "runs"
    run_dir = write_finished_run(runs, name="20240101-000000-a-photo-of-sks-shape", total=40)
    state = AppState(output_dir=runs, run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ImageModal), 5, "the large image")
        path = app.screen.item.path
        assert len(str(path)) > 80  # longer than the terminal is wide
        await pilot.pause()
        shown = screen_text(app)
        assert f"/{path.parent.name}/{path.name}" in shown, shown
