"""A small, complete Stable Diffusion pipeline built in code, and synthetic concept images.

Everything offline: the CLIP tokenizer's vocabulary is written here, every module is initialised
from a fixed seed, and the result is an ordinary diffusers folder that
`StableDiffusionPipeline.from_pretrained` loads. Tests, CI and the demo train on it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

# Where builtin:tiny points is the sources rule (re-exported here for the builders and tests).
from engine.sources import builtin_path, default_cache_dir

SEED = 0
RESOLUTION = 32
NUM_IMAGES = 6
#: The tiny model's VAE (AutoencoderKL) layout.
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "latent_channels": 4,
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "sample_size": RESOLUTION,
}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet (the mapping CLIPTokenizer uses)."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


# Words that get whole-word tokens, so prompts of the demo stay short and meaningful.
_WORDS = (
    "a photo of sks shape dog cat person the on in with and beach red blue green "
    "orange yellow circle square painting style picture"
).split()


def write_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer: byte alphabet, merges that spell the demo words, CLIP specials."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = list(_bytes_to_unicode().values())
    vocab: list[str] = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        # Left-to-right merges: w+o -> wo, wo+r -> wor, ..., the last symbol carries </w>.
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        current = symbols[0]
        for sym in symbols[1:]:
            pair = (current, sym)
            current = current + sym
            if pair not in merges:
                merges.append(pair)
            if current not in vocab:
                vocab.append(current)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")})
    )


def build_pipeline(folder: Path) -> None:
    """Write a diffusers StableDiffusionPipeline folder with tiny, seeded random weights."""
    import torch
    from diffusers import (
        AutoencoderKL,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = folder.parent / (folder.name + "-tokenizer")
    write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        sample_size=RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    torch.manual_seed(SEED)
    vae = AutoencoderKL(**VAE_CONFIG)
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=32,
        )
    )
    save_pipeline(folder, tokenizer, text_encoder, vae, unet)
    shutil.rmtree(tok_dir, ignore_errors=True)


def save_pipeline(
    folder: Path, tokenizer, text_encoder, vae, unet, prediction_type: str = "epsilon"
) -> None:
    """Save the parts as a StableDiffusionPipeline folder with SD1.5's PNDM scheduler."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)


def build_v_prediction(folder: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The tiny model as a v-prediction model (as SD 2.x 768-v): the same weights, its scheduler
    config set to prediction_type v_prediction, written to FOLDER. Returns FOLDER."""
    folder = Path(folder)
    source = ensure_tiny(cache_dir) / "model"
    shutil.copytree(source, folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config["prediction_type"] = "v_prediction"
    config_path.write_text(json.dumps(config, indent=2))
    return folder


def build_sd2(folder: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The tiny model in SD 2.x's architecture, written to FOLDER (returned): an OpenCLIP-like
    text encoder (hidden_act gelu, as SD 2.x's OpenCLIP ViT-H; a CLIPTextModel, as diffusers
    holds it), a UNet with linear transformer projections and a head size per level (as SD 2.x's
    `use_linear_projection`, `attention_head_dim: [5, 10, 20, 20]`); the tiny VAE, tokenizer and
    scheduler. Seeded random weights, like the tiny model's."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    source = ensure_tiny(cache_dir) / "model"
    shutil.copytree(source, folder)
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    unet_config = dict(UNet2DConditionModel.load_config(folder / "unet"))
    unet_config.update(use_linear_projection=True, attention_head_dim=[4, 8])
    text_config = CLIPTextConfig.from_pretrained(folder / "text_encoder")
    text_config.hidden_act = "gelu"
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel.from_config(unet_config)
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(text_config)
    vae = AutoencoderKL.from_pretrained(folder / "vae")
    shutil.rmtree(folder)
    save_pipeline(folder, tokenizer, text_encoder, vae, unet)
    return folder


def concept_image(index: int, size: int = 64, seed: int = SEED) -> Image.Image:
    """The demo concept: an orange ring with a blue dot, at varying places and sizes."""
    rng = random.Random(seed * 1000 + index)
    bg = tuple(rng.randint(200, 240) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    radius = rng.uniform(0.22, 0.34) * size
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    draw.ellipse(box, fill=(235, 110, 20), outline=(120, 40, 0), width=max(1, size // 32))
    inner = radius * 0.4
    draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=(30, 80, 200))
    return img


def write_images(folder: Path, n: int = NUM_IMAGES, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"shape-{i:02d}.png"
        concept_image(i, size).save(path)
        paths.append(path)
    return paths


def build(folder: str | Path) -> Path:
    """Write FOLDER/model (diffusers pipeline) and FOLDER/images (concept PNGs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    build_pipeline(folder / "model")
    write_images(folder / "images")
    return folder


def ensure_tiny(cache_dir: str | Path | None = None) -> Path:
    """Build the tiny model + images once into the cache (atomically) and return the folder."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    if (target / "model" / "model_index.json").exists() and (target / "images").is_dir():
        return target
    return build_atomically(target, build, prefix=".tiny-build-")


def build_atomically(target: Path, build: Callable[[Path], object], prefix: str) -> Path:
    """Run BUILD(tmp) in a temporary folder beside TARGET and move it into place, so a reader
    never sees a half-written model; if another process finished first, keep its folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race, or a partial folder is in the way
            if not (target / "model" / "model_index.json").exists():
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_built(cache_dir: str | Path | None = None) -> bool:
    return (builtin_path("model", cache_dir) / "model_index.json").exists()
