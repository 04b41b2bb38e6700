"""The optimizer a run's `train.optimizer` names, with the config's AdamW keys
(adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon) passed to whichever it is."""

from __future__ import annotations

from typing import Any

import torch

from engine.config.schema import TrainConfig
from engine.training.errors import EngineError


def adam_options(tc: TrainConfig) -> dict[str, Any]:
    """The keyword arguments every Adam-style optimizer here takes from the config."""
    return {
        "lr": tc.learning_rate,
        "betas": (tc.adam_beta1, tc.adam_beta2),
        "weight_decay": tc.adam_weight_decay,
        "eps": tc.adam_epsilon,
    }


def make_optimizer(
    params: list[torch.nn.Parameter], tc: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (fused where it can be) or 8-bit AdamW (bitsandbytes) over `params`."""
    options = adam_options(tc)
    if tc.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(params, **options)
        except Exception as exc:  # import or device support
            raise EngineError(
                "config",
                f"train.optimizer: adamw8bit is not available here ({exc})",
                "install bitsandbytes for this device, or set train.optimizer: adamw",
                exit_code=2,
            ) from exc
    # One fused kernel per update on CUDA and the CPU (torch >= 2.4): on the tiny model's
    # CPU step it takes a quarter of foreach's time (benchmarks/RESULTS.md).
    fused = device.type in ("cuda", "cpu")
    extra = {"fused": True} if fused else {"foreach": True}
    return torch.optim.AdamW(params, **options, **extra)
