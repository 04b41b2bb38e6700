"""The event stream: an append-only JSON Lines file the engine writes and the TUI follows.

Torch-free: the TUI imports this module. See DESIGN.md, "Event stream".
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.redact import hub_tokens, redact

VERSION = 1
EVENTS_FILE = "events.jsonl"


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
    """Appends events to a file, one JSON object per line, each line written at once.

    If the file does not end in a newline (a writer was killed mid-line, or a full disk cut a
    line short), a newline is written first so every later line parses. A write that fails
    (disk full) raises OSError naming the file; the line may be cut short, and the next
    line then starts on a fresh one. A disabled writer (non-main ranks) drops every event.
    `listeners` (e.g. train.report_to's reporter) get each event as written (tokens masked),
    after it is in the file.
    """

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._fd: int | None = None
        self._torn = False  # the last line written may be cut short: start on a fresh line
        self._lock = threading.Lock()  # the GPU monitor thread writes too
        self._tokens = hub_tokens()  # masked wherever they appear (a token pasted as a prompt)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                self._torn = fh.read(1) != b"\n"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _write(self, data: bytes) -> None:
        """All of `data`, however many writes it takes; OSError names the file."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._torn = True
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"v": VERSION, "t": time.time(), "type": type, **fields}
        if self._fd is not None:
            line = json.dumps(_clean(event), ensure_ascii=False, separators=(",", ":"))
            if self._tokens:
                line = redact(line, self._tokens)
            with self._lock:
                data = (line + "\n").encode("utf-8")
                self._write(b"\n" + data if self._torn else data)
                self._torn = False
            if self.listeners:
                written = json.loads(line)
                for listener in self.listeners:
                    listener(written)
        return event

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The fields of each known type that readers use, with the JSON types they may have (null is
# always allowed: it means absent). An event whose field has another type (a torn or garbage
# line that still parsed, another program's writes) is skipped whole, so no reader meets it.
_NUM = (int, float)
_NUM_OR_TEXT = (int, float, str)  # the writer writes non-finite floats as "nan", "inf"
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "run_started": {
        "run_id": (str,),
        "config": (dict,),
        "total_steps": (int,),
        "device": (dict,),
        "resumed_from_step": (int,),
        "world_size": (int,),
    },
    "phase": {"name": (str,), "detail": (str,)},
    "step": {
        "step": (int,),
        "loss": _NUM_OR_TEXT,
        "lr": _NUM_OR_TEXT,
        "grad_norm": _NUM_OR_TEXT,
        "it_s": _NUM,
        "samples_s": _NUM,
        "eta_s": _NUM,
        "mem": (dict,),
        "loss_instance": _NUM_OR_TEXT,
        "loss_prior": _NUM_OR_TEXT,
    },
    "gpu": {k: _NUM for k in ("util", "mem_used", "mem_total", "temp_c", "power_w")},
    "sample": {"step": (int,), "prompt": (str,), "paths": (list,), "seed": (int,)},
    "checkpoint": {"step": (int,), "path": (str,)},
    "log": {"level": (str,), "message": (str,)},
    "error": {"kind": (str,), "message": (str,), "hint": (str,)},
    "finished": {"status": (str,), "step": (int,), "outputs": (dict,), "duration_s": _NUM},
}
_REQUIRED = {
    "step": ("step",),
    "sample": ("paths",),
    "checkpoint": ("step", "path"),
    "log": ("message",),
    "error": ("message",),
    "finished": ("status",),
}
MAX_LINE = 1 << 20  # no event is near this; a longer line is garbage and is skipped unread


# name -> the exact types (a set: one lookup per field; JSON parsers build exact builtins, and
# `type(v) in` also keeps a bool out of a number field)
_FIELD_TYPES = {kind: {n: frozenset(t) for n, t in f.items()} for kind, f in _FIELDS.items()}
_NUM_TYPES = frozenset(_NUM)


def _well_formed(event: dict[str, Any]) -> bool:
    kind = event["type"]
    fields = _FIELD_TYPES.get(kind)
    if fields is None:
        return True  # an unknown type: readers ignore it anyway
    for name in _REQUIRED.get(kind, ()):
        if event.get(name) is None:
            return False
    for name, value in event.items():
        types = fields.get(name)
        if types is not None and value is not None and type(value) not in types:
            return False
    mem = event.get("mem")
    if type(mem) is dict:
        for v in mem.values():
            if v is not None and type(v) not in _NUM_TYPES:
                return False
    paths = event.get("paths")
    return not (type(paths) is list and not all(type(p) is str for p in paths))


try:  # 5-6x faster than json on event lines: re-attaching to 100,000 events takes < 1 s
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - orjson is a dependency; json still reads everything
    _fast_loads = None


def _loads(line: str | bytes) -> Any:
    if _fast_loads is not None:
        try:
            return _fast_loads(line)
        except ValueError:
            pass  # NaN literals, bad UTF-8: json decides, as before (orjson reads an integer
            # past 64 bits as a float: such a step or seed is garbage, and is skipped)
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return json.loads(line)


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One line -> event dict, or None for a blank, torn, garbage or non-event line (also for a
    known type whose fields have the wrong types: see _FIELDS)."""
    if len(line) > MAX_LINE or not line or line.isspace():
        return None
    try:
        event = _loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event if _well_formed(event) else None


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every complete event in a file (a torn last line is skipped)."""
    return list(iter_events(path))


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return
    with open(path, "rb") as fh:
        while raw := fh.readline(MAX_LINE + 1):
            if len(raw) > MAX_LINE:  # garbage: skip to the end of the line without holding it
                while raw and not raw.endswith(b"\n"):
                    raw = fh.readline(MAX_LINE + 1)
                continue
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
        events = []
        for raw in self.read_lines():
            event = parse_line(raw)
            if event is not None:
                events.append(event)
        return events

    def read_lines(self) -> list[bytes]:
        """The complete lines added since the last call, unparsed (see `poll`)."""
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
        if len(self._partial) > MAX_LINE:  # a garbage line: keep only enough to know it is one
            self._partial = self._partial[: MAX_LINE + 1]
        return lines
