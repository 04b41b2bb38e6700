"""fp16 loss scaling: an overflowed update is skipped and does not advance the LR schedule.

Under fp16 mixed precision accelerate scales the loss with a GradScaler; when a gradient
overflows, the scaler skips the optimizer update and halves its scale. Such an update must not
count for the learning-rate schedule either (diffusers' scripts get this from accelerate's
prepared scheduler; the engine steps its own). accelerate's `optimizer_step_was_skipped` cannot
be trusted here: with a fused AdamW (the engine's optimizer on CUDA) the scaler hands the
overflow flag to the optimizer, accelerate sees its step called and reports "not skipped". A
drop of the scale is what marks a skipped update, whatever the optimizer.

The scaler's state (scale, growth tracker) is saved in each checkpoint (`scaler.pt`) and
restored on resume, so a resumed fp16 run does not start again from 65536 and overflow its way
back down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

SCALER_FILE = "scaler.pt"


def optimizer_update(optimizer: Any, lr_scheduler: Any, scaler: Any | None) -> bool:
    """Step the optimizer (through the scaler when there is one), then the LR schedule unless
    the update was skipped; clear the gradients. Returns True when the update was skipped."""
    scale = scaler.get_scale() if scaler is not None else None
    optimizer.step()
    skipped = scaler is not None and scaler.get_scale() < scale
    if not skipped:
        lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return skipped


def save_scaler(scaler: Any | None, folder: Path) -> None:
    if scaler is not None:
        torch.save(scaler.state_dict(), folder / SCALER_FILE)


def load_scaler(scaler: Any | None, folder: Path) -> bool:
    """Restore the scaler from a checkpoint folder; False when it holds none (a run that was
    not fp16, or an older checkpoint): the scaler then starts fresh."""
    path = folder / SCALER_FILE
    if scaler is None or not path.exists():
        return False
    scaler.load_state_dict(torch.load(path, weights_only=True))
    return True
