"""The samplers users pick by name (``evaluation.scheduler``, ``generate --scheduler``).

SCHEDULERS is the one list of their names (the config schema, the CLI and the app read it here);
diffusers is imported only when one is made.

Each is built from a base scheduler's config, so the noise schedule the model was trained with
(betas, prediction type, timestep spacing) carries over whatever sampler is chosen.
"""

from __future__ import annotations

from typing import Any

SCHEDULERS = ("dpmpp_2m", "euler_a", "ddim", "pndm")  # the first is the default


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
