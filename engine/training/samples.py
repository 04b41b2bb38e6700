"""Validation samples during training: made as `generate` makes them, never ending a run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import torch

from engine import faults
from engine.training.context import RunContext
from engine.training.ema import ema_weights
from engine.training.final import final_pipeline
from engine.training.setup import Models


def validation_pipeline(ctx: RunContext, models: Models) -> Any:
    """The pipeline final/ will hold, with the sampler evaluation.scheduler names, set up as
    `generate` sets up the pipeline it loads (engine.render.use_sampler)."""
    from engine.render import use_sampler

    return use_sampler(final_pipeline(ctx, models), ctx.cfg.evaluation.scheduler)


@contextlib.contextmanager
def encoders_on_device(models: Models, device: torch.device) -> Iterator[None]:
    """The offloaded frozen encoders back on the device for a moment."""
    if models.offloaded:
        for module in models.frozen_encoders():
            module.to(device)
    try:
        yield
    finally:
        if models.offloaded:
            for module in models.frozen_encoders():
                module.to("cpu")
            torch.cuda.empty_cache()


def sample(
    ctx: RunContext,
    models: Models,
    step: int,
    prompts: list[str] | None = None,
    folder: str | None = None,
    **extra: Any,
) -> None:
    """Validation images, each made as `generate` makes it (engine.render): one image per
    forward pass, image i of a prompt from a CPU generator seeded evaluation.seed + i.

    `prompts` default to evaluation.prompts, `folder` (under samples/) to step-NNNNNN; `extra`
    fields go into each `sample` event (a sample-now request's `requested`)."""
    from engine.render import render

    ec = ctx.cfg.evaluation
    prompts = ec.prompts if prompts is None else prompts
    if not prompts or not ctx.is_main:
        return
    faults.check_sample(step)
    out = ctx.run_dir / "samples" / (folder or f"step-{step:06d}")
    out.mkdir(parents=True, exist_ok=True)
    res = ctx.cfg.train.resolution
    # Both trained modules in eval mode: LoRA dropout (and any other) off, as in `generate`.
    trained = [ctx.accelerator.unwrap_model(models.unet)]
    trained += [te for te in [models.trainable_text_encoder(ctx.accelerator)] if te is not None]
    for module in trained:
        module.eval()
    try:
        with (
            ema_weights(models.ema),  # made with the weights final/ will hold
            encoders_on_device(models, ctx.device),
            ctx.accelerator.autocast(),
        ):
            pipe = validation_pipeline(ctx, models)
            index = []
            for pi, prompt in enumerate(prompts):
                paths = []
                for i in range(ec.num_images):
                    (image,) = render(
                        pipe,
                        [prompt],
                        [ec.seed + i],
                        negative_prompt=ec.negative_prompt,
                        num_inference_steps=ec.num_inference_steps,
                        guidance_scale=ec.guidance_scale,
                        height=ec.height or res,
                        width=ec.width or res,
                    )
                    p = out / f"{pi:02d}-{i:02d}.png"
                    image.save(p)
                    paths.append(str(p.relative_to(ctx.run_dir)))
                index.append({"prompt": prompt, "paths": paths, "seed": ec.seed})
                ctx.events.emit(
                    "sample", step=step, prompt=prompt, paths=paths, seed=ec.seed, **extra
                )
            (out / "prompts.json").write_text(json.dumps(index, indent=2, ensure_ascii=False))
    finally:
        for module in trained:
            module.train()


def sample_or_warn(ctx: RunContext, models: Models, step: int, **options: Any) -> None:
    """Sampling never ends a run: a failure (out of memory, disk, anything) is a warning
    and training goes on (issue 9: the finished model must survive a late failure). Every
    process calls it and leaves it together (only the main one samples). `options`: sample()'s
    prompts, folder and event fields."""
    try:
        sample(ctx, models, step, **options)
    except Exception as exc:
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
        oom = isinstance(exc, torch.OutOfMemoryError | MemoryError)
        what = "out of memory" if oom else f"{exc.__class__.__name__}: {exc}"
        ctx.log(f"validation samples at step {step} failed ({what}); training goes on", "warning")
    ctx.accelerator.wait_for_everyone()
