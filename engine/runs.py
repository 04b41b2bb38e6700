"""Run directories, run.json, the lock that keeps one engine per run, and the run registry.

Torch-free: the TUI imports this module. See DESIGN.md, "Run directory".
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine import __version__
from engine.events import EVENTS_FILE, MAX_LINE, parse_line
from engine.redact import redact
from engine.runlock import (  # noqa: F401  (re-exported: the one place callers import from)
    LOCK_FILE,
    RunLock,
    RunLockedError,
    is_locked,
    lock_holder,
    lock_owner,
    lock_owner_verified,
    pid_alive,
    process_start_time,
)

RUN_JSON = "run.json"
CONFIG_FILE = "config.yaml"
LOG_FILE = "engine.log"
GENERATED_DIR = "generated"
# diffusers' LoRA weights file: in final/ and checkpoints of LoRA runs, pushed as is, and what
# `generate --lora FOLDER` looks for
LORA_FILE = "pytorch_lora_weights.safetensors"

# What a crash (run.json says running, nobody holds the lock: the engine ended without writing
# `finished`) most often is, and what to do; the app and `runs` show it with the last step.
CRASH_HINT = (
    "the engine ended without a word (killed: most often by the kernel's out-of-memory killer "
    "when the machine's RAM ran out; `dmesg` says so); free host memory or use a smaller "
    "train.resolution or train.train_batch_size, then resume (it continues from the last "
    "checkpoint)"
)

# Statuses stored in run.json; "live" and "crashed" are derived (see RunInfo.state).
RUNNING, COMPLETED, STOPPED, FAILED = "running", "completed", "stopped", "failed"


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].strip("-") or "run"


def new_run_id(name: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{slugify(redact(name))}"  # a prompt may hold a pasted token


def new_folder(parent: Path, name: str) -> Path | None:
    """Make parent/name, or name-2, name-3... where that exists already (parent made first);
    None when 999 names are taken. The folder returned is new: made by this call."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = parent / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    return None


def create_run_dir(output_dir: str | Path, name: str) -> Path:
    """Make runs/<run-id>/ (a suffix -2, -3... where that id exists already)."""
    folder = new_folder(Path(output_dir), new_run_id(name))
    if folder is None:
        raise RuntimeError(f"{output_dir}: could not create a new run directory")
    return folder


