"""The Train screen, driven by keys through the real app: a real engine run on the tiny model
(start, watch, leave it running, re-attach from a new app, stop). What it shows for finished
runs and bad configs is in test_tui_train_display.py, a fast event stream in _stream.py."""

from __future__ import annotations

import re
import time

from conftest_tui import wait_for
from textual.widgets import ProgressBar
from trainscreenhelpers import (  # noqa: F401 - the fixture `engines`
    demo_state,
    engines_fixture,
    shown_keys,
    static_text,
    train_screen,
)

from engine.events import EVENTS_FILE, read_events
from engine.runs import is_locked, pid_alive, read_run_json
from tui.app import DreamBoothApp
from tui.screens.train import TrainScreen
from tui.widgets.gpu_meter import GpuMeter
from tui.widgets.image_grid import ImageGrid
from tui.widgets.loss_plot import LossPlot
from tui.widgets.modals import ChoiceModal


async def test_real_run_watch_leave_running_reattach_and_stop(tiny_dir, tmp_path, engines):
    runs = tmp_path / "runs"
    state = demo_state(runs, max_train_steps=400, validation_steps=4, checkpointing_steps=1000)
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        assert "press s to start" in static_text(screen, "#start-hint")
        assert "a photo of sks shape" in static_text(screen, "#config-summary")
        assert "train.start" in shown_keys(screen) and "train.stop" not in shown_keys(screen)

        await pilot.press("s")
        await wait_for(pilot, lambda: screen.run_dir is not None, 10, "the run directory")
        engines.append(screen.run_dir)
        assert any(screen.run_dir.name in str(n.message) for n in app._notifications)
        # a Toast renders str messages only (a Text crashes it in a real terminal)
        assert all(isinstance(n.message, str) for n in app._notifications)
        meter = screen.query_one(GpuMeter)
        assert "waiting" in meter.render().plain
        await wait_for(pilot, lambda: screen.model.step >= 2, 120, "the first steps")
        await wait_for(pilot, lambda: "live" in static_text(screen, "#run-status"), 5, "live")
        first = static_text(screen, "#step-label")
        assert re.fullmatch(r"step \d+/400", first), first
        plot = screen.query_one("#loss-plot", LossPlot)
        # the plots redraw at most once a second while steps stream: wait for the first draw
        await wait_for(pilot, lambda: len(plot.points("loss")) >= 1, 10, "the first loss points")
        first_points = len(plot.points("loss"))
        assert "RSS" in meter.render().plain and "MiB" in meter.render().plain
        assert "train.stop" in shown_keys(screen) and "train.start" not in shown_keys(screen)
        assert "it/s" in static_text(screen, "#rate") and "loss" in static_text(screen, "#rate")

        grid = screen.query_one("#samples", ImageGrid)
        await wait_for(
            pilot, lambda: any(t.loaded for t in grid.tiles), 90, "a sample image in the grid"
        )
        # samples come every 4 steps; a fast machine may already show a later one than step 4
        shown = re.search(r"samples · step (\d+)", str(grid.border_title))
        assert shown and int(shown.group(1)) % 4 == 0, grid.border_title
        later = static_text(screen, "#step-label")
        assert later != first  # the step moved on
        await wait_for(
            pilot, lambda: len(plot.points("loss")) > first_points, 10, "more loss points"
        )
        bar = screen.query_one(ProgressBar)  # redrawn at 4 Hz: it catches up with the model
        await wait_for(pilot, lambda: bar.progress == screen.model.step, 5, "the progress bar")
        run_dir = screen.run_dir
        step_at_quit = screen.model.step

        # Quit: a live run asks; Enter = "Leave it running" (the default).
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), 10, "the quit dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")

    pid = read_run_json(run_dir).get("pid")
    assert pid_alive(pid) and is_locked(run_dir), "the engine must outlive the app"
    n_events = len(read_events(run_dir / EVENTS_FILE))
    deadline = time.monotonic() + 30
    while len(read_events(run_dir / EVENTS_FILE)) <= n_events and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(read_events(run_dir / EVENTS_FILE)) > n_events, "the engine kept training"

    # A new app finds the live run, attaches at once and shows its whole history.
    app2 = DreamBoothApp(demo_state(runs))
    async with app2.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                isinstance(app2.screen, TrainScreen)
                and app2.screen.model is not None
                and app2.screen.model.step > step_at_quit
            ),
            60,
            "re-attaching to the live run",
        )
        screen = train_screen(app2)
        assert screen.run_dir == run_dir
        await wait_for(pilot, lambda: "live" in static_text(screen, "#run-status"), 5, "live")
        plot = screen.query_one("#loss-plot", LossPlot)
        await wait_for(
            pilot, lambda: len(plot.points("loss")) >= step_at_quit, 10, "the whole history"
        )
        plotted = plot.points("loss")
        steps = [int(s) for s, _ in plotted]
        assert steps[0] == 1 and steps == list(range(1, len(steps) + 1))  # from step 1, no gap
        assert len(steps) >= step_at_quit
        assert any("Attached to live run" in str(n.message) for n in app2._notifications)

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app2.screen, ChoiceModal), 10, "stop dialog")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "stopped" in static_text(screen, "#run-status"), 90, "stopped"
        )
        assert "train.resume" in shown_keys(screen) and "train.stop" not in shown_keys(screen)
        final_step = screen.model.step

    deadline = time.monotonic() + 30
    while is_locked(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_locked(run_dir)
    assert read_run_json(run_dir)["status"] == "stopped"
    events = read_events(run_dir / EVENTS_FILE)
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "stopped"
    assert events[-1]["step"] == final_step
    assert (run_dir / "checkpoints" / f"step-{final_step:06d}").is_dir()
