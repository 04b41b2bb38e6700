"""The SDXL model family (engine/families/sdxl.py) against diffusers' own StableDiffusionXLPipeline
on the tiny SDXL: the same prompt embeddings, pooled embeddings and time ids the pipeline
conditions on, an fp32 VAE, and LoRA files the pipeline loads back with their strength."""

from __future__ import annotations

import json

import pytest
import torch

from engine.families import SampleGeometry
from engine.families.lora import LoraSpec
from engine.families.sdxl import SDXL

PROMPTS = ["a photo of sks dog", "a red circle on the beach"]


@pytest.fixture(scope="module")
def parts(tiny_sdxl_dir):
    return SDXL.load(str(tiny_sdxl_dir / "model"))


@pytest.fixture(scope="module")
def pipe(tiny_sdxl_dir):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(
        tiny_sdxl_dir / "model", **SDXL.pipeline_extras
    )


def test_sdxl_is_detected_from_model_index(tiny_sdxl_dir):
    index = json.loads((tiny_sdxl_dir / "model" / "model_index.json").read_text())
    assert SDXL.matches(index)
    assert SDXL.component_problem(index) is None
    no_second = {k: v for k, v in index.items() if k != "text_encoder_2"}
    assert "text_encoder_2 missing" in SDXL.component_problem(no_second)


@torch.no_grad()
def test_sdxl_prompt_embeddings_equal_the_pipelines(parts, pipe):
    ours = SDXL.encode_prompts(parts, PROMPTS, "cpu")
    hidden, _, pooled, _ = pipe.encode_prompt(PROMPTS, do_classifier_free_guidance=False)
    assert ours.hidden.shape == hidden.shape  # both encoders' penultimate states, concatenated
    assert torch.equal(ours.hidden, hidden)
    assert torch.equal(ours.pooled, pooled)  # the second encoder's projection


@torch.no_grad()
def test_sdxl_time_ids_equal_the_pipelines_per_image(parts, pipe):
    geometry = [
        SampleGeometry((48, 40), (3, 0), (32, 32)),
        SampleGeometry((32, 64), (0, 16), (32, 32)),
    ]
    embeds = SDXL.encode_prompts(parts, PROMPTS, "cpu")
    cond = SDXL.conditioning(embeds, geometry)
    projection = pipe.text_encoder_2.config.projection_dim
    for i, g in enumerate(geometry):
        want = pipe._get_add_time_ids(
            g.original_size, g.crop_top_left, g.target_size, embeds.hidden.dtype, projection
        )
        assert torch.equal(cond.added["time_ids"][i : i + 1], want)
    assert cond.added["text_embeds"] is embeds.pooled
    noisy = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    out = SDXL.predict(parts.unet, noisy, torch.tensor([10, 500]), cond)
    assert out.shape == noisy.shape
    with pytest.raises(ValueError, match="geometry"):
        SDXL.conditioning(embeds, None)


def test_sdxl_vae_stays_fp32_under_half_precision():
    assert SDXL.vae_dtype(torch.bfloat16) == torch.float32
    assert SDXL.vae_dtype(torch.float16) == torch.float32


def _perturbed_lora(parts, rank: int, alpha: int) -> None:
    SDXL.add_lora(parts.unet, LoraSpec(rank, alpha), parts.text_encoders)
    gen = torch.Generator().manual_seed(1)
    for module in (parts.unet, *parts.text_encoders.values()):
        for name, p in module.named_parameters():
            if "lora_B" in name:  # zero at init: give the adapters an effect
                p.data = torch.randn(p.shape, generator=gen) * 0.5


@torch.no_grad()
def test_sdxl_lora_file_loads_in_the_pipeline_with_its_alpha(tiny_sdxl_dir, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    parts = SDXL.load(str(tiny_sdxl_dir / "model"))
    _perturbed_lora(parts, rank=4, alpha=2)  # alpha != rank: only the metadata carries it
    path = SDXL.save_lora(tmp_path, parts.unet, parts.text_encoders)
    trained = SDXL.encode_prompts(parts, PROMPTS, "cpu")

    fresh = StableDiffusionXLPipeline.from_pretrained(
        tiny_sdxl_dir / "model", **SDXL.pipeline_extras
    )
    base, _, base_pooled, _ = fresh.encode_prompt(PROMPTS, do_classifier_free_guidance=False)
    fresh.load_lora_weights(path.parent, weight_name=path.name)
    hidden, _, pooled, _ = fresh.encode_prompt(PROMPTS, do_classifier_free_guidance=False)
    assert not torch.allclose(base, hidden)  # both encoders' adapters were saved and loaded
    assert not torch.allclose(base_pooled, pooled)
    torch.testing.assert_close(hidden, trained.hidden)
    torch.testing.assert_close(pooled, trained.pooled)

    geometry = [SampleGeometry((32, 32), (0, 0), (32, 32))] * len(PROMPTS)
    cond = SDXL.conditioning(trained, geometry)
    noisy = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 500])
    torch.testing.assert_close(
        SDXL.predict(fresh.unet, noisy, t, cond), SDXL.predict(parts.unet, noisy, t, cond)
    )
