"""Following a run directory: what a worker thread reads, and how it hands it to the UI.

`RunFollower.read()` (worker thread) returns one `Batch`: the complete events added to
events.jsonl since the last call (runs of step events folded into plot points:
`tui.step_points`) and what is known about the engine (alive, starting, gone,
the tail of engine.log once it is gone). `follow_loop` is the worker's loop: it retries a
failed read with back-off and says what failed, and it never has more than `IN_FLIGHT`
batches posted and not yet applied (`BatchGate`), so re-attaching to a long history holds a
couple of batches in memory, not the whole file. The UI thread applies a batch with
`apply_batch` and then releases its slot.

Torch-free and Textual-free: unit-tested without an app.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.events import EVENTS_FILE, EventTail
from engine.runs import LOG_FILE, is_locked
from tui.engine_client import log_tail
from tui.run_model import TAIL_CHUNK, RunModel
from tui.step_points import read_events

__all__ = [
    "IN_FLIGHT",
    "Batch",
    "BatchGate",
    "RunFollower",
    "apply_batch",
    "follow_loop",
    "launched_process",
    "remember_process",
]

IN_FLIGHT = 2  # batches posted to the UI and not applied yet, at most
STARTUP_GRACE_S = 60.0  # a run folder this fresh, with no lock, may have an engine importing
BACKOFF_S = (0.5, 30.0)  # first and longest wait before a failed read is tried again
ENGINE_LOG_LINES = 12

_LAUNCHED: dict[Path, subprocess.Popen] = {}  # engines this app started, by run directory


def remember_process(run_dir: str | Path, proc: subprocess.Popen) -> None:
    """Record the engine process this app started for `run_dir` (start or resume)."""
    _LAUNCHED[Path(run_dir).absolute()] = proc


def launched_process(run_dir: str | Path) -> subprocess.Popen | None:
    return _LAUNCHED.get(Path(run_dir).absolute())


@dataclass
class Batch:
    """What one read found. `alive`: the engine holds the run's lock, or is starting (the
    process this app launched still runs, or the run folder is seconds old). `gone`: no engine
    runs and none is starting. `reset`: the events file was truncated or replaced, so the
    events start the run's history again. `error`: the read failed (and will be retried)."""

    events: list[Any] = field(default_factory=list)  # dicts and tui.step_points.StepPoints
    alive: bool = False
    gone: bool = False
    reset: bool = False
    engine_log: list[str] | None = None  # engine.log's last lines, when it changed
    error: str | None = None
    behind: bool = False  # the file had more bytes than this batch (a history streaming in)

    def news(self, previous: Batch | None) -> bool:
        """Whether the UI must hear of this batch."""
        if self.events or self.reset or self.engine_log is not None or previous is None:
            return True
        state = (self.alive, self.gone, self.error)
        return state != (previous.alive, previous.gone, previous.error)


class BatchGate:
    """At most `limit` batches in flight: the reader takes a slot per batch it posts, the UI
    gives it back once the batch is applied."""

    def __init__(self, limit: int = IN_FLIGHT) -> None:
        self.limit = limit
        self._slots = threading.Semaphore(limit)

    def acquire(self, cancelled: Callable[[], bool], step_s: float = 0.1) -> bool:
        """Wait for a free slot; False if cancelled meanwhile."""
        while not cancelled():
            if self._slots.acquire(timeout=step_s):
                return True
        return False

    def release(self) -> None:
        self._slots.release()


