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


def base_config(req: ExportRequest, subfolder: str) -> dict:
    """One component's config.json of the run's base model (its folder, or the hub cache);
    ExportError in one line when it cannot be read."""
    from diffusers import UNet2DConditionModel

    from engine.export.request import ExportError
    from engine.sources import resolve_model

    try:
        # ConfigMixin.load_config reads any component's config.json (it checks no class)
        return dict(
            UNet2DConditionModel.load_config(
                resolve_model(req.base_model), subfolder=subfolder, revision=req.revision
            )
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"cannot read {subfolder}/config.json of the run's base model {req.base_model!r} "
            f"({first}); make the model reachable (its folder, or the hub cache) and export again"
        ) from None


def kohya_layout(req: ExportRequest) -> tuple[dict | None, bool]:
    """(the base's UNet config for an SDXL run, else None; whether the base is SD 2.x). The
    kohya names of an SDXL LoRA need the UNet's block layout; an SD 2.x file says so in its
    metadata (only that: when the text encoder's config cannot be read it is left out)."""
    from engine.export.request import SDXL_PIPELINE, ExportError

    if req.pipeline == SDXL_PIPELINE:
        return base_config(req, "unet"), False
    try:
        text_encoder = base_config(req, "text_encoder")
    except ExportError:
        return None, False
    # OpenCLIP (SD 2.x) is gelu, OpenAI CLIP (SD 1.x) quick_gelu (engine.export.original_clip)
    return None, text_encoder.get("hidden_act", "quick_gelu") != "quick_gelu"


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

            sdxl_unet, sd2 = kohya_layout(req)
            n = export_kohya(req.lora_file, req.output, dtype, sdxl_unet, sd2)
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
