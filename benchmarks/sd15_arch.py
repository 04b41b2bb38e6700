"""The Stable Diffusion 1.5 architecture at full size, random weights, written in code.

UNet (860M parameters), CLIP ViT-L/14 text encoder (123M) and the SD VAE (84M) with the
configurations of stable-diffusion-v1-5, initialised from a fixed seed and saved as an ordinary
diffusers folder, so the engine loads it like any model. Nothing is downloaded: the tokenizer is
the tiny model's (engine.tiny.write_tokenizer); the text encoder keeps CLIP's 49408-token
embedding table, of which the tokenizer uses the first few hundred ids.

    python -m benchmarks.sd15_arch DIR        # writes DIR/model and DIR/images
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

VERSION = 1
SEED = 0


def default_dir() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / f"sd15-arch-v{VERSION}"


def unet_config() -> dict:
    return {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        "up_block_types": (
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "act_fn": "silu",
        "downsample_padding": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "mid_block_scale_factor": 1,
        "center_input_sample": False,
    }


def vae_config() -> dict:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "act_fn": "silu",
        "sample_size": 512,
        "scaling_factor": 0.18215,
    }


def text_config(tokenizer) -> dict:
    return {
        "vocab_size": 49408,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "projection_dim": 768,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def build_pipeline(folder: Path, device: str | None = None) -> None:
    """Write the SD1.5-architecture pipeline folder (fp32 safetensors, about 4.3 GB)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from engine.tiny import save_pipeline, write_tokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok_dir = folder.parent / (folder.name + "-tokenizer")
    write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    with torch.device(device):  # initialising 1B parameters is much faster on a GPU
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel(**unet_config())
        torch.manual_seed(SEED)
        vae = AutoencoderKL(**vae_config())
        torch.manual_seed(SEED)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(tokenizer)))
    save_pipeline(folder, tokenizer, text_encoder.to("cpu"), vae.to("cpu"), unet.to("cpu"))
    shutil.rmtree(tok_dir, ignore_errors=True)


def ensure_sd15_arch(target: str | Path | None = None, device: str | None = None) -> Path:
    """Build DIR/model (and DIR/images, 512 px concept images) once; return DIR."""
    from engine.tiny import write_images

    target = Path(target) if target else default_dir()
    if (target / "model" / "model_index.json").exists() and (target / "images").is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sd15-build-", dir=target.parent))
    try:
        build_pipeline(tmp / "model", device)
        write_images(tmp / "images", size=512)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def parameter_counts(
    model_dir: str | Path, parts: tuple[str, ...] = ("unet", "text_encoder", "vae")
) -> dict[str, int]:
    """Parameters per component, read from the saved safetensors headers (no weights loaded)."""
    import json
    import struct

    counts = {}
    for part in parts:
        total = 0
        for f in sorted((Path(model_dir) / part).glob("*.safetensors")):
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
            for name, meta in header.items():
                if name != "__metadata__":
                    size = 1
                    for d in meta["shape"]:
                        size *= d
                    total += size
        counts[part] = total
    return counts


if __name__ == "__main__":
    out = ensure_sd15_arch(sys.argv[1] if len(sys.argv) > 1 else None)
    print(out, parameter_counts(out / "model"))
