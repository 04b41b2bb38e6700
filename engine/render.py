"""The sampling pipeline and one call of it, shared by validation samples and `generate`.

Both get their pipeline from the model's family (engine.families: assembled from the training
run's parts, or loaded), set it up with :func:`use_sampler` and call it through :func:`render`,
so a validation sample and the image `generate` makes with the same weights, prompt, seed, steps
and sampler are the same pixels: each image gets its own CPU generator seeded with its seed (the
same on every device), and by default one image per forward pass (a batch of several gives
slightly different float rounding on some backends).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def use_sampler(pipe: Any, sampler: str) -> Any:
    """``pipe`` set up to render: the sampler named ``sampler`` (engine.schedulers), built from
    the config of the scheduler the pipeline holds, and no progress bar. Returns ``pipe``."""
    from engine.schedulers import make_scheduler

    pipe.scheduler = make_scheduler(sampler, pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(
    pipe: Any,
    prompts: list[str],
    seeds: list[int],
    *,
    negative_prompt: str = "",
    num_inference_steps: int,
    guidance_scale: float,
    height: int | None,
    width: int | None,
    interrupt: Callable[[], None] | None = None,
) -> list[Any]:
    """PIL images, one per (prompt, seed) pair, in one forward batch. ``interrupt`` is called
    after every denoising step: it raises to stop the call (the warm generate worker's cancel)."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    extra: dict[str, Any] = {}
    if interrupt is not None:

        def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict) -> dict:
            interrupt()
            return kwargs

        extra["callback_on_step_end"] = on_step_end
    with torch.inference_mode():
        result = pipe(
            prompt=list(prompts),
            negative_prompt=[negative_prompt] * len(prompts) if negative_prompt else None,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            height=height,
            width=width,
            generator=generators,
            **extra,
        )
    return list(result.images)
