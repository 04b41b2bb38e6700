"""Sample now (engine.sample_request): at a step boundary, the samples a user asked for while
the run trains, made as the scheduled validation samples are, and the run goes on.

Only the main process reads the request; every process learns whether there was one (one small
collective per step, as for stop), so all of them enter and leave the sampling together. The
samples leave the training unchanged: they use their own CPU generators (engine.render) as the
scheduled ones do, and every global RNG state is put back afterwards, so the losses after a
request equal those of a run without one, and a checkpoint's RNG state does not depend on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from engine.checkpoint import rng_state, set_rng_state
from engine.sample_request import SampleRequest, take_request
from engine.training import samples
from engine.training.context import RunContext
from engine.training.setup import Models


@contextlib.contextmanager
def rng_kept() -> Iterator[None]:
    """Every global RNG (python, numpy, torch, CUDA) as it was before the block."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


def folder_for(run_dir: Path, step: int) -> str:
    """samples/step-NNNNNN-asked (then -asked-2, ...): apart from the scheduled samples of the
    same step, and from a request at the same step of an earlier attempt of the run."""
    name = f"step-{step:06d}-asked"
    n = 1
    while (run_dir / "samples" / (name if n == 1 else f"{name}-{n}")).exists():
        n += 1
    return name if n == 1 else f"{name}-{n}"


def pending(ctx: RunContext) -> SampleRequest | None:
    """The main process takes the request file, if there is one; a broken one is a warning."""
    if not ctx.is_main:
        return None
    try:
        return take_request(ctx.run_dir)
    except ValueError as exc:
        ctx.log(f"sample request ignored: {exc}", "warning")
        return None


def serve(ctx: RunContext, models: Models, step: int) -> None:
    """A pending request's samples at this step (every process calls it, once per step)."""
    request = pending(ctx)
    if not ctx.any_process(request is not None):
        return
    prompts: list[str] = []
    if request is not None:
        prompts = request.prompts or list(ctx.cfg.evaluation.prompts)
        if prompts:
            what = "the config's prompts" if not request.prompts else f"{len(prompts)} prompt(s)"
            ctx.log(f"samples asked for at step {step}: {what}")
        else:
            ctx.log(
                "sample request without a prompt, and evaluation.prompts is empty: "
                "nothing to sample",
                "warning",
            )
    folder = folder_for(ctx.run_dir, step) if ctx.is_main else None
    with rng_kept():
        samples.sample_or_warn(ctx, models, step, prompts=prompts, folder=folder, requested=True)
