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
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from engine.runs import CRASH_HINT
from tui import engine_client
from tui.config_edits import first_problem
from tui.engine_client import RunModel, fmt_duration, points_after
from tui.follower import Batch, RunFollower, apply_batch, follow_loop, launched_process
from tui.state import RunAttached
from tui.widgets import plot_data
from tui.widgets.gpu_meter import GpuMeter
from tui.widgets.image_grid import ImageGrid, ImageItem
from tui.widgets.log_view import LogView
from tui.widgets.loss_plot import LossPlot, fmt_value
from tui.widgets.modals import Choice, ChoiceModal

__all__ = ["EventsArrived", "RunStartFailed", "TrainScreen", "config_summary"]

POLL_S = 0.2  # how often the tail worker looks for new events
REDRAW_S = 0.25  # how often the widgets are redrawn from the model (when changed)
# The two plots cost most of a redraw (benchmarks/bench_tui.py): while a run streams steps they
# are redrawn at most this often; the labels and the progress bar keep the 4 Hz.
PLOT_REDRAW_S = 1.0
SAMPLE_TILES = 4

STATUS_STYLES = {
    "live": "bold green",
    "starting": "bold green",
    "stopping": "bold yellow",
    "completed": "bold dodger_blue1",
    "stopped": "bold yellow",
    "failed": "bold red",
    "crashed": "bold red",
    "waiting": "dim",
}


class EventsArrived(Message):
    """A batch read from a run by the tail worker (events, engine state, a read error)."""

    def __init__(self, follower: RunFollower, batch: Batch) -> None:
        super().__init__()
        self.follower = follower
        self.run_dir = follower.run_dir
        self.batch = batch
        self.events = batch.events


class RunStartFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RunLaunched(Message):
    def __init__(self, run_dir: Path, resumed: bool = False) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.resumed = resumed