class RunFollower:
    """Follows one run directory's events.jsonl from its start (see the module's docstring)."""

    def __init__(self, run_dir: str | Path, events_file: str = EVENTS_FILE) -> None:
        self.run_dir = Path(run_dir)
        self.tail = EventTail(self.run_dir / events_file, max_bytes=TAIL_CHUNK)
        self.model = RunModel(run_dir=self.run_dir, run_id=self.run_dir.name)
        self.gate = BatchGate()
        self.process = launched_process(self.run_dir)
        self._generation = 0
        self._log_stamp: tuple[int, int] | None = None
        self.behind = False  # the last applied batch was not the end of the file (UI thread)

    def starting(self) -> bool:
        """No lock yet, but an engine may be on its way: the process this app launched still
        runs, or (started elsewhere, no event yet) the run folder or its engine.log changed
        seconds ago."""
        if self.process is not None:
            return self.process.poll() is None
        if self.tail.offset:
            return False  # it wrote events and let go of its lock: it is gone
        try:
            newest = max(
                (p.stat().st_mtime for p in (self.run_dir, self.run_dir / LOG_FILE) if p.exists()),
                default=0.0,
            )
        except OSError:
            return False
        return time.time() - newest < STARTUP_GRACE_S

    def read(self) -> Batch:
        """One read (worker thread). Raises OSError when the run cannot be read."""
        alive = is_locked(self.run_dir)  # before reading: a `finished` just before exit is seen
        if self.tail.offset and not self.tail.path.exists():
            raise FileNotFoundError(
                errno.ENOENT,
                "it is gone (was the run folder deleted or moved?)",
                str(self.tail.path),
            )
        events = read_events(self.tail.read_lines())  # step events folded into plot points
        batch = Batch(events, alive=alive)
        if self.tail.generation != self._generation:
            self._generation = self.tail.generation
            batch.reset = True
        if not alive:
            batch.alive = self.starting()
            batch.gone = not batch.alive
        if batch.gone:
            batch.engine_log = self._engine_log()
        return batch

    def _engine_log(self) -> list[str] | None:
        """engine.log's last lines when it changed since the last look, else None."""
        path = self.run_dir / LOG_FILE
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        if stamp == self._log_stamp:
            return None
        self._log_stamp = stamp
        return log_tail(path, ENGINE_LOG_LINES)

    def poll(self) -> list[Any]:
        """Read and apply in one go (single-threaded use: the headless code and tests)."""
        batch = self.read()
        apply_batch(self, batch)
        return batch.events


def apply_batch(follower: RunFollower, batch: Batch) -> bool:
    """Fold a batch into the follower's model (UI thread). True if anything changed."""
    if batch.reset:  # the history starts again: so does the state
        old = follower.model
        follower.model = RunModel(run_dir=old.run_dir, run_id=old.run_id, version=old.version + 1)
    model = follower.model
    changed = model.apply(batch.events)
    state = (batch.alive, batch.gone, batch.error, batch.behind)
    if (model.engine_alive, model.engine_gone, model.follow_error, model.reading) != state:
        model.engine_alive, model.engine_gone, model.follow_error, model.reading = state
        changed = True
    if batch.engine_log is not None and batch.engine_log != model.engine_log:
        model.engine_log = batch.engine_log
        changed = True
    if changed:
        model.version += 1
    return changed or batch.reset


def describe_error(exc: OSError) -> str:
    """One line: which file, what went wrong."""
    where = f"{exc.filename}: " if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}{what}"


def follow_loop(
    follower: RunFollower,
    post: Callable[[Batch], None],
    cancelled: Callable[[], bool],
    poll_s: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The tail worker: read, post what is new, wait when there is nothing more to read.

    A failed read is posted as an error and tried again after 0.5 s, 1 s, 2 s, ... up to 30 s;
    the first good read after it clears the error. Each posted batch holds a slot of
    `follower.gate` until the UI has applied it.
    """
    last: Batch | None = None
    delay = BACKOFF_S[0]
    while not cancelled():
        try:
            batch = follower.read()
        except OSError as exc:
            error = f"{describe_error(exc)} (trying again in {delay:g} s)"
            batch = Batch(alive=last.alive if last else False, error=error)
            if batch.news(last) and follower.gate.acquire(cancelled):
                post(batch)
                last = batch
            sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])
            continue
        delay = BACKOFF_S[0]
        batch.behind = bool(batch.events) and _behind(follower)
        if batch.news(last) or (last is not None and last.behind and not batch.behind):
            if not follower.gate.acquire(cancelled):
                return
            post(batch)
            last = batch
        if not batch.behind:
            sleep(poll_s)


def _behind(follower: RunFollower) -> bool:
    """Whether the events file has more bytes than the tail has read (a burst in progress)."""
    try:
        return os.stat(follower.tail.path).st_size > follower.tail.offset
    except OSError:
        return False
