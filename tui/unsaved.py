"""Quitting with work not saved: a data folder picked but not used, or config edits not
written to the file. The app asks before they are lost: save (using the picked folder), quit
without saving, or stay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.state import DEFAULT_CONFIG, AppState


def unsaved_lines(state: AppState) -> list[str]:
    """What would be lost on quitting now, one line each (empty: nothing)."""
    lines = []
    if state.config is not None and state.picked_data is not None:
        lines.append(
            f"The folder picked on Data ({state.picked_data}) is not the training data yet "
            f"(train.instance_data is {state.config.train.instance_data})."
        )
    if state.config is not None and state.modified:
        lines.append("The config has changes that are not saved to its file.")
    return lines


def save_all(state: AppState) -> Path:
    """Use the picked folder as train.instance_data and save the config (keeping comments)."""
    from engine.config import save_config
    from tui import recent

    assert state.config is not None
    if state.picked_data is not None:
        train = state.config.train.model_copy(update={"instance_data": state.picked_data})
        state.change_config(state.config.model_copy(update={"train": train}))
        state.picked_data = None
    path = state.config_path or Path(DEFAULT_CONFIG)
    save_config(state.config, path, template_text=state.config_text)
    state.config_path, state.config_text = path, path.read_text(encoding="utf-8")
    state.modified = False
    recent.remember(path)
    return path


def ask_before_quitting(app: Any, then: Callable[[], Any]) -> bool:
    """Ask about unsaved work (True: a question is up, `then` runs unless cancelled); False
    when there is nothing to lose."""
    lines = unsaved_lines(app.state)
    if not lines:
        return False
    from tui.widgets.modals import Choice, ChoiceModal

    def answered(choice: str | None) -> None:
        if choice == "save":
            from tui.screens.config_io import why_not_saved

            # what ctrl+s refuses (a rule between keys: the file would not load again)
            refusal = why_not_saved(app.state.config, app.state.config_error, {})
            if refusal:
                app.notify(
                    f"Not saved: {refusal}; fix it on Config (2), or quit without saving",
                    title="Config",
                    severity="error",
                    markup=False,
                )
                return
            try:
                path = save_all(app.state)
            except OSError as exc:
                app.notify(f"Not saved: {exc}", title="Config", severity="error", markup=False)
                return
            app.notify(f"Saved {path}", title="Config", markup=False)
        if choice in ("save", "discard"):
            app.call_later(then)

    app.push_screen(
        ChoiceModal(
            "Unsaved changes",
            "\n".join(lines),
            [
                Choice("save", "Save and quit", "s", "primary"),
                Choice("discard", "Quit without saving", "d", "warning"),
                Choice("cancel", "Cancel", "c"),
            ],
            default="save",
            cancel="cancel",
        ),
        answered,
    )
    return True
