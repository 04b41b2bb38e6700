"""Stable Diffusion 1.x/2.x: one CLIP text encoder, its last hidden state as the conditioning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.families.base import Components, Conditioning, ModelFamily, PromptEmbeds, SampleGeometry
from engine.families.lora import DEFAULT_TARGETS, TARGETS
from engine.sources import BUILTIN_TINY, BUILTIN_TINY_SHAPES

# The attention projections (the default lora_targets; engine.families.lora has every set).
UNET_LORA_TARGETS, TEXT_LORA_TARGETS = TARGETS[DEFAULT_TARGETS]


def tokenize(tokenizer: Any, prompts: list[str]) -> Any:
    """Token ids padded (and truncated) to the tokenizer's length, as the pipelines do."""
    return tokenizer(
        prompts,
        padding="max_length",
        truncation=True,
        max_length=tokenizer.model_max_length,
        return_tensors="pt",
    ).input_ids


class StableDiffusion(ModelFamily):
    name = "sd"
    label = "Stable Diffusion 1.x/2.x"
    pipeline_classes = ("StableDiffusionPipeline",)
    component_classes = {
        "tokenizer": ("CLIPTokenizer", "CLIPTokenizerFast"),
        "text_encoder": ("CLIPTextModel",),
        "vae": ("AutoencoderKL",),
        "unet": ("UNet2DConditionModel",),
        "scheduler": None,  # any scheduler class: the engine builds a DDPMScheduler from its config
    }
    example = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    pipeline_extras = {
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    card_tags = ("stable-diffusion",)
    builtin_models = (BUILTIN_TINY, BUILTIN_TINY_SHAPES)

    def module_classes(self) -> dict[str, Any]:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        return {
            "tokenizer": CLIPTokenizer,
            "text_encoder": CLIPTextModel,
            "vae": AutoencoderKL,
            "unet": UNet2DConditionModel,
        }

    def encode_prompts(self, parts: Components, prompts: list[str], device: Any) -> PromptEmbeds:
        ids = tokenize(parts.tokenizer, prompts).to(device)
        return PromptEmbeds(parts.text_encoder(ids)[0])

    def conditioning(
        self, embeds: PromptEmbeds, geometry: list[SampleGeometry] | None = None
    ) -> Conditioning:
        return Conditioning(embeds.hidden)

    def build_tiny(self, folder: Path) -> None:
        from engine.tiny import build_pipeline

        build_pipeline(folder)


SD = StableDiffusion()
