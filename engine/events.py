"""The event stream: an append-only JSON Lines file the engine writes and the TUI follows.

Torch-free: the TUI imports this module. See DESIGN.md, "Event stream".
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VERSION = 1
EVENTS_FILE = "events.jsonl"

EVENT_TYPES = (
    "run_started",
    "phase",
    "step",
    "gpu",
    "sample",
    "checkpoint",
    "log",
    "error",
    "finished",
)


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: non-finite floats become strings ("nan", "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class EventWriter:
    """Appends events to a file, one JSON object per line, flushed per line.

    If the file does not end in a newline (a writer was killed mid-line), a newline is written
    first so every later line parses. A disabled writer (non-main ranks) drops every event.
    """

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._fh = None
        self._lock = threading.Lock()  # the GPU monitor thread writes too
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        needs_newline = False
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                needs_newline = fh.read(1) != b"\n"
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the writer
        if needs_newline:
            self._fh.write("\n")
            self._fh.flush()

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"v": VERSION, "t": time.time(), "type": type, **fields}
        if self._fh is not None:
            line = json.dumps(_clean(event), ensure_ascii=False, separators=(",", ":"))
            with self._lock:
                self._fh.write(line + "\n")
                self._fh.flush()
        return event

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One line -> event dict, or None for a blank, torn or non-event line."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every complete event in a file (a torn last line is skipped)."""
    return list(iter_events(path))


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break  # torn last line: the writer may still be writing it
            event = parse_line(raw)
            if event is not None:
                yield event


class EventTail:
    """Follows a growing events.jsonl: each `poll()` returns the complete events added since.

    Holds a partial last line until its newline arrives. Works before the file exists. Cheap to
    call often: it reads only new bytes. A file that shrank or was replaced (another device or
    inode) is read again from its start, and `generation` goes up by one: whoever folds the
    events into a state must then start from a fresh one, or the history counts twice.
    Errors other than a file not there yet (a permission, a stale NFS handle) are raised.
    """

    def __init__(self, path: str | Path, max_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self.offset = 0
        self.max_bytes = max_bytes
        self.generation = 0
        self._partial = b""
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file being read

    def poll(self) -> list[dict[str, Any]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        ident = (st.st_dev, st.st_ino)
        if self._ident is not None and (ident != self._ident or st.st_size < self.offset):
            self.offset, self._partial = 0, b""  # truncated or replaced: start again
            self.generation += 1
        if st.st_size == self.offset:
            self._ident = ident
            return []
        with open(self.path, "rb") as fh:
            opened = os.fstat(fh.fileno())
            if (opened.st_dev, opened.st_ino) != ident:
                return []  # replaced between stat and open: the next poll starts again
            fh.seek(self.offset)
            data = fh.read(self.max_bytes)
        self._ident = ident
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            event = parse_line(raw)
            if event is not None:
                events.append(event)
        return events


def last_event(events: list[dict[str, Any]], type: str) -> dict[str, Any] | None:
    for event in reversed(events):
        if event.get("type") == type:
            return event
    return None
