"""Text that was cut at 80 columns: the large image's path, the Generate done line's folder,
the model picker's typed sources. Each keeps the part that tells the user what it is."""

from __future__ import annotations

import pytest
from conftest_tui import (
    screen_text,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
)
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


async def test_the_generate_done_line_keeps_the_images_folder_at_80_columns(tmp_path):
    """The line a finished request leaves names the folder the images went to; at 80 columns
    the line wrapped onto a second row the status has no room for, so the folder vanished."""
    from test_tui_generate import demo_state

    from tui.screens.generate import GenerateScreen
    from tui.screens.generate_follow import GenDone

    out_dir = tmp_path / "a-project-folder" / "runs" / "20240101-000000-sks-shape" / "generated"
    out_dir = out_dir / "20261129-203655"
    app = DreamBoothApp(demo_state(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, GenerateScreen)
        screen.out_dir, screen.made = out_dir, 2
        screen.post_message(GenDone(out_dir, "completed"))
        await pilot.pause(0.2)
        shown = screen_text(app)
        assert "2 image(s) in" in shown
        assert "/generated/20261129-203655" in shown, shown


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_the_typed_model_choices_show_whole_in_the_picker(tmp_path, size):
    """The model picker's typed sources share their row with the fields they open; their
    labels were cut ('hub id or local folder (type', 'LoRA file on a base model (type')."""
    from test_tui_generate import demo_state
    from textual.widgets import Select

    from tui.generate_request import SOURCE_CUSTOM, SOURCE_LORA, model_choices

    labels = dict((value, label) for label, value in model_choices(None))
    app = DreamBoothApp(demo_state(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        select = app.screen.query_one("#model-source", Select)
        for source in (SOURCE_CUSTOM, SOURCE_LORA):
            select.value = source
            await pilot.pause(0.1)
            row = screen_text(app).split("model", 1)[1]
            assert labels[source] in row, (labels[source], row[:120])


async def test_the_push_dataset_dry_run_option_shows_whole_at_80_columns():
    """A checkbox's label does not wrap: the dry run's said 'upload' where it ended at 80."""
    from textual.app import App
    from textual.widgets import Checkbox

    from tui.screens.data_push import push_modal

    modal = push_modal("my-cat", "")
    app = App()
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(modal)
        await pilot.pause()
        label = str(modal.query_one(Checkbox).label)
        assert label.startswith("Dry run") and "nothing" in label  # says what it does
        assert label in screen_text(app)


CRASHED = (
    "crashed at step 40: the engine ended without a word (killed: most often by the kernel's "
    "out-of-memory killer when the machine's RAM ran out; `dmesg` says so); free host memory "
    "or use a smaller train.resolution or train.train_batch_size, then resume (it continues "
    "from the last checkpoint)"
)


async def test_a_runs_error_shows_to_its_fix_at_80_columns(tui_env):
    """The Runs detail line gave a run's error two rows at 80 columns: a crashed run's line
    stopped at '`dmesg` says', before the fix it names (free memory, a smaller batch, resume)."""
    from conftest_tui import BASE_TIME, make_app, make_fake_run

    make_fake_run(tui_env / "runs", "20250102-040405-crashme", started=BASE_TIME,
                  status="failed", error=CRASHED)  # fmt: skip
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: "crashme · full" in screen_text(app), what="the detail")
        shown = screen_text(app)
        assert "train_batch_size" in shown and "checkpoint)" in shown, shown
