"""Pushing the Data screen's folder to the Hub as a dataset: the command, the dialog asking the
repo id, and the push itself as the messages its worker sends back (each line, then the end)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from engine.sources import repo_id_error

if TYPE_CHECKING:
    from tui.widgets.modals import PromptModal

__all__ = ["PushFinished", "PushOutput", "push_command", "push_messages", "push_modal"]


class PushOutput(Message):
    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class PushFinished(Message):
    def __init__(self, returncode: int, repo_id: str, dry_run: bool) -> None:
        super().__init__()
        self.returncode = returncode
        self.repo_id = repo_id
        self.dry_run = dry_run


def push_command(folder: Path, repo_id: str, dry_run: bool) -> list[str]:
    """`python -m engine push-dataset FOLDER REPO_ID [--dry-run]`."""
    cmd = [sys.executable, "-m", "engine", "push-dataset", str(folder), repo_id]
    if dry_run:
        cmd.append("--dry-run")
    return cmd


def push_messages(folder: Path, repo_id: str, dry_run: bool) -> Iterator[PushOutput | PushFinished]:
    """Runs the push: the command line, each line it prints, then how it ended."""
    cmd = push_command(folder, repo_id, dry_run)
    yield PushOutput("$ dreambooth-tui " + " ".join(cmd[3:]))
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        yield PushOutput(f"could not start: {exc}")
        yield PushFinished(1, repo_id, dry_run)
        return
    assert proc.stdout is not None
    for line in proc.stdout:
        yield PushOutput(line.rstrip("\n"))
    yield PushFinished(proc.wait(), repo_id, dry_run)


def push_modal(folder_name: str, default: str) -> PromptModal:
    """Asks the repo id (dry run ticked); answers (repo_id, dry_run) or None."""
    from tui.widgets.modals import PromptModal  # here: not before the first frame

    return PromptModal(
        "Push the folder to the Hub as a dataset",
        f"Repo id for {folder_name}:",
        value=default,
        placeholder="owner/name",
        option="Dry run: upload nothing, write the files into a folder",
        option_value=True,
        validate=repo_id_error,
        submit_label="Push",
    )
