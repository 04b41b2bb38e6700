"""The Runs screen, driven by keys: the table newest first, marking and overlaying loss curves,
delete after a confirmation, attach with Enter, resume."""

from __future__ import annotations

from pathlib import Path

from conftest_tui import (
    BASE_TIME,
    make_app,
    make_fake_run,
    make_live_run,
    screen_text,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
)

from tui.screens.runs import RunsScreen, RunsTable
from tui.widgets.loss_plot import LossPlot
from tui.widgets.modals import ChoiceModal

OLD = "20250102-030405-a-photo-of-sks-shape"
NEW = "20250102-040405-a-photo-of-sks-shape"


def _two_runs(project: Path) -> tuple[Path, Path]:
    runs = project / "runs"
    old = make_fake_run(runs, OLD, started=BASE_TIME, steps=20)
    new = make_fake_run(runs, NEW, started=BASE_TIME + 3600, steps=12, status="stopped", loss0=0.7)
    return old, new


async def _open_runs(pilot, rows: int) -> tuple[RunsScreen, RunsTable]:
    await pilot.press("5")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the Runs screen")
    table = app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} rows")
    return app.screen, table


def _cells(table: RunsTable, row: int) -> list[str]:
    return [str(c) for c in table.get_row_at(row)]


async def test_table_lists_runs_newest_first(tui_env):
    _two_runs(tui_env)
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await _open_runs(pilot, 2)
        first, second = _cells(table, 0), _cells(table, 1)
        assert first[1:] == [NEW, "stopped", "12/20", first[4], "2025-01-02 04:04", "1m 35s"]
        assert second[1:4] == [OLD, "completed", "20/20"]
        assert second[5] == "2025-01-02 03:04"
        assert float(first[4]) > 0  # the last loss
        assert app.focused is table
        # r only for a run that can be resumed: the stopped one, not the completed one
        ids = {b.binding.id for b in screen.active_bindings.values()}
        assert "runs.resume" in ids and "runs.overlay" not in ids
        await pilot.press("down")
        await pilot.pause()
        ids = {b.binding.id for b in screen.active_bindings.values()}
        assert "runs.resume" not in ids


async def test_mark_two_runs_and_overlay_their_loss_curves(tui_env):
    _two_runs(tui_env)
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await _open_runs(pilot, 2)
        plot = screen.query_one("#runs-plot", LossPlot)
        assert not plot.display
        await pilot.press("space")  # marks the first and moves down
        await pilot.pause()
        assert "runs.overlay" not in {b.binding.id for b in screen.active_bindings.values()}
        await pilot.press("space")
        await pilot.pause()
        assert _cells(table, 0)[0] == "●" and _cells(table, 1)[0] == "●"
        await pilot.press("o")
        await wait_for(pilot, lambda: plot.display, what="the plot")
        assert set(plot.series_names) == {OLD, NEW}
        assert len(plot.points(OLD)) == 20 and len(plot.points(NEW)) == 12
        assert plot.points(OLD)[0][0] == 1
        # the table refresh (every 2 s) keeps the marks
        screen.refresh_runs()
        await settle(pilot)
        assert _cells(table, 0)[0] == "●"
        await pilot.press("escape")
        await pilot.pause()
        assert not plot.display


async def test_delete_asks_first_then_removes_the_run(tui_env):
    old, new = _two_runs(tui_env)
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await _open_runs(pilot, 2)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("n")  # no
        await pilot.pause()
        assert new.is_dir() and table.row_count == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1, what="the refresh")
        assert not new.exists() and old.is_dir()
        assert _cells(table, 0)[1] == OLD


async def test_live_run_cannot_be_deleted(tui_env):
    live_dir, lock = make_live_run(tui_env / "runs", "20250102-050405-live")
    try:
        app = make_app(None)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "train", what="attach")
            screen, table = await _open_runs(pilot, 1)
            assert _cells(table, 0)[2] == "live"
            ids = {b.binding.id for b in screen.active_bindings.values()}
            assert "runs.delete" not in ids and "runs.resume" not in ids
            await pilot.press("d")
            await pilot.pause()
            assert not isinstance(app.screen, ChoiceModal) and live_dir.is_dir()
    finally:
        lock.release()


