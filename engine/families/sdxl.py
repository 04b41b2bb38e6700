"""Stable Diffusion XL: two CLIP text encoders, pooled text embeddings and per-image time ids.

As SDXL was trained (and as StableDiffusionXLPipeline conditions at inference): each encoder's
penultimate hidden states, concatenated along the feature axis, are the UNet's
encoder_hidden_states; the second encoder's projected pooled output and six "time ids" per
image (original height and width, crop top and left, target height and width) are its added
conditioning. SDXL's VAE overflows in fp16, so it runs in fp32 whatever the mixed precision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.families.base import Components, Conditioning, ModelFamily, PromptEmbeds, SampleGeometry
from engine.families.sd import tokenize
from engine.sources import BUILTIN_TINY_SDXL


def time_ids(geometry: SampleGeometry) -> list[int]:
    """One image's added time ids, in SDXL's order: original size, crop top-left, target size."""
    return [*geometry.original_size, *geometry.crop_top_left, *geometry.target_size]


class StableDiffusionXL(ModelFamily):
    name = "sdxl"
    label = "Stable Diffusion XL"
    pipeline_classes = ("StableDiffusionXLPipeline",)
    component_classes = {
        "tokenizer": ("CLIPTokenizer", "CLIPTokenizerFast"),
        "tokenizer_2": ("CLIPTokenizer", "CLIPTokenizerFast"),
        "text_encoder": ("CLIPTextModel",),
        "text_encoder_2": ("CLIPTextModelWithProjection",),
        "vae": ("AutoencoderKL",),
        "unet": ("UNet2DConditionModel",),
        "scheduler": None,  # any scheduler class: the engine builds a DDPMScheduler from its config
    }
    example = "stabilityai/stable-diffusion-xl-base-1.0"
    # No invisible watermark: validation samples and `generate` must give the same pixels
    # whether or not the optional package happens to be installed.
    pipeline_extras = {"add_watermarker": False}
    generate_extras = {"add_watermarker": False}
    card_tags = ("stable-diffusion-xl", "stable-diffusion-xl-diffusers")
    loader_noun = "Stable Diffusion XL"
    builtin_models = (BUILTIN_TINY_SDXL,)
    conditions_on_geometry = True
    aspect_buckets_default = True

    def module_classes(self) -> dict[str, Any]:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        return {
            "tokenizer": CLIPTokenizer,
            "tokenizer_2": CLIPTokenizer,
            "text_encoder": CLIPTextModel,
            "text_encoder_2": CLIPTextModelWithProjection,
            "vae": AutoencoderKL,
            "unet": UNet2DConditionModel,
        }

    def vae_dtype(self, weight_dtype: Any) -> Any:
        """fp32: SDXL's VAE produces NaNs in fp16 (its config says force_upcast)."""
        import torch

        return torch.float32

    def encode_prompts(self, parts: Components, prompts: list[str], device: Any) -> PromptEmbeds:
        import torch

        hidden, pooled = [], None
        for tokenizer, encoder in zip(
            parts.tokenizers.values(), parts.text_encoders.values(), strict=True
        ):
            out = encoder(tokenize(tokenizer, prompts).to(device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])  # SDXL conditions on the penultimate layer
            if out[0].ndim == 2:  # the projected pooled output (CLIPTextModelWithProjection)
                pooled = out[0]
        return PromptEmbeds(torch.cat(hidden, dim=-1), pooled)

    def conditioning(
        self, embeds: PromptEmbeds, geometry: list[SampleGeometry] | None = None
    ) -> Conditioning:
        import torch

        if geometry is None or len(geometry) != embeds.hidden.shape[0]:
            raise ValueError("SDXL conditions on each image's geometry: give one per prompt row")
        ids = torch.tensor(
            [time_ids(g) for g in geometry],
            dtype=embeds.hidden.dtype,
            device=embeds.hidden.device,
        )
        return Conditioning(embeds.hidden, {"text_embeds": embeds.pooled, "time_ids": ids})

    def build_tiny(self, folder: Path) -> None:
        from engine.tiny_sdxl import build_pipeline

        build_pipeline(folder)


SDXL = StableDiffusionXL()
