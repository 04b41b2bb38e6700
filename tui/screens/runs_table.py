"""The Runs table and the lines around it: the table widget, its cells (status colours, numbers
right-aligned, the mark), the head line (how many runs, where, how many live), the detail line
of the run under the cursor, and the question `d` asks before deleting."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from engine.runs import RunInfo
from tui.runs_index import fmt_step
from tui.widgets.folder_picker import display_path
from tui.widgets.modals import Choice, ChoiceModal

__all__ = ["RunsTable", "cell", "delete_modal", "detail_text", "head_text", "mark_cell"]

STATE_STYLE = {
    "live": "bold green",
    "completed": "cyan",
    "stopped": "yellow",
    "failed": "bold red",
    "crashed": "bold red",
}
RIGHT = {"Step", "Loss", "Duration"}


class RunsTable(DataTable):
    BINDINGS = [
        Binding(
            "enter",
            "select_cursor",
            "Attach",
            id="runs.attach",
            tooltip="Follow this run on the Train screen (its whole history, then live)",
        ),
    ]


def cell(column: str, value: str) -> Text:
    """One table cell: a status in its colour, numbers to the right."""
    style = STATE_STYLE.get(value, "") if column == "Status" else ""
    return Text(value, style=style, justify="right" if column in RIGHT else "left")


def mark_cell(marked: bool) -> Text:
    """The first column: a dot on a marked run."""
    return Text("●" if marked else " ", style="bold magenta")


def head_text(runs: list[RunInfo], output_dir: Path) -> Text:
    """The line above the table: how many runs, in which folder, how many live."""
    head = Text()
    head.append(f"{len(runs)} run{'s' if len(runs) != 1 else ''}", "bold")
    head.append(" in ")
    head.append(display_path(output_dir))
    live = sum(1 for r in runs if r.live)
    if live:
        head.append(f" · {live} live", "bold green")
    if not runs:
        head.append("\nno runs yet: start one on the Train screen (3)", "dim")
    return head


def detail_text(info: RunInfo | None) -> Text:
    """The line below the table: the run's folder, its method, its error."""
    detail = Text()
    if info is not None:
        detail.append(display_path(info.run_dir), "dim")
        if info.method:
            detail.append(f" · {info.method}")
        if info.error:
            detail.append("\n")
            detail.append(info.error, "red")
    return detail


def delete_modal(info: RunInfo) -> ChoiceModal:
    """`d`'s question; answers "delete" or "cancel"."""
    return ChoiceModal(
        "Delete run",
        Text.assemble(
            "Delete ",
            (info.run_id, "bold"),
            f" ({info.state}, step {fmt_step(info)})?\n",
            "Its folder goes: checkpoints, samples, final model and all.",
        ),
        [
            Choice("delete", "Delete", "y", "error"),
            Choice("cancel", "Cancel", "n"),
        ],
        default="delete",
        cancel="cancel",
    )
