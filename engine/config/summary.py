"""One line describing what a config will train (the Config screen and `check` show it)."""

from __future__ import annotations

from engine.buckets import buckets_said
from engine.config.schema import Config


def summary(cfg: Config, num_images: int | None = None, family: object | None = None) -> str:
    """One line describing the run, e.g. '5 images · 400 steps · effective batch 1 (1×1×1 GPU) ·
    full fine-tune · fp32 · prior preservation off · aspect buckets off (auto for Stable
    Diffusion 1.x/2.x)'; `family` (the model's, None: not known) resolves aspect_buckets: auto."""
    t = cfg.train
    parts = []
    if num_images is not None:
        parts.append(f"{num_images} image{'' if num_images == 1 else 's'}")
    parts.append(f"{t.max_train_steps} step{'' if t.max_train_steps == 1 else 's'}")
    effective = t.train_batch_size * t.gradient_accumulation_steps * t.num_processes
    gpus = "GPU" if t.num_processes == 1 else "GPUs"
    parts.append(
        f"effective batch {effective} "
        f"({t.train_batch_size}×{t.gradient_accumulation_steps}×{t.num_processes} {gpus})"
    )
    if t.method == "lora":
        parts.append(f"LoRA rank {t.lora_rank}")
    else:
        parts.append("full fine-tune")
    if t.train_text_encoder:
        parts.append("+ text encoder")
    parts.append("fp32" if t.mixed_precision == "no" else f"{t.mixed_precision} mixed")
    if t.prior_preservation:
        parts.append(f"prior preservation on ({t.num_class_images} class images)")
    else:
        parts.append("prior preservation off")
    parts.append(buckets_said(t.aspect_buckets, family))
    return " · ".join(parts)