def config_summary(state: Any) -> Text:
    """What `s` would start: the config's essentials, literal."""
    text = Text()
    cfg = getattr(state, "config", None)
    path = getattr(state, "config_path", None)
    error = getattr(state, "config_error", None)
    text.append("Config  ", style="bold")
    text.append(str(path) if path else "(not saved to a file)", style="")
    text.append("\n")
    if error:
        text.append("\n" + str(error) + "\n", style="red")
    if cfg is None:
        text.append("\nNo config loaded: open one on the Config screen (2).\n", style="yellow")
        return text
    t, e = cfg.train, cfg.evaluation
    rows = [
        ("model", str(t.model)),
        ("data", str(t.instance_data)),
        ("prompt", str(t.instance_prompt)),
        ("method", f"{t.method}" + (f" (rank {t.lora_rank})" if t.method == "lora" else "")),
        (
            "steps",
            f"{t.max_train_steps} × batch {t.train_batch_size}×{t.gradient_accumulation_steps}"
            f" · lr {fmt_value(float(t.learning_rate))} · precision {t.mixed_precision}",
        ),
        (
            "samples",
            f"every {t.validation_steps} steps · {len(e.prompts)} prompt(s) × {e.num_images}",
        ),
        ("output", str(t.output_dir)),
    ]
    for label, value in rows:
        text.append(f"\n{label:<9}", style="dim")
        text.append(value)
    return text


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
        self._log_seen = 0
        self._samples_seen = 0
        self._drawn_status: str | None = None
        self._starting = False
        self._plotted_rev = -1
        self._drawn_at = 0.0
        self._plotted_model: RunModel | None = None
        self._plotted_step: dict[str, int | None] = {}

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="idle"):
            yield Static(id="config-summary", markup=False)
            yield Static(
                Text.assemble(("press ", "dim"), ("s", "bold"), (" to start a run", "dim")),
                id="start-hint",
            )
        with Vertical(id="attached"):
            with Horizontal(id="status-row"):
                yield Static(id="run-title", markup=False)
                yield Static(id="run-status", markup=False)
            with Horizontal(id="progress-row"):
                yield Static("step 0/?", id="step-label", markup=False)
                yield ProgressBar(id="progress", show_eta=False)
                yield Static(id="rate", markup=False)
            yield Static(id="errors", markup=False)
            with Horizontal(id="main-row"):
                with Vertical(id="plots"):
                    yield LossPlot(id="loss-plot", empty="waiting for the first step…")
                    yield LossPlot(id="lr-plot", smoothing=None, empty="")
                with Vertical(id="side"):
                    yield GpuMeter(id="gpu-meter")
                    yield ImageGrid(
                        id="samples",
                        rows=8,
                        max_images=SAMPLE_TILES,
                        caption_lines=1,
                        fit_height=True,
                        empty="samples appear here",
                    )
            yield LogView(id="log")
        yield Footer()

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
        self._log_seen = 0
        self._samples_seen = 0
        self._drawn_status = None
        self.query_one("#idle").display = False
        self.query_one("#attached").display = True
        self.query_one("#run-title", Static).update(Text(run_dir.name, style="bold"))
        self._reset_widgets()
        self._tail(self.follower)
        self.refresh_bindings()

    def _reset_widgets(self) -> None:
        self._drawn_version = -1
        self._plots_version = -1
        self._log_seen = 0
        self._samples_seen = 0
        self.query_one("#loss-plot", LossPlot).clear()
        self.query_one("#lr-plot", LossPlot).clear()
        self.query_one("#log", LogView).clear()
        self.query_one("#samples", ImageGrid).clear()
        self.query_one("#samples", ImageGrid).border_title = "samples"
        self.query_one("#gpu-meter", GpuMeter).update_values()

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
                self._draw(model)
            if plots_due:
                self._draw_plots(model)

    def _draw_plots(self, model: RunModel) -> None:
        self._plots_version = model.version
        # An empty plot does not count: the first points (a re-attached history) show at once.
        self._plots_drawn_at = time.monotonic() if model.losses else -PLOT_REDRAW_S
        # Only the points added since the last redraw go to the plots (their smoothing and
        # ranges are incremental); a resume that took points back replaces the curves.
        fresh = model.history_rev != self._plotted_rev or self._plotted_model is not model
        for plot_id, name, points in (
            ("#loss-plot", "loss", model.losses),
            ("#lr-plot", "lr", model.lrs),
        ):
            plot = self.query_one(plot_id, LossPlot)
            if fresh:
                plot.set_series(name, points, refresh=True)
            else:
                plot.add_points(
                    points_after(points, self._plotted_step.get(name)), name, refresh=True
                )
            self._plotted_step[name] = points[-1][0] if points else None
        self._plotted_rev, self._plotted_model = model.history_rev, model

    def _draw(self, model: RunModel) -> None:
        status = model.display_status
        status_text = Text(status, style=STATUS_STYLES.get(status, ""))
        if model.phase and status in ("live", "starting", "stopping"):
            status_text.append(f"  · {model.phase}", style="")
            if model.phase_detail:
                status_text.append(f" ({model.phase_detail})", style="dim")
        if model.device:
            status_text.append(f"  · {model.device.get('kind', '')}", style="dim")
        if model.follow_error:
            status_text.append("  · not updating: cannot read the run", style="bold red")
        # Labels of a fixed width repaint without a layout pass; the step label is as wide as its
        # text, so only a change of length needs one.
        self.query_one("#run-status", Static).update(status_text, layout=False)
        step_label = self.query_one("#step-label", Static)
        previous = len(str(step_label.render()))
        text = Text(model.progress_text, style="bold")
        step_label.update(text, layout=len(text) != previous)
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=model.total_steps, progress=model.step)
        rate = Text(no_wrap=True, overflow="ellipsis")  # loss first: in 80 columns it shows
        if model.loss is not None:
            rate.append(f"loss {fmt_value(model.loss)}")
        if model.eta_s is not None and status == "live":
            rate.append(("  · " if rate else "") + f"ETA {fmt_duration(model.eta_s)}")
        if model.it_s is not None:
            rate.append(("  · " if rate else "") + f"{model.it_s:.2f} it/s")
        if model.finished and model.finished.get("duration_s") is not None:
            rate.append(
                ("  · " if rate else "") + f"took {fmt_duration(model.finished['duration_s'])}"
            )
        self.query_one("#rate", Static).update(rate, layout=False)
        self.query_one("#gpu-meter", GpuMeter).update_values(model.device, model.mem, model.gpu)
        self._draw_errors(model)
        self._draw_log(model)
        self._draw_samples(model)
        if status != self._drawn_status:
            self._drawn_status = status
            self.refresh_bindings()

    def _draw_errors(self, model: RunModel) -> None:
        panel = self.query_one("#errors", Static)
        text = Text()
        if model.follow_error:
            text.append("cannot read the run: ", style="bold")
            text.append(model.follow_error)
        if not model.errors and model.display_status == "crashed" and model.status == "running":
            if text:  # it ran, then vanished without `finished`: killed
                text.append("\n")
            text.append(f"crashed at step {model.step}: ", style="bold")
            text.append(CRASH_HINT)
        if not model.errors and model.display_status == "crashed" and model.engine_log:
            if text:
                text.append("\n")
            text.append("the engine exited", style="bold")
            text.append(" before its first event" if model.status == "waiting" else "")
            text.append("; the end of engine.log:\n", style="bold")
            text.append("\n".join(model.engine_log[-6:]))
        if not model.errors and not text:
            panel.display = False
            return
        if text and model.errors:
            text.append("\n")
        for i, err in enumerate(model.errors[-3:]):
            if i:
                text.append("\n")
            text.append(f"{err.kind} error: ", style="bold")
            text.append(err.message)
            if err.hint:
                text.append("\n→ ", style="bold")
                text.append(err.hint)
        panel.update(text)
        panel.display = True

    def _draw_log(self, model: RunModel) -> None:
        new = model.log_count - self._log_seen
        if new <= 0:
            return
        self._log_seen = model.log_count
        lines = list(model.log)[-min(new, len(model.log)) :]
        self.query_one("#log", LogView).add_lines(lines)

    def _draw_samples(self, model: RunModel) -> None:
        if len(model.samples) == self._samples_seen:
            return
        self._samples_seen = len(model.samples)
        newest_step = model.samples[-1].step
        items: list[ImageItem] = []
        for sample in model.samples:
            if sample.step != newest_step:
                continue
            for path in sample.paths:
                items.append(ImageItem(path, sample.prompt))
        self.query_one("#samples", ImageGrid).set_images(items[-SAMPLE_TILES:])
        grid = self.query_one("#samples", ImageGrid)
        grid.border_title = Text(f"samples · step {newest_step}")

    @on(ImageGrid.Changed)
    def _grid_changed(self) -> None:
        self.refresh_bindings()

    # -- actions --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        model = self.model
        live = model is not None and model.is_live
        if action == "start":
            return not live and not self._starting
        if action == "stop":
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
        cfg = getattr(state, "config", None)
        error = getattr(state, "config_error", None) or first_problem(cfg)
        if error or cfg is None:
            problem = error or "no config is loaded (open or create one on the Config screen)"
            self.notify(f"Cannot start: {problem}", title="Config", severity="error", markup=False)
            return
        self._starting = True
        self.refresh_bindings()
        self.notify("Starting the engine…", title="Train")
        self._launch(cfg, getattr(state, "config_text", None))

    @work(thread=True, group="train-launch", exit_on_error=False)
    def _launch(self, cfg: Any, template_text: str | None) -> None:
        try:
            base = getattr(getattr(self.app, "state", None), "base_dir", None)
            run_dir = engine_client.start_run(cfg, template_text, base)
        except Exception as exc:  # shown to the user, never a crash
            self.post_message(RunStartFailed(f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(RunLaunched(run_dir))

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
        self.app.push_screen(
            ChoiceModal(
                "Stop the run?",
                Text(
                    f"{name} finishes its current step, saves a checkpoint and stops. "
                    "It can be resumed later."
                ),
                [Choice("stop", "Stop and save", variant="error"), Choice("cancel", "Cancel")],
                default="stop",
                cancel="cancel",
            ),
            self._stop_answered,
        )

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

    def action_resume(self) -> None:
        if self.run_dir is None:
            return
        self._resume(self.run_dir)

    @work(thread=True, group="train-launch", exit_on_error=False)
    def _resume(self, run_dir: Path) -> None:
        try:
            engine_client.resume_run(run_dir)
        except Exception as exc:
            self.post_message(RunStartFailed(f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(RunLaunched(run_dir, resumed=True))

    def action_open_sample(self) -> None:
        self.query_one("#samples", ImageGrid).open_selected()
