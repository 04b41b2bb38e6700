"""Validation samples during training: made as `generate` makes them, never ending a run."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
from collections.abc import Iterator
from typing import Any

import torch

from engine import faults
from engine.checkpoint import SAMPLES
from engine.outputs import replace_folder
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
    fields go into each `sample` event (a sample-now request's `requested`). The images are
    written into samples/.tmp-FOLDER and swapped in whole as samples/FOLDER, then announced
    (`sample` events): a failure (a full disk) leaves no partial folder behind."""
    from engine.render import render

    ec = ctx.cfg.evaluation
    prompts = ec.prompts if prompts is None else prompts
    if not prompts or not ctx.is_main:
        return
    faults.check_sample(step)
    name = folder or f"step-{step:06d}"
    out = ctx.run_dir / SAMPLES / name
    tmp = out.with_name(f".tmp-{name}")
    shutil.rmtree(tmp, ignore_errors=True)
    res = ctx.cfg.train.resolution
    # The trained modules in eval mode: LoRA dropout (and any other) off, as in `generate`.
    trained = [ctx.accelerator.unwrap_model(models.unet)]
    trained += list(models.trained_text_encoders(ctx.accelerator).values())
    for module in trained:
        module.eval()
    index = []
    try:
        if out.exists() and not out.is_dir():  # never replace what is not a samples folder
            raise FileExistsError(errno.EEXIST, "in the way of the samples folder", str(out))
        tmp.mkdir(parents=True)
        with (
            ema_weights(models.ema),  # made with the weights final/ will hold
            encoders_on_device(models, ctx.device),
            ctx.accelerator.autocast(),
        ):
            pipe = validation_pipeline(ctx, models)
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
                    image.save(tmp / f"{pi:02d}-{i:02d}.png")
                    paths.append(f"{SAMPLES}/{name}/{pi:02d}-{i:02d}.png")
                index.append({"prompt": prompt, "paths": paths, "seed": ec.seed})
        (tmp / "prompts.json").write_text(json.dumps(index, indent=2, ensure_ascii=False))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for module in trained:
            module.train()
    for entry in index:
        ctx.events.emit("sample", step=step, **entry, **extra)


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
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        what = "out of memory" if oom else f"{exc.__class__.__name__}: {exc}"
        if full:
            what = f"disk full while writing them; free space under {ctx.run_dir.parent}"
        ctx.log(f"validation samples at step {step} failed ({what}); training goes on", "warning")
    ctx.accelerator.wait_for_everyone()
