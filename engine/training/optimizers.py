"""The optimizer a run's `train.optimizer` names, with the config's AdamW keys
(adam_beta1, adam_beta2, adam_weight_decay, adam_epsilon) passed to whichever it is.

Prodigy (prodigyopt) estimates the step size itself: its `d` (with d_max, d_numerator and its
step count k) lives in the optimizer's param_groups, so the checkpoint's optimizer.pt holds it
and a resume restores it with the rest of the optimizer state. The `lr` a step event reports is
the step size it applied, d * learning_rate (`effective_lr`).
"""

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
    params: list[torch.nn.Parameter] | list[dict[str, Any]], tc: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (fused where it can be), 8-bit AdamW (bitsandbytes) or Prodigy over `params` (or
    parameter groups, each with its own lr)."""
    options = adam_options(tc)
    if tc.optimizer == "prodigy":
        return _prodigy(params, options)
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


def _prodigy(params: list[Any], options: dict[str, Any]) -> torch.optim.Optimizer:
    """Prodigy as diffusers' DreamBooth scripts set it up for diffusion models: decoupled weight
    decay, Adam's bias correction, and the warmup safeguard (a warmup does not shrink d)."""
    try:
        from prodigyopt import Prodigy
    except ImportError as exc:
        raise EngineError(
            "config",
            "train.optimizer: prodigy needs the prodigyopt package, which is not installed here",
            "pip install prodigyopt, or set train.optimizer: adamw",
            exit_code=2,
        ) from exc
    return Prodigy(
        params, **options, decouple=True, use_bias_correction=True, safeguard_warmup=True
    )


def effective_lr(optimizer: Any, lr: float) -> float:
    """The step size an update applies: the schedule's `lr`, times Prodigy's estimate d."""
    d = optimizer.param_groups[0].get("d")
    return lr * d if d is not None else lr
