"""Measuring a training step, for the training benchmarks (bench_train, bench_batch): device
sync, peak memory (GPU: torch.cuda.max_memory_allocated; CPU: the process's peak RSS, VmHWM),
the UNet's forward + backward FLOPs at the benchmark's shapes and the datasheet peak for MFU.
"""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import torch

from benchmarks.common import peak_rss

# Dense bf16/fp16 tensor-core peak of an H100/H200 SXM (NVIDIA datasheet: 989.4 TFLOP/s without
# sparsity); the tf32 peak is half of it. This workplace measured 769-798 TFLOP/s for a large
# bf16 matmul on an H200 (library/device/KINDS.md): MFU against the datasheet figure is lower.
PEAK_FLOPS = {"H100": 989.4e12, "H200": 989.4e12}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def read_peak(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return peak_rss()


# ------------------------------------------------------------------------------ FLOPs
def plain_unet(unet):
    unet = getattr(unet, "_orig_mod", unet)
    return getattr(unet, "module", unet)


def unet_train_flops(unet, cfg, device: torch.device) -> int:
    """FLOPs of one UNet forward + backward at the benchmark's shapes (no recomputation)."""
    from torch.utils.flop_counter import FlopCounterMode

    tc = cfg.train
    unet = plain_unet(unet)
    ckpt = bool(getattr(unet, "is_gradient_checkpointing", False))
    if ckpt:
        unet.disable_gradient_checkpointing()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(tc.mixed_precision)
    bs, side = tc.train_batch_size, tc.resolution // 8
    gen = torch.Generator(device).manual_seed(0)
    x = torch.randn((bs, unet.config.in_channels, side, side), generator=gen, device=device)
    ctx = torch.randn((bs, 77, unet.config.cross_attention_dim), generator=gen, device=device)
    t = torch.randint(0, 1000, (bs,), generator=gen, device=device)
    added = added_conditioning(unet.config, bs, tc.resolution, gen, device)
    autocast = (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast:
            out = unet(x, t, ctx, added_cond_kwargs=added, return_dict=False)[0]
        out.float().square().mean().backward()
    for p in unet.parameters():
        p.grad = None
    if ckpt:
        unet.enable_gradient_checkpointing()
    return int(counter.get_total_flops())


def added_conditioning(config, bs: int, resolution: int, gen, device) -> dict | None:
    """SDXL's added conditioning (pooled text embedding, six time ids) for a UNet that takes
    it (`addition_embed_type: text_time`), else None."""
    if config.addition_embed_type != "text_time":
        return None
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    ids = [resolution, resolution, 0, 0, resolution, resolution]
    return {
        "text_embeds": torch.randn((bs, pooled), generator=gen, device=device),
        "time_ids": torch.tensor([ids] * bs, dtype=torch.float32, device=device),
    }


def peak_flops(device: torch.device, mixed_precision: str) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "no peak figure for a CPU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            if mixed_precision == "no":
                return value / 2, f"{key} dense tf32 datasheet peak {value / 2e12:.1f} TFLOP/s"
            return value, f"{key} dense bf16/fp16 datasheet peak {value / 1e12:.1f} TFLOP/s"
    return None, f"no peak figure known for {name}"
