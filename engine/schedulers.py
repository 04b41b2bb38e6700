"""The samplers users pick by name (``evaluation.scheduler``, ``generate --scheduler``).

Each is built from a base scheduler's config, so the noise schedule the model was trained with
(betas, prediction type, timestep spacing) carries over whatever sampler is chosen.
"""

from __future__ import annotations

from typing import Any

SCHEDULERS = ("dpmpp_2m", "euler_a", "ddim", "pndm")

_DESCRIPTIONS = {
    "dpmpp_2m": "DPM-Solver++ 2M: good images in 20-30 steps (the default)",
    "euler_a": "Euler ancestral: varied, soft results; adds fresh noise each step",
    "ddim": "DDIM: deterministic, the classic sampler of the DreamBooth paper era",
    "pndm": "PNDM: Stable Diffusion v1's original default; needs ~50 steps",
}


def describe(name: str) -> str:
    return _DESCRIPTIONS[name]


def make_scheduler(name: str, config: Any):
    """A new scheduler named ``name`` from ``config`` (a scheduler, or its config dict).

    Raises ValueError for an unknown name, naming the valid ones.
    """
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        PNDMScheduler,
    )

    config = getattr(config, "config", config)  # a scheduler instance -> its FrozenDict config
    if name == "dpmpp_2m":
        return DPMSolverMultistepScheduler.from_config(
            config, algorithm_type="dpmsolver++", solver_order=2
        )
    if name == "euler_a":
        return EulerAncestralDiscreteScheduler.from_config(config)
    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "pndm":
        return PNDMScheduler.from_config(config, skip_prk_steps=True)
    raise ValueError(f"unknown scheduler '{name}'; choose one of {', '.join(SCHEDULERS)}")
