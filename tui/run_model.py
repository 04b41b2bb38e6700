"""A run's state as derived from its events: `RunModel.apply(events)` is pure (no I/O), plus the
loss history read back from a run folder. Torch-free and Textual-free."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.events import EVENTS_FILE, iter_events
from engine.progress import event_line
from engine.progress import fmt_duration as fmt_duration  # one format, the CLI's too

if TYPE_CHECKING:
    from tui.step_points import StepPoints

__all__ = [
    "HISTORY_LEN",
    "LOG_LEN",
    "TAIL_CHUNK",
    "ErrorInfo",
    "RunModel",
    "SampleInfo",
    "fmt_duration",
    "load_loss_history",
    "points_after",
]

HISTORY_LEN = 200_000  # loss / lr points kept per run (a long run at full resolution)
LOG_LEN = 500
TAIL_CHUNK = 512 << 10  # bytes read per poll: a burst or a history is handed over in batches


def _float(value: Any) -> float | None:
    """A JSON number (or the writer's "nan"/"inf" strings) -> float; None when absent."""
    if type(value) is float:  # the common case first: 100,000 events on a re-attach
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


@dataclass
class SampleInfo:
    step: int | None
    prompt: str
    paths: list[Path]  # absolute
    seed: int | None = None


@dataclass
class ErrorInfo:
    kind: str
    message: str
    hint: str = ""


@dataclass
class RunModel:
    """A run's state, derived from its event stream. `apply` is pure: events in, fields updated.

    `status` is what the events say: `waiting` (nothing yet), `running` (a run_started with no
    finished after it), or the finished event's status. Whether the engine is still alive is not
    in the events: `tui.follower.RunFollower` sets `engine_alive` and `engine_gone`, and
    `display_status` combines them (`live`, or `crashed` for a running status whose engine is
    gone, or a waiting one whose engine died before its first event; `loading` while such a
    run's history is still being read).
    """

    run_dir: Path | None = None
    run_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    total_steps: int | None = None
    step: int = 0
    phase: str | None = None
    phase_detail: str = ""
    status: str = "waiting"
    losses: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    lrs: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    it_s: float | None = None
    eta_s: float | None = None
    mem: dict[str, Any] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)
    device: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1
    resumed_from_step: int | None = None
    samples: list[SampleInfo] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    log: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=LOG_LEN))
    log_count: int = 0  # log lines ever appended (the UI writes the ones it has not shown)
    errors: list[ErrorInfo] = field(default_factory=list)
    finished: dict[str, Any] | None = None
    started_t: float | None = None
    last_t: float | None = None
    engine_alive: bool | None = None  # set by RunFollower; None = not checked
    engine_gone: bool = False  # no engine runs or is starting (tui.follower)
    engine_log: list[str] = field(default_factory=list)  # engine.log's tail, once it is gone
    follow_error: str | None = None  # the last read of the run failed (retrying)
    # The reader is behind the file's end (a re-attached history streaming in): a run with no
    # engine is `loading`, not `crashed`, until all of it is in (its `finished` may be last).
    reading: bool = False
    stopping: bool = False  # the UI sent SIGTERM and waits for `finished`
    version: int = 0  # bumped by every apply() that changed something
    history_rev: int = 0  # bumped when loss/lr points are taken back (a resume redoes steps)

    # -- derived ------------------------------------------------------------------------------
    @property
    def display_status(self) -> str:
        """live | completed | stopped | failed | crashed | starting | waiting | loading."""
        if self.status == "running":
            if self.engine_alive is False:
                return "loading" if self.reading else "crashed"
            return "stopping" if self.stopping else "live"
        if self.status == "waiting" and self.engine_gone:
            return "crashed"  # the engine died before its first event
        if self.status == "waiting" and self.engine_alive:
            return "starting"
        return self.status

    @property
    def is_live(self) -> bool:
        return self.status in ("running", "waiting") and bool(self.engine_alive)

    @property
    def progress_text(self) -> str:
        total = self.total_steps if self.total_steps is not None else "?"
        return f"step {self.step}/{total}"

    def resolve(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_absolute() or self.run_dir is None:
            return path
        return self.run_dir / path

    # -- events -------------------------------------------------------------------------------
    def apply(self, events: list[dict[str, Any]]) -> bool:
        """Fold events into the state. Unknown types and fields are ignored. True if changed.
        An event may also be a `tui.step_points.StepPoints` (step events folded by the reader)."""
        changed = False
        for event in events:
            if type(event) is not dict:
                self._on_points(event)
                changed = True
                continue
            handler = _HANDLERS.get(event.get("type"))  # type: ignore[arg-type]
            if handler is None:
                continue
            handler(self, event)
            t = _float(event.get("t"))
            if t is not None:
                self.last_t = t
            changed = True
        if changed:
            self.version += 1
        return changed

    def _on_run_started(self, e: dict[str, Any]) -> None:
        self.run_id = str(e.get("run_id") or self.run_id or "")
        if isinstance(e.get("config"), dict):
            self.config = e["config"]
        total = _int(e.get("total_steps"))
        if total is not None:
            self.total_steps = total
        if isinstance(e.get("device"), dict):
            self.device = e["device"]
        self.world_size = _int(e.get("world_size")) or 1
        resumed = _int(e.get("resumed_from_step"))
        self.resumed_from_step = resumed
        if resumed is not None:
            # Steps after the checkpoint were lost with the old process: they will be redone.
            self._rewind(resumed)
            self.step = resumed
        self.status = "running"
        self.errors.clear()  # a previous attempt's errors leave the panel (the log keeps them)
        self.finished = None
        self.stopping = False
        self.phase, self.phase_detail = None, ""
        self.eta_s = self.it_s = None
        if self.started_t is None:
            self.started_t = _float(e.get("t"))

    def _rewind(self, last_step: int) -> None:
        if _truncate(self.losses, last_step) | _truncate(self.lrs, last_step):
            self.history_rev += 1

    def _on_phase(self, e: dict[str, Any]) -> None:
        self.phase = str(e.get("name") or "")
        self.phase_detail = str(e.get("detail") or "")
        self._say(e)

    def _say(self, e: dict[str, Any], level: str = "info") -> None:
        """The log line the CLI prints for this event (paths relative to the run)."""
        line = event_line(e)
        if line:
            self.log.append((level, line))
            self.log_count += 1

    def _on_step(self, e: dict[str, Any]) -> None:
        step = _int(e.get("step"))
        if step is None:
            return
        if self.losses and self.losses[-1][0] >= step:
            self._rewind(step - 1)  # a step seen twice: the later one wins
        self.step = step
        loss, lr = _float(e.get("loss")), _float(e.get("lr"))
        self.loss, self.lr = loss, lr
        if loss is not None:
            self.losses.append((step, loss))
        if lr is not None:
            self.lrs.append((step, lr))
        self.grad_norm = _float(e.get("grad_norm"))
        self.it_s = _float(e.get("it_s"))
        self.eta_s = _float(e.get("eta_s"))
        if isinstance(e.get("mem"), dict):
            self.mem = e["mem"]
        if self.phase is None:
            self.phase = "training"

    def _on_points(self, p: StepPoints) -> None:
        """What `_on_step` leaves of each of these steps (their newest follows as an event)."""
        losses, lrs = self.losses, self.lrs
        if p.plain and not (losses and losses[-1][0] >= p.steps[0]):
            losses.extend(zip(p.steps, p.losses, strict=True))  # no None, no step twice
            lrs.extend(zip(p.steps, p.lrs, strict=True))
        else:
            for step, loss, lr in zip(p.steps, p.losses, p.lrs, strict=True):
                if losses and losses[-1][0] >= step:
                    self._rewind(step - 1)
                if loss is not None:
                    losses.append((step, loss))
                if lr is not None:
                    lrs.append((step, lr))
        self.step = p.steps[-1]
        if p.mem is not None:
            self.mem = p.mem
        if p.t is not None:
            self.last_t = p.t

    def _on_gpu(self, e: dict[str, Any]) -> None:
        self.gpu = {k: v for k, v in e.items() if k not in ("v", "t", "type")}

    def _on_sample(self, e: dict[str, Any]) -> None:
        paths = e.get("paths") or []
        if isinstance(paths, str):
            paths = [paths]
        self.samples.append(
            SampleInfo(
                step=_int(e.get("step")),
                prompt=str(e.get("prompt") or ""),
                paths=[self.resolve(p) for p in paths if isinstance(p, str)],
                seed=_int(e.get("seed")),
            )
        )
        self._say(e)

    def _on_checkpoint(self, e: dict[str, Any]) -> None:
        step = _int(e.get("step"))
        if step is not None:
            self.checkpoints.append((step, str(e.get("path") or "")))
        self._say(e)

    def _on_log(self, e: dict[str, Any]) -> None:
        self.log.append((str(e.get("level") or "info"), str(e.get("message") or "")))
        self.log_count += 1

    def _on_error(self, e: dict[str, Any]) -> None:
        info = ErrorInfo(
            kind=str(e.get("kind") or "internal"),
            message=str(e.get("message") or ""),
            hint=str(e.get("hint") or ""),
        )
        self.errors.append(info)
        self.log.append(("error", f"{info.kind}: {info.message}"))
        self.log_count += 1

    def _on_finished(self, e: dict[str, Any]) -> None:
        self.finished = {k: v for k, v in e.items() if k not in ("v", "type")}
        self.status = str(e.get("status") or "completed")
        step = _int(e.get("step"))
        if step is not None:
            self.step = step
        self.stopping = False
        self.eta_s = None
        self._say(e, "info" if self.status in ("completed", "stopped") else "warning")


_HANDLERS = {
    "run_started": RunModel._on_run_started,
    "phase": RunModel._on_phase,
    "step": RunModel._on_step,
    "gpu": RunModel._on_gpu,
    "sample": RunModel._on_sample,
    "checkpoint": RunModel._on_checkpoint,
    "log": RunModel._on_log,
    "error": RunModel._on_error,
    "finished": RunModel._on_finished,
}


def _truncate(points: deque[tuple[int, float]], last_step: int) -> bool:
    """Drop points after `last_step` (they are at the end: steps only grow within an attempt).
    True if any was dropped."""
    dropped = False
    while points and points[-1][0] > last_step:
        points.pop()
        dropped = True
    return dropped


def points_after(points: deque[tuple[int, float]], step: int | None) -> list[tuple[int, float]]:
    """The points after `step` (all of them for None), read from the end: cheap per redraw."""
    if step is None:
        return list(points)
    out = []
    for point in reversed(points):
        if point[0] <= step:
            break
        out.append(point)
    out.reverse()
    return out


def load_loss_history(run_dir: str | Path) -> list[tuple[int, float]]:
    """(step, loss) for every step of a run, in step order. A resumed run redoes the steps after
    its checkpoint: the later value wins, and steps lost with a crashed attempt are dropped."""
    losses: dict[int, float] = {}
    for event in iter_events(Path(run_dir) / EVENTS_FILE):
        kind = event.get("type")
        if kind == "run_started":
            resumed = _int(event.get("resumed_from_step"))
            if resumed is not None:
                losses = {s: v for s, v in losses.items() if s <= resumed}
        elif kind == "step":
            step, loss = _int(event.get("step")), _float(event.get("loss"))
            if step is not None and loss is not None:
                losses[step] = loss
    return sorted(losses.items())


# -- processes --------------------------------------------------------------------------------