async def test_enter_attaches_the_run_on_the_train_screen(tui_env):
    old, new = _two_runs(tui_env)
    app = make_app(None)
    attached = []
    async with app.run_test(size=(120, 40), message_hook=attached.append) as pilot:
        await _open_runs(pilot, 2)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.current_mode == "train", what="the Train screen")
        assert app.state.run_dir == old
        from tui.state import RunAttached

        assert any(isinstance(m, RunAttached) and m.run_dir == old for m in attached)


async def test_r_resumes_a_stopped_run_and_attaches_it(tui_env, monkeypatch):
    old, new = _two_runs(tui_env)
    resumed: list[Path] = []
    monkeypatch.setattr("tui.engine_client.resume_run", lambda run_dir: resumed.append(run_dir))
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_runs(pilot, 2)
        await pilot.press("r")  # the first row: the stopped run
        await wait_for(pilot, lambda: app.current_mode == "train", what="the Train screen")
        assert resumed == [new]
        assert app.state.run_dir == new


async def test_runs_table_at_80_columns_keeps_run_ids_whole_and_drops_columns(tui_env):
    runs = tui_env / "runs"
    long_id = "20250102-030405-a-photo-of-sks-shape-long-name"
    make_fake_run(runs, long_id, started=BASE_TIME, steps=20)
    make_fake_run(runs, "20250102-040405-b", started=BASE_TIME + 60, steps=3, status="stopped")
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        _, table = await _open_runs(pilot, 2)
        await settle(pilot)
        labels = [str(c.label) for c in table.ordered_columns]
        widths = sum(c.get_render_width(table) for c in table.ordered_columns)
        assert widths <= table.scrollable_content_region.width, labels  # nothing cut off
        assert "Started (UTC)" not in labels and labels[:4] == ["", "Run", "Status", "Step"]
        assert long_id in [_cells(table, r)[1] for r in range(2)]
        await pilot.resize_terminal(140, 40)
        await wait_for(pilot, lambda: len(table.ordered_columns) == 7, what="all columns")


async def test_runs_footer_at_80_columns_shows_every_key_whole(tui_env):
    from textual.widgets._footer import FooterKey

    _two_runs(tui_env)
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _ = await _open_runs(pilot, 2)
        await settle(pilot)

        def cut_keys() -> list[str]:
            keys = [k for k in screen.query(FooterKey) if k.display]
            palette = [k for k in keys if k.has_class("-command-palette")]
            right = palette[0].region.x if palette else screen.size.width
            shown = {k.description: k.region for k in keys if k not in palette}
            assert {"Attach", "Delete", "Keys", "Quit"} <= set(shown), set(shown)
            return [name for name, region in shown.items() if region.right > right or not region]

        assert not cut_keys()
        await pilot.press("space", "down", "space", "o")  # the plot open: its keys too
        await wait_for(pilot, lambda: screen.query_one("#runs-plot").display, what="the plot")
        await settle(pilot)
        assert not cut_keys()


async def test_deleting_the_attached_run_lets_go_of_it(tui_env):
    """The Train screen kept showing a deleted run ('not updating: cannot read the run') and
    the Generate picker offered no run model; now Train is idle and Generate offers the newest
    run that is left."""
    from textual.widgets import Select

    old, new = _two_runs(tui_env)
    (old / "final").mkdir()
    (new / "checkpoints" / "step-000012").mkdir(parents=True)
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await _open_runs(pilot, 2)
        await pilot.press("enter")  # attach the newest: the Train screen follows it
        await wait_for(pilot, lambda: app.current_mode == "train", what="the Train screen")
        train = app.screen
        await wait_for(pilot, lambda: train.follower is not None, what="the run followed")
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen is screen, what="the Runs screen")
        table.move_cursor(row=0)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1, what="the refresh")
        assert not new.exists()
        await pilot.press("3")
        await wait_for(pilot, lambda: app.screen is train, what="the Train screen")
        await pilot.pause()
        assert train.follower is None and train.query_one("#idle").display
        await pilot.press("4")
        picker = app.screen.query_one("#model-source", Select)
        await wait_for(pilot, lambda: picker.value == "final", what="the old run's model")
        assert f"final model · {OLD[:15]}" in screen_text(app)
