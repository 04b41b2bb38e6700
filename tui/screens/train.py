"""Train: start a run, follow it live (or re-attach to one), stop it.

A thread worker tails RUN_DIR/events.jsonl (from the start, so re-attaching shows the whole
history) and hands each batch of parsed events to the screen as one `EventsArrived` message;
the screen folds them into a `RunModel` (cheap) and a 4 Hz timer redraws the widgets from it
inside `batch_update()`, only when something changed and only while the screen is visible.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from tui import engine_client
from tui.follower import Batch, RunFollower, apply_batch, follow_loop, launched_process
from tui.run_model import RunModel
from tui.screens.train_control import (
    RunLaunched,
    RunStartFailed,
    resume_message,
    start_message,
    start_refusal,
    stop_modal,
)
from tui.screens.train_sample import sample_answer, sample_now_dialog
from tui.screens.train_summary import config_summary
from tui.state import RunAttached
from tui.widgets import plot_data
from tui.widgets.fit_footer import FitFooter
from tui.widgets.image_grid import ImageGrid
from tui.widgets.run_view import RunView

__all__ = ["EventsArrived", "RunStartFailed", "TrainScreen", "config_summary"]

POLL_S = 0.2  # how often the tail worker looks for new events
REDRAW_S = 0.25  # how often the widgets are redrawn from the model (when changed)
# The two plots cost most of a redraw (benchmarks/bench_tui.py): while a run streams steps they
# are redrawn at most this often; the labels and the progress bar keep the 4 Hz.
PLOT_REDRAW_S = 1.0


class EventsArrived(Message):
    """A batch read from a run by the tail worker (events, engine state, a read error)."""

    def __init__(self, follower: RunFollower, batch: Batch) -> None:
        super().__init__()
        self.follower = follower
        self.run_dir = follower.run_dir
        self.batch = batch
        self.events = batch.events


class TrainScreen(Screen):
    CSS_PATH = "train.tcss"
    AUTO_FOCUS = None
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding(
            "s",
            "start",
            "Start",
            id="train.start",
            tooltip="Start a training run with the current config",
        ),
        Binding(
            "x",
            "stop",
            "Stop",
            id="train.stop",
            tooltip="Stop the run: it finishes the step, saves a checkpoint and exits",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            id="train.resume",
            tooltip="Resume this stopped or crashed run from its latest checkpoint",
        ),
        Binding(
            "n",
            "sample_now",
            "Sample now",
            id="train.sample_now",
            tooltip="Ask the running engine for samples at its next step, with a prompt of "
            "your choice; training goes on",
        ),
        Binding(
            "o",
            "open_sample",
            "Open sample",
            id="train.open_sample",
            tooltip="Show the newest sample image large",
        ),
    ]

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.follower: RunFollower | None = None
        self._drawn_version = -1
        self._plots_version = -1
        self._plots_drawn_at = -PLOT_REDRAW_S
        self._drawn_status: str | None = None
        self._starting = False
        self._drawn_at = 0.0

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="idle"):
            yield Static(id="config-summary", markup=False)
            yield Static(
                Text.assemble(("press ", "dim"), ("s", "bold"), (" to start a run", "dim")),
                id="start-hint",
            )
        yield RunView(id="attached")
        yield FitFooter()

    def on_mount(self) -> None:
        self.query_one("#loss-plot").border_title = "loss"
        self.query_one("#lr-plot").border_title = "learning rate"
        self.query_one("#gpu-meter").border_title = "memory"
        self.query_one("#samples").border_title = "samples"
        self.query_one("#log").border_title = "log"
        self.set_interval(REDRAW_S, self.redraw, name="train-redraw")
        self._show_idle()
        state = getattr(self.app, "state", None)
        run_dir = getattr(state, "run_dir", None)
        if run_dir:
            self.attach(Path(run_dir))

    def on_screen_resume(self) -> None:
        state = getattr(self.app, "state", None)
        run_dir = getattr(state, "run_dir", None)
        if run_dir and (self.follower is None or Path(run_dir) != self.follower.run_dir):
            self.attach(Path(run_dir))
        elif self.follower is not None and not self.follower.run_dir.exists():
            self.detach()  # its folder was deleted (Runs screen, d)
        elif self.follower is None:
            self._show_idle()
        self._drawn_version = -1  # redraw at once: the timer skipped while hidden
        self._plots_version = -1
        self.redraw()

    # -- attaching ------------------------------------------------------------------------------
    @property
    def model(self) -> RunModel | None:
        return self.follower.model if self.follower else None

    @property
    def run_dir(self) -> Path | None:
        return self.follower.run_dir if self.follower else None

    def on_run_attached(self, message: RunAttached) -> None:
        self.attach(Path(message.run_dir))

    def attach(self, run_dir: Path) -> None:
        """Follow `run_dir` from the start of its event stream (idempotent)."""
        run_dir = Path(run_dir)
        if self.follower is not None and self.follower.run_dir == run_dir:
            return
        self.follower = RunFollower(run_dir)
        self._drawn_version = -1
        self._plots_version = -1
        self._plots_drawn_at = -PLOT_REDRAW_S
        self._drawn_status = None
        self.query_one("#idle").display = False
        self.query_one("#attached").display = True
        self._view().set_title(run_dir.name)
        self._reset_widgets()
        self._tail(self.follower)
        self.refresh_bindings()

    def _view(self) -> RunView:
        return self.query_one("#attached", RunView)

    def _reset_widgets(self) -> None:
        self._drawn_version = -1
        self._plots_version = -1
        self._view().reset()

    def detach(self) -> None:
        self.workers.cancel_group(self, "train-tail")
        self.follower = None
        self._show_idle()
        self.refresh_bindings()

    def _show_idle(self) -> None:
        self.query_one("#attached").display = False
        self.query_one("#idle").display = True
        self.query_one("#config-summary", Static).update(
            config_summary(getattr(self.app, "state", None))
        )

    @work(thread=True, exclusive=True, group="train-tail", exit_on_error=False)
    def _tail(self, follower: RunFollower) -> None:
        worker = get_current_worker()
        plot_data.preload()  # numpy, for the plots: here rather than on the UI thread
        follow_loop(
            follower,
            lambda batch: self.post_message(EventsArrived(follower, batch)),
            lambda: worker.is_cancelled,
            poll_s=POLL_S,
        )

    @on(EventsArrived)
    def _on_events(self, message: EventsArrived) -> None:
        message.stop()
        try:
            if self.follower is not message.follower:
                return  # a batch from a run we no longer follow
            old_model = self.follower.model
            self.follower.behind = message.batch.behind
            apply_batch(self.follower, message.batch)
            if self.follower.model is not old_model:  # the events file started again
                self._reset_widgets()
        finally:
            message.follower.gate.release()  # the tail worker may read the next batch

    # -- drawing --------------------------------------------------------------------------------
    @property
    def visible_now(self) -> bool:
        """On screen: the current screen, or under a modal dialog on it."""
        if self.is_current:
            return True
        stack = self.app.screen_stack
        return self in stack and self.app.screen.is_modal

    def redraw(self) -> None:
        model = self.model
        if model is None or not self.visible_now:
            return
        changed = model.version != self._drawn_version
        now = time.monotonic()
        if self.follower is not None and self.follower.behind and now - self._drawn_at < 1.0:
            return  # a history streaming in: everything at most once a second until it is in
        # While the reader is behind (a re-attached history streaming in) the plots wait 1 s
        # between redraws too: the history is drawn once it is in, not 4 times a second.
        settled = not model.is_live and not (self.follower and self.follower.behind)
        plots_due = model.version != self._plots_version and (
            time.monotonic() - self._plots_drawn_at >= PLOT_REDRAW_S or settled
        )
        if not changed and not plots_due:
            return
        self._drawn_version = model.version
        self._drawn_at = now
        with self.app.batch_update():
            if changed:
                status = self._view().draw(model)
                if status != self._drawn_status:
                    self._drawn_status = status
                    self.refresh_bindings()
            if plots_due:
                self._plots_version = model.version
                # An empty plot does not count: a re-attached history's first points show at once.
                self._plots_drawn_at = time.monotonic() if model.losses else -PLOT_REDRAW_S
                self._view().draw_plots(model)

    @on(ImageGrid.Changed)
    def _grid_changed(self) -> None:
        self.refresh_bindings()

    # -- actions --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        model = self.model
        live = model is not None and model.is_live
        if action == "start":
            return not live and not self._starting
        if action in ("stop", "sample_now"):
            return live and not model.stopping  # type: ignore[union-attr]
        if action == "resume":
            return (
                model is not None
                and not live
                and model.display_status in ("stopped", "failed", "crashed")
            )
        if action == "open_sample":
            return model is not None and bool(model.samples)
        return True

    def action_start(self) -> None:
        state = getattr(self.app, "state", None)
        if (problem := start_refusal(state)) is not None:
            self.notify(f"Cannot start: {problem}", title="Config", severity="error", markup=False)
            return
        self._starting = True
        self.refresh_bindings()
        self.notify("Starting the engine…", title="Train")
        self._launch(state.config, getattr(state, "config_text", None))

    @work(thread=True, group="train-launch", exit_on_error=False)
    def _launch(self, cfg: Any, template_text: str | None) -> None:
        base = getattr(getattr(self.app, "state", None), "base_dir", None)
        self.post_message(start_message(cfg, template_text, base))

    @on(RunLaunched)
    def _on_launched(self, message: RunLaunched) -> None:
        self._starting = False
        verb = "Resumed" if message.resumed else "Started"
        self.notify(f"{verb} {message.run_dir.name}", title="Train", markup=False)
        attach = getattr(self.app, "attach_run", None)
        if callable(attach) and not message.resumed:
            try:  # the app records it as the followed run and shows this screen
                attach(message.run_dir, notify=False)
            except TypeError:
                attach(message.run_dir)
        self.attach(message.run_dir)
        if self.follower is not None:
            self.follower.process = launched_process(message.run_dir)
            if not message.resumed:
                self.follower.model.engine_alive = True  # the engine is starting: say so
        self.refresh_bindings()

    @on(RunStartFailed)
    def _on_start_failed(self, message: RunStartFailed) -> None:
        self._starting = False
        self.refresh_bindings()
        self.notify(message.error, title="Could not start", severity="error", markup=False)

    def action_stop(self) -> None:
        if self.model is None or not self.model.is_live:
            return
        name = self.run_dir.name if self.run_dir else "the run"
        self.app.push_screen(stop_modal(name), self._stop_answered)

    def _stop_answered(self, answer: str | None) -> None:
        if answer != "stop" or self.follower is None:
            return
        try:
            stopped = engine_client.stop_run(self.follower.run_dir)
        except engine_client.StopRefusedError as exc:  # could reach another process
            self.notify(str(exc), title="Train", severity="error", markup=False)
            return
        if stopped:
            self.follower.model.stopping = True
            self.follower.model.version += 1
            self.notify("Stopping: the engine saves a checkpoint first", title="Train")
        else:
            self.notify("The run is not live any more", title="Train", severity="warning")
        self.refresh_bindings()

    def action_sample_now(self) -> None:
        if self.model is None or not self.model.is_live or self.run_dir is None:
            return
        run_dir = self.run_dir
        self.app.push_screen(
            sample_now_dialog(self.model.config),
            lambda answer: answer is not None and self._ask_samples(run_dir, answer[0]),
        )

    @work(thread=True, group="train-sample", exit_on_error=False)
    def _ask_samples(self, run_dir: Path, prompt: str) -> None:
        # a file write: off the UI thread (the run folder may be on shared storage)
        said, severity = sample_answer(run_dir, prompt)
        self.app.call_from_thread(
            self.notify, said, title="Sample now", severity=severity, markup=False
        )

    def action_resume(self) -> None:
        if self.run_dir is None:
            return
        self._resume(self.run_dir)

    @work(thread=True, group="train-launch", exit_on_error=False)
    def _resume(self, run_dir: Path) -> None:
        self.post_message(resume_message(run_dir))

    def action_open_sample(self) -> None:
        self.query_one("#samples", ImageGrid).open_selected()
