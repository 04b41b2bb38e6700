"""What the Train screen shows, through the real app: a synthetic finished run (progress,
errors, log, samples from step 0 beside the newest), a config that cannot start, and the status
line at 80 columns."""

from __future__ import annotations

from pathlib import Path

from conftest_tui import wait_for
from textual.widgets import ProgressBar
from trainscreenhelpers import shown_keys, static_text, train_screen
from tui_synthetic import TRICKY_PROMPT, write_finished_run

from engine.events import EVENTS_FILE, EventWriter
from tui.app import DreamBoothApp
from tui.state import AppState
from tui.widgets.image_grid import ImageGrid, ImageModal
from tui.widgets.log_view import LogView
from tui.widgets.loss_plot import LossPlot


async def test_samples_from_step_0_stay_beside_the_newest_as_before(tmp_path, monkeypatch):
    """validation_at_start: the panel shows what the model drew before the run next to what it
    draws now (the title says the steps), each tile saying which, its prompt still literal."""
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir = write_finished_run(tmp_path / "runs", total=40, before=True)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        grid = screen.query_one("#samples", ImageGrid)
        await wait_for(pilot, lambda: screen.model and screen.model.status == "completed", 5, "")
        await wait_for(pilot, lambda: len(grid.tiles) == 4, 10, "four sample tiles")
        assert str(grid.border_title) == "samples · step 0 → 40"
        captions = [static_text(t, ".caption") for t in grid.tiles]
        assert captions == [f"before · {TRICKY_PROMPT}"] * 2 + [f"now · {TRICKY_PROMPT}"] * 2
        shown = [str(item.path) for item in grid.items]
        assert [Path(p).parent.name for p in shown] == ["step-000000"] * 2 + ["step-000040"] * 2


async def test_finished_run_shows_progress_errors_log_and_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir = write_finished_run(tmp_path / "runs", total=40, error=True)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        grid = screen.query_one("#samples", ImageGrid)
        await wait_for(pilot, lambda: screen.model and screen.model.status == "completed", 5, "")
        await wait_for(pilot, lambda: len(grid.tiles) == 2 and all(t.loaded for t in grid.tiles),
                       10, "both sample images")  # fmt: skip
        assert static_text(screen, "#step-label") == "step 40/40"
        assert "completed" in static_text(screen, "#run-status")
        assert screen.query_one(ProgressBar).percentage == 1.0
        errors = static_text(screen, "#errors")
        assert "CUDA out of memory [tried to allocate 2.00 GiB]" in errors
        assert "gradient_checkpointing" in errors  # the hint
        assert screen.query_one("#errors").display
        log = "\n".join(screen.query_one(LogView).plain_lines())
        # the CLI's lines for samples, checkpoints and the end; the prompt literal, not markup
        assert f"samples at step 40: 2 image(s) for {TRICKY_PROMPT!r}" in log
        assert "checkpoint checkpoints/step-000040" in log
        assert "completed at step 40 in 12s; model: final" in log
        assert "removed old checkpoint" not in log  # debug-level housekeeping: hidden
        assert str(grid.border_title) == "samples · step 40"
        captions = [static_text(t, ".caption") for t in grid.tiles]
        assert captions == [TRICKY_PROMPT, TRICKY_PROMPT]
        assert len(screen.query_one("#loss-plot", LossPlot).points("loss")) == 40
        assert len(screen.query_one("#lr-plot", LossPlot).points("lr")) == 40
        keys = shown_keys(screen)
        assert "train.stop" not in keys and "train.resume" not in keys
        assert {"train.start", "train.open_sample"} <= keys

        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ImageModal), 5, "the large image")
        assert app.screen.item.caption == TRICKY_PROMPT
        await wait_for(pilot, lambda: app.screen.query("#big-image"), 5, "the decoded image")
        await pilot.press("escape")
        assert app.screen is screen


async def test_start_refuses_an_invalid_config_naming_the_problem(tmp_path):
    state = AppState(output_dir=tmp_path / "runs")
    state.config_error = "dreambooth.yaml: train.learning_rate: must be > 0 (got -1)"
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        assert "train.learning_rate" in static_text(screen, "#config-summary")
        await pilot.press("s")
        await pilot.pause(0.2)
        messages = [str(n.message) for n in app._notifications]
        assert any("Cannot start" in m and "train.learning_rate" in m for m in messages), messages
        # a Toast renders str messages only (a Text crashes it in a real terminal)
        assert all(isinstance(n.message, str) for n in app._notifications)
        assert not (tmp_path / "runs").exists()
        assert screen.run_dir is None


async def test_status_line_keeps_the_loss_at_80_columns(tmp_path, monkeypatch):
    from conftest_tui import make_live_run

    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir, lock = make_live_run(tmp_path / "runs", "20250102-040405-live")
    with EventWriter(run_dir / EVENTS_FILE) as writer:  # a step with a long ETA, still live
        writer.emit(
            "run_started", run_id=run_dir.name, config={}, total_steps=400,
            device={"kind": "cpu", "name": "cpu", "total_mem": 0}, resumed_from_step=None,
            world_size=1,
        )  # fmt: skip
        writer.emit(
            "step", step=120, loss=0.123456, lr=1e-4, grad_norm=1.0, it_s=0.35, samples_s=0.35,
            eta_s=7530.0, mem={"allocated": 0, "reserved": 0, "peak": 0},
        )  # fmt: skip
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            screen = train_screen(app)
            await wait_for(pilot, lambda: screen.model and screen.model.step == 120, 5, "step 120")
            await pilot.pause(0.5)
            rate = screen.query_one("#rate")
            line = rate.render_lines(rate.region.reset_offset)[0]
            shown = "".join(seg.text for seg in line)
            assert "ETA" in shown and "loss 0.1235" in shown, shown
    finally:
        lock.release()


async def test_status_line_keeps_a_finished_runs_time_at_80_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir = write_finished_run(tmp_path / "runs", total=200)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        await wait_for(pilot, lambda: screen.model and screen.model.finished, 5, "the end")
        await pilot.pause(0.5)
        rate = screen.query_one("#rate")
        shown = "".join(seg.text for seg in rate.render_lines(rate.region.reset_offset)[0])
        assert "loss " in shown and "took 12s" in shown, shown
