"""A small, complete Stable Diffusion XL pipeline built in code, from a fixed seed.

SDXL's parts at toy sizes: two CLIP text encoders (the second with a projection, whose pooled
output feeds the UNet's added conditioning), a UNet with `text_time` added conditioning whose
cross-attention width is the two encoders' hidden sizes together, a VAE, and SDXL's Euler
scheduler. Saved as an ordinary diffusers folder that `StableDiffusionXLPipeline.from_pretrained`
loads offline; every SDXL test trains on it. The tokenizers are the tiny SD model's
(engine.tiny.write_tokenizer); the second pads with "!" as SDXL's does.

The same builder writes the full-size architecture (benchmarks/sdxl_arch.py) from other configs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.sources import tiny_sdxl_cache_dir as default_cache_dir
from engine.tiny import VAE_CONFIG, build_atomically, write_tokenizer

SEED = 0
RESOLUTION = 32
#: Added conditioning: six numbers per image (original size, crop top-left, target size), each
#: embedded in ADDITION_TIME_EMBED_DIM, next to the second encoder's pooled output.
ADD_TIME_IDS = 6
ADDITION_TIME_EMBED_DIM = 8
TEXT_HIDDEN = (32, 32)  # the two encoders' hidden sizes: the UNet attends to both, concatenated
POOLED_DIM = 32  # the second encoder's projection


def unet_config() -> dict[str, Any]:
    return {
        "sample_size": RESOLUTION // 2,
        "in_channels": 4,
        "out_channels": 4,
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "attention_head_dim": (2, 4),
        "transformer_layers_per_block": (1, 1),
        "use_linear_projection": True,
        "cross_attention_dim": sum(TEXT_HIDDEN),
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": ADDITION_TIME_EMBED_DIM,
        "projection_class_embeddings_input_dim": POOLED_DIM
        + ADD_TIME_IDS * ADDITION_TIME_EMBED_DIM,
        "norm_num_groups": 32,
    }


def vae_config() -> dict[str, Any]:
    """The tiny model's VAE layout (engine.tiny.VAE_CONFIG) with SDXL's VAE settings."""
    return {
        **VAE_CONFIG,
        "scaling_factor": 0.13025,  # SDXL's VAE
        "force_upcast": True,  # SDXL's VAE overflows in fp16
    }


def text_configs(tokenizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two encoders: CLIP-L-like (quick_gelu) and bigG-like (gelu, with projection)."""
    common = {
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "max_position_embeddings": 77,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    one = {**common, "hidden_size": TEXT_HIDDEN[0], "hidden_act": "quick_gelu"}
    two = {**common, "hidden_size": TEXT_HIDDEN[1], "hidden_act": "gelu"}
    one["projection_dim"] = TEXT_HIDDEN[0]
    two["projection_dim"] = POOLED_DIM
    return one, two


def scheduler_config() -> dict[str, Any]:
    """stable-diffusion-xl-base-1.0's EulerDiscreteScheduler."""
    return {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "interpolation_type": "linear",
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "use_karras_sigmas": False,
    }


def write_tokenizers(root: Path) -> tuple[Path, Path]:
    """ROOT/tokenizer and ROOT/tokenizer_2: the tiny CLIP BPE twice, the second padding with
    "!" (as SDXL's second tokenizer does)."""
    one, two = root / "tokenizer", root / "tokenizer_2"
    write_tokenizer(one)
    write_tokenizer(two)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        data = json.loads((two / name).read_text())
        data["pad_token"] = "!"
        (two / name).write_text(json.dumps(data, indent=2))
    return one, two


Configs = dict[str, Any]


def tiny_configs(tokenizer) -> Configs:
    te1, te2 = text_configs(tokenizer)
    return {"unet": unet_config(), "vae": vae_config(), "text_encoder": te1, "text_encoder_2": te2}


def build_pipeline(
    folder: Path,
    configs: Callable[[Any], Configs] = tiny_configs,
    device: str | None = None,
) -> None:
    """Write a StableDiffusionXLPipeline folder with seeded random weights; CONFIGS(tokenizer)
    gives the unet, vae, text_encoder and text_encoder_2 configs (tiny by default)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    tok_root = folder.parent / (folder.name + "-tokenizers")
    one, two = write_tokenizers(tok_root)
    tokenizer, tokenizer_2 = CLIPTokenizer.from_pretrained(one), CLIPTokenizer.from_pretrained(two)
    cfg = configs(tokenizer)
    with torch.device(device or "cpu"):
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel(**cfg["unet"])
        torch.manual_seed(SEED)
        vae = AutoencoderKL(**cfg["vae"])
        torch.manual_seed(SEED)
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
        torch.manual_seed(SEED + 1)  # the two encoders differ even where their shapes agree
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"]))
    parts = {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
    }
    save_pipeline(
        folder,
        tokenizer,
        tokenizer_2,
        **{k: v.to("cpu") for k, v in parts.items()},
    )
    shutil.rmtree(tok_root, ignore_errors=True)


def save_pipeline(
    folder: Path, tokenizer, tokenizer_2, text_encoder, text_encoder_2, vae, unet
) -> None:
    """Save the parts as a StableDiffusionXLPipeline folder with SDXL's Euler scheduler."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**scheduler_config()),
        add_watermarker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)


def ensure_tiny_sdxl(cache_dir: str | Path | None = None) -> Path:
    """Build the tiny SDXL once into the cache (atomically); return the folder holding model/."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    if is_built(target):
        return target
    return build_atomically(
        target, lambda tmp: build_pipeline(tmp / "model"), prefix=".tiny-sdxl-build-"
    )


def is_built(cache_dir: str | Path | None = None) -> bool:
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return (root / "model" / "model_index.json").exists()
