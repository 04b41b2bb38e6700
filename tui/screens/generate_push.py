"""Pushing a run's model to the Hub from the Generate screen: the command, its result message and
the two dialogs (which repository, then push for real after the dry run)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual.message import Message

from engine.redact import redact
from engine.sources import repo_id_error
from tui import engine_client
from tui.child_process import run_polled
from tui.widgets.modals import Choice, ChoiceModal, PromptModal

__all__ = [
    "PushResult",
    "confirm_modal",
    "push_command",
    "push_status",
    "repo_modal",
    "run_push",
]


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


def run_push(
    run_dir: Path, repo: str, private: bool, dry_run: bool, cancelled: Callable[[], bool]
) -> PushResult | None:
    """Run `push-model` (in a worker thread) and return the message to post: its exit code and
    output, tokens masked; None when `cancelled()` (the app quits) stopped it first."""
    cmd = push_command(run_dir, repo, private, dry_run)
    try:  # polled: quitting the app stops the upload instead of waiting up to an hour for it
        code, output = run_polled(cmd, cancelled, env=engine_client.engine_env(), timeout_s=3600)
        output = redact(output.strip())  # the engine masks tokens too; never show one
    except OSError as exc:
        output, code = str(exc), 1
    if cancelled():
        return None
    return PushResult(repo, private, dry_run, code, output)


def push_status(message: PushResult) -> tuple[Text, str | None]:
    """The status line after a `push-model` run, and the error to show (None: none): failed
    with its last line, pushed, or the dry run done (its listing goes to confirm_modal)."""
    if message.returncode != 0:
        last = next((ln for ln in reversed(message.output.splitlines()) if ln.strip()), "failed")
        verb = f"push-model{' --dry-run' if message.dry_run else ''}"
        return Text("push failed", style="red"), f"{verb}: {last}"
    if not message.dry_run:
        return Text(f"pushed to {message.repo}", style="bold green"), None
    return Text(f"dry run done for {message.repo}"), None


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
