"""What every part of a training run shares: its context (where, which config, which processes),
its state (how far it got) and the stop signal."""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.config import Config
from engine.events import EventWriter


class StopSignal:
    """First SIGTERM/SIGINT: stop after this step. Second: exit at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}  # the handlers install() replaced

    def install(self) -> None:
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def uninstall(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            os._exit(128 + signum)
        self.requested = True


def rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


@dataclass
class RunContext:
    """Set once the accelerator exists; the same for the whole run."""

    run_dir: Path
    cfg: Config
    accelerator: Any  # accelerate.Accelerator
    device: torch.device
    weight_dtype: torch.dtype
    events: EventWriter
    is_main: bool
    stop: StopSignal

    def log(self, message: str, level: str = "info") -> None:
        self.events.log(message, level)

    def log_warning(self, message: str) -> None:
        self.events.log(message, "warning")

    def phase(self, name: str, detail: str = "") -> None:
        self.events.emit("phase", name=name, detail=detail)

    def should_stop(self) -> bool:
        """All processes agree to stop when any one was signalled."""
        return self.any_process(self.stop.requested)

    def any_process(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any one (a collective: all call it)."""
        acc = self.accelerator
        if acc.num_processes > 1:
            t = torch.tensor([1.0 if flag else 0.0], device=acc.device)
            flag = bool(acc.reduce(t, reduction="sum").item() > 0)
        return flag


@dataclass
class RunState:
    """How far this session of the run got."""

    step: int = 0  # the last step done
    start_step: int = 0  # the step it resumed from (0: a fresh run)
    started: float = field(default_factory=time.time)
    recorded: bool = False  # run.json has this session's start (the main process only)
    step_times: deque[float] = field(default_factory=lambda: deque(maxlen=10))
    compiled: str | None = None  # what train.torch_compile compiled, until step 1
