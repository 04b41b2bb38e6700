"""The tiny SDXL built in code (engine/tiny_sdxl.py) and the full-size SDXL architecture's
configuration (benchmarks/sdxl_arch.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from safetensors.torch import load_file

PARTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _weights(model: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p: load_file(next((model / p).glob("*.safetensors"))) for p in PARTS}


def test_tiny_sdxl_loads_in_the_sdxl_pipeline_and_makes_an_image(tiny_sdxl_dir):
    from diffusers import StableDiffusionXLPipeline

    model = tiny_sdxl_dir / "model"
    index = json.loads((model / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    pipe = StableDiffusionXLPipeline.from_pretrained(model, local_files_only=True)
    unet = pipe.unet.config
    assert unet.addition_embed_type == "text_time"
    pooled = pipe.text_encoder_2.config.projection_dim
    assert unet.projection_class_embeddings_input_dim == pooled + 6 * unet.addition_time_embed_dim
    assert unet.cross_attention_dim == (
        pipe.text_encoder.config.hidden_size + pipe.text_encoder_2.config.hidden_size
    )
    assert pipe.tokenizer_2.pad_token == "!"
    assert pipe.watermark is None
    image = pipe(
        "a photo of sks dog",
        num_inference_steps=2,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    pixels = np.asarray(image)
    assert image.size == (32, 32)
    assert pixels.std() > 0  # an image, not a blank


def test_tiny_sdxl_same_seed_gives_identical_weights(tiny_sdxl_dir, tmp_path):
    from engine.tiny_sdxl import build_pipeline

    build_pipeline(tmp_path / "again")
    cached, again = _weights(tiny_sdxl_dir / "model"), _weights(tmp_path / "again")
    for part in PARTS:
        assert cached[part].keys() == again[part].keys(), part
        for name, tensor in cached[part].items():
            assert torch.equal(tensor, again[part][name]), f"{part}/{name}"
    # the two encoders are two models, not one copied: same shapes, different weights
    one, two = (
        next(t for k, t in cached[p].items() if k.endswith("token_embedding.weight"))
        for p in ("text_encoder", "text_encoder_2")
    )
    assert one.shape == two.shape and not torch.equal(one, two)


def test_sdxl_arch_has_sdxl_base_parameter_counts():
    """The full-size configs, built on the meta device (no memory, no weights): the published
    parameter counts of stable-diffusion-xl-base-1.0's components."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from benchmarks.sdxl_arch import configs

    cfg = configs(SimpleNamespace(bos_token_id=0, eos_token_id=1, pad_token_id=1))
    with torch.device("meta"):
        models = {
            "unet": UNet2DConditionModel(**cfg["unet"]),
            "vae": AutoencoderKL(**cfg["vae"]),
            "text_encoder": CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"])),
            "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"])),
        }
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    assert counts == {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    }


def test_builtin_tiny_sdxl_is_a_model_source_built_in_the_cache(tiny_sdxl_dir, tmp_path):
    from engine import sources
    from engine.config import check_paths, load_config
    from engine.model_family import read_model_index

    name = "builtin:tiny-sdxl"
    assert sources.kind_of(name) == "builtin"
    assert not sources.is_hub_id(name)
    assert sources.resolve_model(name) == str(tiny_sdxl_dir / "model")
    assert read_model_index(name)["_class_name"] == "StableDiffusionXLPipeline"
    config = tmp_path / "c.yaml"
    config.write_text(
        f"train:\n  model: {name}\n  instance_data: builtin:tiny\n  instance_prompt: a sks dog\n"
    )
    check_paths(load_config(config), str(config))  # a builtin model passes the path check
