"""The Stable Diffusion XL architecture at full size, random weights, written in code.

UNet (2.6B parameters, `text_time` added conditioning), CLIP ViT-L/14 and OpenCLIP ViT-bigG/14
text encoders (123M and 695M) and the SDXL VAE (84M) with the configurations of
stable-diffusion-xl-base-1.0, initialised from a fixed seed and saved as an ordinary diffusers
folder by the tiny SDXL's builder (engine.tiny_sdxl), so the engine loads it like any model.
Nothing is downloaded: the tokenizers are the tiny model's; the encoders keep CLIP's
49408-token embedding tables, of which the tokenizers use the first few hundred ids.

    python -m benchmarks.sdxl_arch DIR        # writes DIR/model and DIR/images (1024 px)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

VERSION = 1


def default_dir() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / f"sdxl-arch-v{VERSION}"


def unet_config() -> dict[str, Any]:
    return {
        "sample_size": 128,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (320, 640, 1280),
        "layers_per_block": 2,
        "transformer_layers_per_block": (1, 2, 10),
        "attention_head_dim": (5, 10, 20),
        "use_linear_projection": True,
        "cross_attention_dim": 2048,  # 768 (CLIP-L) + 1280 (bigG), concatenated
        "addition_embed_type": "text_time",
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816,  # 1280 pooled + 6 time ids * 256
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "act_fn": "silu",
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }


def vae_config() -> dict[str, Any]:
    """SD's VAE architecture, with SDXL's retrained weights' scale and fp16 overflow flag."""
    from benchmarks.sd15_arch import vae_config as sd_vae

    return {**sd_vae(), "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}


def text_configs(tokenizer) -> tuple[dict[str, Any], dict[str, Any]]:
    """CLIP ViT-L/14 (quick_gelu) and OpenCLIP ViT-bigG/14 (gelu, 1280-d projection)."""
    ids = {
        "vocab_size": 49408,
        "max_position_embeddings": 77,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    one = {
        **ids,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "hidden_act": "quick_gelu",
        "projection_dim": 768,
    }
    two = {
        **ids,
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "num_hidden_layers": 32,
        "num_attention_heads": 20,
        "hidden_act": "gelu",
        "projection_dim": 1280,
    }
    return one, two


def configs(tokenizer) -> dict[str, Any]:
    te1, te2 = text_configs(tokenizer)
    return {"unet": unet_config(), "vae": vae_config(), "text_encoder": te1, "text_encoder_2": te2}


def ensure_sdxl_arch(target: str | Path | None = None, device: str | None = None) -> Path:
    """Build DIR/model (fp32 safetensors, about 14 GB) and DIR/images (1024 px) once; return DIR."""
    from engine.tiny import build_atomically, write_images
    from engine.tiny_sdxl import build_pipeline

    target = Path(target) if target else default_dir()
    if (target / "model" / "model_index.json").exists() and (target / "images").is_dir():
        return target
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"

    def build(tmp: Path) -> None:
        build_pipeline(tmp / "model", configs, device)  # 3.5B parameters: faster on a GPU
        write_images(tmp / "images", size=1024)

    return build_atomically(target, build, prefix=".sdxl-build-")


if __name__ == "__main__":
    from benchmarks.sd15_arch import parameter_counts

    out = ensure_sdxl_arch(sys.argv[1] if len(sys.argv) > 1 else None)
    print(out, parameter_counts(out / "model", ("unet", "text_encoder", "text_encoder_2", "vae")))
