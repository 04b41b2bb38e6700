"""The app shell: title, start-up focus, mode keys, the keys screen, the command palette,
attaching to a live run at start, and quitting while a run is live."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_tui import (
    BASE_TIME,
    make_app,
    make_fake_run,
    make_live_run,
    notifications,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from textual.widgets import DataTable, Input

from tui.widgets.modals import ChoiceModal, KeysModal, PickModal


async def test_opens_titled_with_no_input_focused_and_modes_on_number_keys(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.title == "dreambooth-tui"
        assert app.current_mode == "data"
        assert not isinstance(app.focused, Input)
        for key, mode in (
            ("2", "config"),
            ("3", "train"),
            ("4", "generate"),
            ("5", "runs"),
            ("1", "data"),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode, key
            assert not isinstance(app.focused, Input), mode
            assert app.sub_title == mode.capitalize()


async def test_opens_on_config_without_a_config(tui_env):
    app = make_app(None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.state.config is None
        assert app.current_mode == "config"
        assert not isinstance(app.focused, Input)


async def test_demo_says_what_it_is(tui_env):
    app = make_app(write_demo_config(tui_env), demo=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: notifications(app), what="the notification")
        assert any("tiny model" in m for m in notifications(app))
        assert app.current_mode == "data"


async def test_current_mode_key_is_hidden(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        active = {b.binding.id for b in app.screen.active_bindings.values()}
        assert "app.mode.data" not in active  # already there
        assert {"app.mode.config", "app.mode.runs", "app.quit", "app.help"} <= active
        await pilot.press("5")
        await pilot.pause()
        active = {b.binding.id for b in app.screen.active_bindings.values()}
        assert "app.mode.runs" not in active and "app.mode.data" in active


def test_every_binding_has_an_id_and_a_tooltip():
    from tui.app import DreamBoothApp
    from tui.screens.config import ConfigScreen
    from tui.screens.data import DataScreen
    from tui.screens.runs import RunsScreen, RunsTable
    from tui.widgets.folder_picker import FolderTree, PathInput
    from tui.widgets.modals import ChoiceModal, KeysModal, PickModal, PromptModal

    classes = (
        DreamBoothApp,
        DataScreen,
        ConfigScreen,
        RunsScreen,
        RunsTable,
        FolderTree,
        PathInput,
        ChoiceModal,
        PromptModal,
        PickModal,
        KeysModal,
    )
    ids = []
    for cls in classes:
        for binding in cls.BINDINGS:
            assert binding.id, (cls.__name__, binding)
            assert binding.tooltip, (cls.__name__, binding)
            ids.append(binding.id)
    mode_ids = [i for i in ids if i.startswith("app.mode.")]
    assert mode_ids == [f"app.mode.{m}" for m in ("data", "config", "train", "generate", "runs")]


async def test_question_mark_lists_the_keys_with_what_they_do(tui_env):
    make_fake_run(tui_env / "runs", "20250102-030405-done")
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, KeysModal)
        table = app.screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        by_desc = {row[1]: row for row in rows}
        assert "Quit" in by_desc and "Keys" in by_desc and "Delete" in by_desc
        assert by_desc["Delete"][0] == "d"
        assert "asks first" in by_desc["Delete"][2]  # the tooltip
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, KeysModal)
        assert app.current_mode == "runs"


async def test_command_palette_switches_screen(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Runs screen")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "runs", what="runs mode")
        # a command that acts on another screen: opens the sample list on Config
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Load sample config")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PickModal), what="the samples")
        assert app.current_mode == "config"


async def test_live_run_is_attached_at_start_with_a_notification(tui_env):
    runs = tui_env / "runs"
    make_fake_run(runs, "20250102-030405-old", started=BASE_TIME)
    live_dir, lock = make_live_run(runs, "20250102-040405-live", started=BASE_TIME + 3600)
    other_dir, other_lock = make_live_run(runs, "20250102-050405-other", started=BASE_TIME + 60)
    try:
        app = make_app(write_demo_config(tui_env))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "train", what="train mode")
            assert app.state.run_dir == live_dir  # the newest live run
            await wait_for(pilot, lambda: len(notifications(app)) >= 2, what="notifications")
            messages = notifications(app)
            assert "Attached to live run 20250102-040405-live" in messages
            assert "1 more live run in Runs (5)" in messages
    finally:
        lock.release()
        other_lock.release()


async def test_quit_without_a_live_run_exits_at_once(tui_env):
    make_fake_run(tui_env / "runs", "20250102-030405-done")
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("q")
        await wait_for(
            pilot, lambda: app._exit_renderables is not None or not app.is_running, what="exit"
        )
    assert app.return_code == 0


async def test_quit_with_a_live_run_asks_leave_stop_or_cancel(tui_env, monkeypatch):
    live_dir, lock = make_live_run(tui_env / "runs", "20250102-040405-live")
    stopped: list[Path] = []
    monkeypatch.setattr("tui.app.stop_run", lambda run_dir, **kw: stopped.append(Path(run_dir)))
    try:
        # cancel: the app stays
        app = make_app(write_demo_config(tui_env))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "train", what="attach")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="modal")
            labels = [str(b.label) for b in app.screen.query("Button")]
            assert labels == ["Leave it running (l)", "Stop and save (s)", "Cancel (c)"]
            assert app.focused.id == "choice-leave"  # Enter leaves it running
            await pilot.press("c")
            await pilot.pause()
            assert not isinstance(app.screen, ChoiceModal)
            assert app.is_running
            # stop and save
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="modal")
            await pilot.press("s")
            await pilot.pause()
        assert stopped == [live_dir]
        assert "asked to stop" in app.return_value

        # Enter: leave it running
        app = make_app(write_demo_config(tui_env))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "train", what="attach")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="modal")
            await pilot.press("enter")
            await pilot.pause()
        assert stopped == [live_dir]  # not stopped again
        assert "still training" in app.return_value
    finally:
        lock.release()


async def test_reopening_finds_the_config_last_used_here(tui_env):
    # after `demo`: its dreambooth-demo.yaml opens, not "No config yet"
    demo = write_demo_config(tui_env, name="dreambooth-demo.yaml")
    app = make_app(None)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.state.config_path == Path("dreambooth-demo.yaml")
        assert app.state.config is not None and app.current_mode != "config"
    # a config saved under another name is the one last worked with: it opens next time
    other = write_demo_config(tui_env, name="mine.yaml")
    app = make_app(other)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "form", None) is not None)
        app.state.modified = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
    demo.touch()
    app = make_app(None)
    assert app.state.config_path.resolve() == other.resolve()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_keys_list_shows_every_tooltip_whole(tui_env, size):
    from rich.cells import cell_len

    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, KeysModal), what="the keys")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        # no column runs off the dialog's right edge ...
        assert table.virtual_size.width <= table.scrollable_content_region.width
        more = table.ordered_columns[2]
        for i in range(table.row_count):
            tooltip = str(table.get_row_at(i)[2])
            height = table.ordered_rows[i].height
            # ... and a long tooltip wraps onto as many lines as it needs
            assert height * more.width >= cell_len(tooltip), (tooltip, height, more.width)


async def test_first_frame_heap_is_frozen_out_of_the_collector_until_exit(tui_env):
    import gc

    frozen_before = gc.get_freeze_count()
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: gc.get_freeze_count() > frozen_before, what="the heap frozen")
        # The widgets of the first frame are among the frozen objects: a full collection
        # (4 of them while re-attaching to 100,000 events) does not scan them.
        assert gc.get_freeze_count() > frozen_before + 1000
    assert gc.get_freeze_count() == 0  # given back at exit: the ended app can be collected
