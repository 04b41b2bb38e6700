"""The three lines above the Config form: the file (modified, invalid fields), what the run will
do, and whether its paths are there."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from engine.config import ConfigError, summary
from tui.state import DEFAULT_CONFIG
from tui.widgets.folder_picker import display_path

__all__ = ["file_line", "paths_line", "summary_line"]


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


def paths_line(state: Any, error: ConfigError | None) -> Text | str:
    """The paths check's problem, "paths ok", or nothing without a config."""
    if state.config is None:
        return ""
    if error is not None:
        return Text(str(error), style="yellow")
    return Text("paths ok", style="dim")
