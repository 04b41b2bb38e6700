"""Pushing a run's model to the Hub from the Generate screen: the command, its result message and
the two dialogs (which repository, then push for real after the dry run)."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.text import Text
from textual.message import Message

from engine.sources import repo_id_error
from tui.widgets.modals import Choice, ChoiceModal, PromptModal

__all__ = ["PushResult", "confirm_modal", "push_command", "repo_modal"]


class PushResult(Message):
    def __init__(self, repo: str, private: bool, dry_run: bool, returncode: int, output: str):
        super().__init__()
        self.repo = repo
        self.private = private
        self.dry_run = dry_run
        self.returncode = returncode
        self.output = output


def push_command(run_dir: Path, repo: str, private: bool, dry_run: bool) -> list[str]:
    """`python -m engine push-model RUN REPO [--private] [--dry-run]`."""
    cmd = [sys.executable, "-m", "engine", "push-model", str(run_dir), repo]
    if private:
        cmd.append("--private")
    if dry_run:
        cmd.append("--dry-run")
    return cmd


def repo_modal(run_name: str, repo: str, private: bool) -> PromptModal:
    """Asks the repository id (and private or not) before the dry run."""
    return PromptModal(
        "Push the model to the Hub",
        f"Repository id for {run_name} (user/name). A dry run shows what would be uploaded first.",
        value=repo,
        placeholder="user/my-dreambooth-model",
        option="Private repository",
        option_value=private,
        validate=repo_id_error,
        submit_label="Dry run",
    )


def confirm_modal(repo: str, lines: list[str]) -> ChoiceModal:
    """Shows what the dry run would upload (its last 25 lines); answers "push" or "cancel"."""
    listing = "\n".join(lines[-25:]) or "(nothing listed)"
    return ChoiceModal(
        f"Push to {repo}?",
        Text(f"The dry run would upload:\n{listing}"),
        [
            Choice("push", "Push for real", key="p", variant="warning"),
            Choice("cancel", "Cancel", key="c"),
        ],
        default="cancel",
        cancel="cancel",
    )
