"""The run's final model: final/ written to .tmp-final, then swapped in whole."""

from __future__ import annotations

import shutil
from typing import Any

import torch

from engine import faults
from engine.ckpt_check import disk_full_error
from engine.file_modes import usual_modes
from engine.outputs import FINAL, fsync_tree, on_cpu_fp32, replace_folder
from engine.runs import LORA_FILE
from engine.training.context import RunContext
from engine.training.errors import disk_error
from engine.training.setup import Models


def trained_pipeline(ctx: RunContext, models: Models, scheduler: Any) -> Any:
    """The models being trained as one pipeline of their family, with `scheduler` to sample."""
    return models.family.pipeline(models.parts(ctx.accelerator.unwrap_model), scheduler)


def final_pipeline(ctx: RunContext, models: Models) -> Any:
    """The trained pipeline as final/ holds it: the model's own scheduler (class and
    config), so `generate --run` derives the same sampler the validation samples used."""
    return trained_pipeline(ctx, models, models.components.sampler)


def save_final(ctx: RunContext, models: Models) -> dict[str, str | None]:
    """final/ (LoRA: the adapters file; full: the whole pipeline); the run's outputs."""
    tc = ctx.cfg.train
    ctx.phase("saving", "final model")
    outputs: dict[str, str | None] = {"final": None, "lora": None}
    if ctx.is_main:
        acc = ctx.accelerator
        final = ctx.run_dir / FINAL
        tmp = ctx.run_dir / f".tmp-{FINAL}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            if tc.method == "lora":
                unet = acc.unwrap_model(models.unet)
                models.family.save_lora(tmp, unet, models.trained_text_encoders(acc))
                outputs["lora"] = f"{FINAL}/{LORA_FILE}"
            else:
                pipe = final_pipeline(ctx, models)
                modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
                with on_cpu_fp32(*modules):
                    pipe.save_pretrained(tmp, safe_serialization=True)
            faults.hang_in_save(tc.max_train_steps)  # tests: a kill while saving final/
            fsync_tree(tmp)
            usual_modes(tmp)  # safetensors writes 0600: other users' A1111/ComfyUI could not read
            replace_folder(tmp, final)
        except BaseException as exc:  # no partial .tmp-final left, whatever happened
            full = exc if isinstance(exc, OSError) else disk_full_error(exc, tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            if full is None:
                raise
            raise disk_error(full, "final model", ctx.run_dir) from exc
        outputs["final"] = FINAL
    ctx.accelerator.wait_for_everyone()
    return outputs