def read_run_json(run_dir: str | Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(run_dir) / RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_run_json(run_dir: str | Path, data: dict[str, Any]) -> None:
    path = Path(run_dir) / RUN_JSON
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: run.json stays as it was, no cut .tmp beside it
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def update_run_json(run_dir: str | Path, **fields: Any) -> dict[str, Any]:
    data = read_run_json(run_dir)
    data.update(fields)
    write_run_json(run_dir, data)
    return data


def start_record(run_dir: Path, argv: list[str], total_steps: int) -> dict[str, Any]:
    """run.json as an engine starts (fresh or resumed)."""
    data = read_run_json(run_dir)
    now = time.time()
    data.update(
        run_id=run_dir.name,
        status=RUNNING,
        pid=os.getpid(),
        host=socket.gethostname(),
        started=data.get("started") or now,
        resumed=now if data.get("started") else None,
        ended=None,
        engine_version=__version__,
        argv=argv,
        total_steps=total_steps,
    )
    write_run_json(run_dir, data)
    return data


def images_base(run_dir: str | Path | None, images_dir: str | Path = "images") -> Path:
    """Where generated images go, the one rule for the app and `generate`: a run's images stay
    with the run, in RUN_DIR/generated/; a model without a run (a hub id, a folder) writes to
    `images_dir`, the config's evaluation.output_dir (./images by default). Each request gets
    its own <UTC yyyymmdd-hhmmss> folder under it; --output-dir overrides."""
    if run_dir is not None:
        return Path(run_dir).expanduser() / GENERATED_DIR
    return Path(images_dir).expanduser()


def run_duration(meta: dict[str, Any], now: float | None = None) -> float | None:
    """A run's duration, the one definition the app, `runs` and the engine's `finished` use:
    the time its engine processes ran, summed over resumes (the gap between a stop and the
    resume does not count). run.json keeps the finished sessions' sum in `duration_s` and the
    current session's start in `resumed` (or `started`); `now` (the clock, for a live run)
    ends a session still running. A run.json from before `duration_s`: `ended - started`."""
    started = meta.get("started")
    if not isinstance(started, (int, float)):
        return None
    done = meta.get("duration_s")
    done = float(done) if isinstance(done, (int, float)) else None
    ended = meta.get("ended")
    if isinstance(ended, (int, float)):
        return done if done is not None else max(0.0, ended - started)
    if now is None:
        return done  # not running and never ended (crashed): the finished sessions only
    return (done or 0.0) + max(0.0, now - (meta.get("resumed") or started))


def finish_record(run_dir: Path, now: float, **fields: Any) -> float | None:
    """The duration of a run whose engine session ends at `now` (see run_duration); with
    `fields` (status, step), run.json also gets them, `ended` and the new `duration_s`."""
    data = read_run_json(run_dir)
    data["ended"] = None
    duration = run_duration(data, now)
    if fields:
        update_run_json(run_dir, ended=now, duration_s=duration, **fields)
    return duration


def _lines_from_end(path: Path, block: int = 256 << 10, limit: int = 64 << 20):
    """The file's lines, last first, read in blocks from the end (at most `limit` bytes), so a
    long run of garbage at the end does not hide the events before it. A line longer than any
    event is kept at MAX_LINE + 1 bytes (parse_line skips it), so memory stays bounded."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a generator cannot use `with` here
    except OSError:
        return
    with fh:
        pos = fh.seek(0, os.SEEK_END)
        rest = b""
        while pos > 0 and fh.tell() and limit > 0:
            n = min(block, pos, limit)
            pos -= n
            limit -= n
            fh.seek(pos)
            lines = (fh.read(n) + rest).split(b"\n")
            rest = lines.pop(0)[-(MAX_LINE + 1) :]  # may go on in the block before
            yield from reversed(lines)
        if pos == 0:
            yield rest


@dataclass
class RunInfo:
    run_dir: Path
    run_id: str
    status: str  # from run.json: running | completed | stopped | failed | unknown
    live: bool
    step: int = 0
    total_steps: int | None = None
    last_loss: float | None = None
    started: float | None = None
    ended: float | None = None
    resumed: float | None = None  # the current (or last) engine session's start, after a resume
    duration_s: float | None = None  # run.json's sum of finished sessions (see run_duration)
    method: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """live | completed | stopped | failed | crashed (status running, engine gone)."""
        if self.live:
            return "live"
        if self.status == RUNNING:
            return "crashed"
        return self.status

    @property
    def duration(self) -> float | None:
        """See run_duration (live: up to now)."""
        meta = {
            "started": self.started,
            "resumed": self.resumed,
            "ended": None if self.live else self.ended,
            "duration_s": self.duration_s,
        }
        return run_duration(meta, time.time() if self.live else None)

    @property
    def resumable(self) -> bool:
        return not self.live and self.state in ("stopped", "failed", "crashed")

    @property
    def crash_note(self) -> str | None:
        """For a crashed run: one line with its last step and the likely cause."""
        if self.state != "crashed":
            return None
        return f"{self.run_id}: crashed at step {self.step}: {CRASH_HINT}"


def run_info(run_dir: str | Path) -> RunInfo:
    run_dir = Path(run_dir)
    meta = read_run_json(run_dir)
    info = RunInfo(
        run_dir=run_dir,
        run_id=meta.get("run_id") or run_dir.name,
        status=meta.get("status") or "unknown",
        live=is_locked(run_dir),
        total_steps=meta.get("total_steps"),
        started=meta.get("started"),
        ended=meta.get("ended"),
        resumed=meta.get("resumed"),
        duration_s=meta.get("duration_s"),
        method=meta.get("method"),
    )
    # 16 KiB at a time: the last step is usually in the last few lines (the Runs screen lists
    # hundreds of runs; 256 KiB each was 51 MB per refresh at 200 runs)
    for raw in _lines_from_end(run_dir / EVENTS_FILE, block=16 << 10):
        event = parse_line(raw)
        if event is None:
            continue
        kind = event.get("type")
        if kind == "step" and info.last_loss is None:
            info.step = int(event.get("step") or 0)
            loss = event.get("loss")
            info.last_loss = float(loss) if isinstance(loss, (int, float)) else None
        elif kind == "error" and info.error is None:
            info.error = str(event.get("message", ""))
        elif kind == "finished" and info.last_loss is None and not info.step:
            info.step = int(event.get("step") or 0)
        if info.last_loss is not None:
            break
    return info


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and ((path / RUN_JSON).exists() or (path / EVENTS_FILE).exists())


def list_runs(output_dir: str | Path) -> list[RunInfo]:
    """Every run under output_dir, newest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    runs = [run_info(p) for p in output_dir.iterdir() if is_run_dir(p)]
    runs.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
    return runs


def live_runs(output_dir: str | Path) -> list[RunInfo]:
    return [r for r in list_runs(output_dir) if r.live]


def latest_resumable(output_dir: str | Path) -> RunInfo | None:
    """The newest run under output_dir whose status is not completed (and not live)."""
    for info in list_runs(output_dir):
        if info.status != COMPLETED and not info.live:
            return info
    return None


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b:?.*")


def engine_log_error(run_dir: str | Path, since: int = 0, max_bytes: int = 64 << 10) -> str | None:
    """The one line that says why an engine failed, from the end of its engine.log: its last
    `error: ...` line, else the last line of a Python traceback; None if there is neither.

    For an engine that died before it could write an `error` event (so the failure still
    reaches the CLI and the app as one line, not only in the log). `since`: the log's size when
    this engine started (earlier attempts' lines are not this one's reason)."""
    try:
        with open(Path(run_dir) / LOG_FILE, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(since, size - max_bytes, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = text.replace("\r", "\n").split("\n")
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: ") :].strip()
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()
    return None


def utc_iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
