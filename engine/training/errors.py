"""A training run's expected failures (EngineError) and the error each unexpected one becomes."""

from __future__ import annotations

import errno
from pathlib import Path

from engine import checkpoint as ckpt
from engine.errors import DreamboothError
from engine.gpu import memory

OOM_ADVICE = (
    "lower memory use: set train.gradient_checkpointing: true, train.optimizer: adamw8bit, "
    "train.method: lora, a smaller train.resolution or train.train_batch_size "
    "(raise gradient_accumulation_steps to keep the effective batch)"
)


class EngineError(DreamboothError, RuntimeError):
    """An expected failure: becomes one `error` event and an exit code."""

    def __init__(self, kind: str, message: str, hint: str = "", exit_code: int = 1) -> None:
        super().__init__(message, kind=kind, hint=hint, exit_code=exit_code)


def disk_error(exc: OSError, what: str, run_dir: Path, where: Path | None = None) -> EngineError:
    """Writing `what` (into `where`, by default the run folder) failed: disk full or not
    writable, naming the last good checkpoint."""
    last = ckpt.latest_checkpoint(run_dir)
    kept = f"; the last good checkpoint is {last.name}" if last else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return EngineError(
            "disk",
            f"disk full while writing the {what}{kept}",
            f"free space under {where or run_dir.parent}, then resume the run",
        )
    return EngineError(
        "disk",
        f"cannot write the {what}: {exc.strerror or exc}{kept}",
        f"check that {where or run_dir} is writable, then resume the run",
    )


def out_of_memory(device, step: int) -> EngineError:
    """Out of (GPU) memory at `step`; `device` None: before the accelerator existed."""
    peak = memory(device)["peak"] if device is not None else 0
    gpu = device is not None and device.type == "cuda"
    return EngineError(
        "oom",
        f"out of {'GPU ' if gpu else ''}memory at step {step} "
        f"(peak {peak / 2**30:.2f} GiB allocated)",
        OOM_ADVICE,
    )


def unexpected(exc: Exception, run_dir: Path) -> EngineError:
    """Any other failure: a full disk, or a bug whose trace engine.log keeps."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # events.jsonl, run.json...
            what = f"run file {Path(exc.filename).name}" if exc.filename else "run files"
            return disk_error(exc, what, run_dir)
        return EngineError(
            "internal", f"{exc.__class__.__name__}: {exc}", f"see {run_dir / 'engine.log'}"
        )
    return EngineError(
        "internal",
        f"{exc.__class__.__name__}: {exc}",
        f"the full trace is in {run_dir / 'engine.log'}",
    )
