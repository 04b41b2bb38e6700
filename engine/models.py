"""Stable Diffusion 1.x/2.x components for training and LoRA adapters: engine.families.sd's,
under the names the engine used before model families (kept for callers and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.families.base import Components, ModelLoadError
from engine.families.lora import LoraSpec, add_lora_adapters
from engine.families.sd import SD, TEXT_LORA_TARGETS, UNET_LORA_TARGETS

__all__ = [
    "TEXT_LORA_TARGETS",
    "UNET_LORA_TARGETS",
    "Components",
    "ModelLoadError",
    "add_lora",
    "load_components",
    "lora_metadata",
    "lora_state_dicts",
    "save_lora",
]


def _encoders(text_encoder: Any | None) -> dict[str, Any]:
    return {} if text_encoder is None else {"text_encoder": text_encoder}


def load_components(model: str, revision: str | None = None) -> Components:
    """The SD 1.x/2.x modules of `model` (hub id, local folder or builtin:tiny)."""
    return SD.load(model, revision)


def add_lora(unet: Any, rank: int, alpha: int, text_encoder: Any | None = None) -> None:
    """Attach peft LoRA adapters (UNet attention projections; the text encoder's when given)."""
    add_lora_adapters(unet, LoraSpec(rank, alpha), [] if text_encoder is None else [text_encoder])


def lora_state_dicts(unet: Any, text_encoder: Any | None) -> dict:
    """The adapters' weights, ready for save_lora_weights."""
    return SD.lora_state_dicts(unet, _encoders(text_encoder))


def lora_metadata(unet: Any, text_encoder: Any | None) -> dict:
    """The adapters' peft configs for the file's metadata (see ModelFamily.lora_metadata)."""
    return SD.lora_metadata(unet, _encoders(text_encoder))


def save_lora(folder: Path, unet: Any, text_encoder: Any | None) -> Path:
    """pytorch_lora_weights.safetensors in diffusers' format, with the adapter metadata."""
    return SD.save_lora(folder, unet, _encoders(text_encoder))
