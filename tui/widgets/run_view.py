"""A followed run as the Train screen draws it: status, progress, errors, the loss and
learning-rate plots, memory, the newest samples and the log, redrawn from a RunModel."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from engine.runs import CRASH_HINT
from tui.run_model import RunModel, fmt_duration, points_after
from tui.widgets.gpu_meter import GpuMeter
from tui.widgets.image_grid import ImageGrid, ImageItem
from tui.widgets.log_view import LogView
from tui.widgets.loss_plot import LossPlot, fmt_value

__all__ = ["SAMPLE_TILES", "STATUS_STYLES", "RunView"]

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
    "loading": "dim",
}


class RunView(Vertical):
    """The attached run's widgets; the screen decides when to draw (draw / draw_plots)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._log_seen = 0
        self._samples_seen = 0
        self._plotted_rev = -1
        self._plotted_model: RunModel | None = None
        self._plotted_step: dict[str, int | None] = {}

    def compose(self) -> ComposeResult:
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
                    rows=40,
                    max_images=SAMPLE_TILES,
                    caption_lines=1,
                    grow=True,  # as large as the panel allows, as on Generate
                    empty="samples appear here",
                )
        yield LogView(id="log")

    def set_title(self, name: str) -> None:
        self.query_one("#run-title", Static).update(Text(name, style="bold"))

    def reset(self) -> None:
        """Empty widgets, for a run attached or an events file that started again."""
        self._log_seen = 0
        self._samples_seen = 0
        self.query_one("#loss-plot", LossPlot).clear()
        self.query_one("#lr-plot", LossPlot).clear()
        self.query_one("#log", LogView).clear()
        self.query_one("#samples", ImageGrid).clear()
        self.query_one("#samples", ImageGrid).border_title = "samples"
        self.query_one("#gpu-meter", GpuMeter).update_values()

    def draw_plots(self, model: RunModel) -> None:
        """The loss and learning-rate curves."""
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

    def draw(self, model: RunModel) -> str:
        """Everything but the plots; returns the status drawn."""
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
        if model.finished and model.finished.get("duration_s") is not None:
            # before the speed: a finished run's time is what 80 columns keep
            rate.append(
                ("  · " if rate else "") + f"took {fmt_duration(model.finished['duration_s'])}"
            )
        if model.it_s is not None:
            rate.append(("  · " if rate else "") + f"{model.it_s:.2f} it/s")
        self.query_one("#rate", Static).update(rate, layout=False)
        self.query_one("#gpu-meter", GpuMeter).update_values(model.device, model.mem, model.gpu)
        self._draw_errors(model)
        self._draw_log(model)
        self._draw_samples(model)
        return status

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
        newest = [(p, s.prompt) for s in model.samples if s.step == newest_step for p in s.paths]
        # validation_at_start: step 0's samples (what the model drew before) stay beside the
        # newest, so the run's learning shows at a glance
        before = [(p, s.prompt) for s in model.samples if s.step == 0 for p in s.paths]
        if before and newest_step:
            half = SAMPLE_TILES // 2
            items = [ImageItem(p, f"before · {t}") for p, t in before[:half]]
            items += [ImageItem(p, f"now · {t}") for p, t in newest[-half:]]
            title = f"samples · step 0 → {newest_step}"
        else:
            items = [ImageItem(p, t) for p, t in newest[-SAMPLE_TILES:]]
            title = f"samples · step {newest_step}"
        grid = self.query_one("#samples", ImageGrid)
        grid.set_images(items)
        grid.border_title = Text(title)
