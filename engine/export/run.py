"""Carry out a resolved export: load what it needs, convert, write the output whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from engine.export.request import ExportRequest

TORCH_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def load_run_pipeline(req: ExportRequest):
    """The run's model on the CPU in fp32, as `generate` loads it (final/ or a checkpoint; a
    LoRA run: its base with the LoRA applied); with req.fuse the LoRA merged into the weights."""
    from engine.generate import load_pipeline

    checkpoint = req.checkpoint
    pipe = load_pipeline(run_dir=req.run_dir, checkpoint=checkpoint, device="cpu", dtype="fp32")
    if req.fuse:
        pipe.fuse_lora(lora_scale=1.0)
        pipe.unload_lora_weights()  # the merged weights stay; the adapter layers go
    return pipe


def sdxl_unet_config(req: ExportRequest) -> dict | None:
    """The base model's UNet config for an SDXL run (the kohya names need its block layout),
    None for SD 1.x/2.x; one line when it cannot be read."""
    from engine.export.request import SDXL_PIPELINE, ExportError

    if req.pipeline != SDXL_PIPELINE:
        return None
    from diffusers import UNet2DConditionModel

    from engine.sources import resolve_model

    try:
        return dict(
            UNet2DConditionModel.load_config(
                resolve_model(req.base_model), subfolder="unet", revision=req.revision
            )
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"cannot read the UNet config of the run's base model {req.base_model!r} ({first}); "
            "the kohya names of an SDXL LoRA need it: make the model reachable (its folder, or "
            "the hub cache) and export again"
        ) from None


def _lora_as_diffusers(req: ExportRequest, dtype: torch.dtype) -> None:
    """The run's own LoRA file, in `dtype`, with its adapter metadata kept."""
    from safetensors import safe_open

    from engine.export.files import save_safetensors

    with safe_open(str(req.lora_file), framework="pt") as fh:
        state = {k: fh.get_tensor(k).to(dtype).contiguous() for k in fh.keys()}
        meta = fh.metadata() or {}
    save_safetensors(state, req.output, meta)


def export(req: ExportRequest, log: Callable[[str], None] = print) -> Path:
    """Write req.output; raises ExportError (or GenerateError from loading the run)."""
    from engine.export.files import save_folder, save_safetensors

    dtype = TORCH_DTYPES[req.dtype]
    if req.method == "lora" and not req.fuse:
        if req.format == "kohya":
            from engine.export.kohya import export_kohya

            n = export_kohya(req.lora_file, req.output, dtype, sdxl_unet_config(req))
            log(f"kohya LoRA: {n} modules")
        else:
            _lora_as_diffusers(req, dtype)
        return req.output
    what = "the final model" if req.checkpoint is None else f"checkpoint {req.checkpoint}"
    log(f"loading {what}")
    pipe = load_run_pipeline(req)
    if req.format == "single-file":
        from engine.export.single_file import to_original, verify

        original = to_original(pipe, dtype)
        verify(original, pipe)
        save_safetensors(original, req.output, {"format": "pt"})
    else:
        from diffusers.utils import logging as dlogging

        dlogging.disable_progress_bar()  # "Writing model shards": the one line we print says it
        pipe.to(dtype=dtype)
        save_folder(
            lambda folder: pipe.save_pretrained(folder, safe_serialization=True), req.output
        )
    return req.output
