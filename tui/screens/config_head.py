"""The lines above the Config form: the file (modified, invalid fields), what the run will do,
whether it fits this machine's GPU (the line `check` prints: engine.fit), and whether its paths
are there."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message

from engine.config import ConfigError, summary
from tui.state import DEFAULT_CONFIG
from tui.widgets.folder_picker import display_path

__all__ = ["GpuFound", "file_line", "fit_line", "paths_line", "summary_line"]


def file_line(state: Any, invalid: int) -> Text:
    """The config's file (or that it is new), modified, and how many fields are invalid."""
    head = Text()
    if state.config_path is not None:
        head.append(display_path(state.config_path), style="bold")
    elif state.config is not None:
        head.append(f"new config (ctrl+s saves it as ./{DEFAULT_CONFIG})", style="bold")
    if state.modified:
        head.append("  modified", style="yellow")
    if invalid:
        head.append(f"  {invalid} invalid field{'s' if invalid > 1 else ''}", style="bold red")
    return head


def summary_line(state: Any) -> Text:
    """What the run will do (engine.config.summary), or why the config did not load."""
    line = Text()
    if state.config is not None:
        from engine.families import known_family  # a local read: resolves aspect_buckets auto

        train = state.config.train
        family = known_family(train.model, train.revision)
        line.append(summary(state.config, state.num_images, family))
    elif state.config_error:
        line.append(state.config_error, style="bold red")
    return line


class GpuFound(Message):
    """NVML's answer (engine.fit.this_gpu, in a worker thread): the GPU, or None."""

    def __init__(self, gpu: Any) -> None:
        super().__init__()
        self.gpu = gpu


FIT_STYLES = {"fits": "green", "tight": "yellow", "too big": "bold red"}


def fit_line(state: Any) -> Text:
    """The estimate of the run's peak GPU memory against this machine's GPU, and its time
    (engine.fit: the line `check` prints); nothing before the GPU lookup has answered. The
    model's counts are read once per model folder (engine.estimate.cached_counts)."""
    if state.config is None or not state.gpu_checked:
        return Text()
    from engine.fit import fit

    result = fit(state.config, state.gpu)
    return Text(result.line, style=FIT_STYLES.get(result.verdict, "dim"))


def paths_line(state: Any, error: ConfigError | None) -> Text | str:
    """The paths check's problem, "paths ok", or nothing without a config."""
    if state.config is None:
        return ""
    if error is not None:
        return Text(str(error), style="yellow")
    return Text("paths ok", style="dim")
