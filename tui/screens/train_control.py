"""The Train screen's control of a run: whether the config can start one, starting and resuming
it (the calls its launch workers make, each giving the message the worker posts back) and the
question `x` asks before stopping it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.message import Message

from tui import engine_client
from tui.config_edits import first_problem
from tui.widgets.modals import Choice, ChoiceModal

__all__ = [
    "RunLaunched",
    "RunStartFailed",
    "resume_message",
    "start_message",
    "start_refusal",
    "stop_modal",
]


class RunStartFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RunLaunched(Message):
    def __init__(self, run_dir: Path, resumed: bool = False) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.resumed = resumed


def start_refusal(state: Any) -> str | None:
    """Why the app's config cannot start a run (its error, a broken rule, none loaded), or None."""
    cfg = getattr(state, "config", None)
    error = getattr(state, "config_error", None) or first_problem(cfg)
    if error or cfg is None:
        return error or "no config is loaded (open or create one on the Config screen)"
    return None


def start_message(cfg: Any, template_text: str | None, base: Any) -> RunLaunched | RunStartFailed:
    """Starts a run of `cfg` (its file written from `template_text`); any failure is a message
    for the user, never a crash."""
    try:
        run_dir = engine_client.start_run(cfg, template_text, base)
    except Exception as exc:  # shown to the user, never a crash
        return RunStartFailed(f"{type(exc).__name__}: {exc}")
    return RunLaunched(run_dir)


def resume_message(run_dir: Path) -> RunLaunched | RunStartFailed:
    """Resumes the run from its latest checkpoint; any failure is a message for the user."""
    try:
        engine_client.resume_run(run_dir)
    except Exception as exc:  # shown to the user, never a crash
        return RunStartFailed(f"{type(exc).__name__}: {exc}")
    return RunLaunched(run_dir, resumed=True)


def stop_modal(name: str) -> ChoiceModal:
    """`x`'s question; answers "stop" or "cancel"."""
    return ChoiceModal(
        "Stop the run?",
        Text(
            f"{name} finishes its current step, saves a checkpoint and stops. "
            "It can be resumed later."
        ),
        [Choice("stop", "Stop and save", variant="error"), Choice("cancel", "Cancel")],
        default="stop",
        cancel="cancel",
    )
