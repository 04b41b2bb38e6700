"""Following one Generate request: its events.jsonl (images as they are written) and the warm
worker's answers (tui/generate_worker.py), turned into the screen's messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.message import Message

from engine.events import EVENTS_FILE, EventTail
from tui import engine_client
from tui.generate_worker import GenerateWorker

POLL_S = 0.2
CANCEL_GRACE_S = 5.0  # a cancel not answered by then (a model still loading): the worker goes


class GenEvents(Message):
    def __init__(self, out_dir: Path, events: list[dict[str, Any]]) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.events = events


class GenNote(Message):
    """A worker message about the request (`loading`, `loaded`)."""

    def __init__(self, out_dir: Path, note: dict[str, Any]) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.note = note


class GenDone(Message):
    """The request ended: status `completed`, `stopped` or `failed` (`error`: one line, or
    `log`: the last lines of a worker that exited without answering)."""

    def __init__(self, out_dir: Path, status: str, error: str = "", log: list[str] | None = None):
        super().__init__()
        self.out_dir = out_dir
        self.status = status
        self.error = error
        self.log = log or []


def error_line(error: dict[str, Any]) -> str:
    """A `done` message's error as the screen shows it: `kind: message`, the hint below."""
    line = f"{error.get('kind', 'error')}: {error.get('message', '')}"
    return line + (f"\n→ {error['hint']}" if error.get("hint") else "")


def follow_request(
    worker: GenerateWorker,
    request_id: int,
    out_dir: Path,
    post: Callable[[Message], Any],
    cancelled: Callable[[], bool],
    cancel_deadline: Callable[[], float | None],
) -> None:
    """Post GenEvents as images are written, GenNote on a load, GenDone at the end (the
    worker's `done`, or its exit). Runs in a thread until then or `cancelled()` (the app quits).
    A cancel still unanswered at `cancel_deadline()` ends the worker: it was loading."""
    tail = EventTail(out_dir / EVENTS_FILE)
    done: GenDone | None = None
    while done is None and not cancelled():
        message = worker.next_message(POLL_S)
        events = tail.poll()
        if events:
            post(GenEvents(out_dir, events))
        if message is None or message.get("id") != request_id:
            deadline = cancel_deadline()
            if deadline is not None and time.monotonic() > deadline:
                worker.stop()
            continue
        kind = message.get("type")
        if kind in ("loading", "loaded"):
            post(GenNote(out_dir, message))
        elif kind == "done":
            error = message.get("error")
            done = GenDone(out_dir, str(message.get("status")), error_line(error) if error else "")
        elif kind == "exit" and cancel_deadline() is not None:
            done = GenDone(out_dir, "stopped")
        elif kind == "exit":
            log = engine_client.log_tail(out_dir / engine_client.GENERATE_LOG)
            log += list(worker.stderr_tail)
            code = message.get("code")
            done = GenDone(out_dir, "failed", f"the generator exited (code {code})", log)
    if done is not None:
        events = tail.poll()
        if events:
            post(GenEvents(out_dir, events))
        post(done)
