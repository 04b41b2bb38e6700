"""Load the parts of a Stable Diffusion pipeline for training, and attach LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.errors import DreamboothError, exit_code_for
from engine.sources import is_local_path, resolve_model

UNET_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


class ModelLoadError(DreamboothError, RuntimeError):
    """A model that cannot be loaded; `kind` is "config" (bad path, exit 2) or "network" (hub,
    exit 1)."""

    def __init__(self, message: str, kind: str = "config", hint: str = "") -> None:
        super().__init__(message, kind=kind, hint=hint, exit_code=exit_code_for(kind))


@dataclass
class Components:
    tokenizer: Any
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: Any  # DDPM, for training
    source: str  # the resolved model path or hub id
    sampler: Any = None  # the pipeline's own scheduler (its class and config), for inference


def _from_pretrained(cls: Any, source: str, subfolder: str, revision: str | None) -> Any:
    try:
        return cls.from_pretrained(source, subfolder=subfolder, revision=revision)
    except OSError as exc:
        if is_local_path(source) or Path(source).exists():
            raise ModelLoadError(
                f"{source}: cannot load '{subfolder}' ({exc.__class__.__name__})",
                hint="the folder must be a diffusers Stable Diffusion pipeline "
                "(model_index.json with tokenizer/, text_encoder/, vae/, unet/, scheduler/)",
            ) from exc
        raise ModelLoadError(
            f"cannot download '{source}' from the Hugging Face Hub",
            kind="network",
            hint="check the network (and HF_HUB_OFFLINE), the model id and revision, "
            "or use a local diffusers folder",
        ) from exc


def load_components(model: str, revision: str | None = None) -> Components:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    source = resolve_model(model)
    tokenizer = _from_pretrained(CLIPTokenizer, source, "tokenizer", revision)
    text_encoder = _from_pretrained(CLIPTextModel, source, "text_encoder", revision)
    vae = _from_pretrained(AutoencoderKL, source, "vae", revision)
    unet = _from_pretrained(UNet2DConditionModel, source, "unet", revision)
    noise_scheduler = _from_pretrained(DDPMScheduler, source, "scheduler", revision)
    sampler = pipeline_scheduler(source, revision) or noise_scheduler
    return Components(tokenizer, text_encoder, vae, unet, noise_scheduler, source, sampler)


def pipeline_scheduler(source: str, revision: str | None = None) -> Any:
    """The scheduler as `StableDiffusionPipeline.from_pretrained(source)` loads it (the class
    model_index.json names, its own config), or None where it cannot be read.

    final/ saves it and validation samples derive their sampler from its config, exactly as
    `generate` derives its sampler from a loaded pipeline's: same sampler config, same images.
    """
    import diffusers
    from diffusers import DiffusionPipeline

    try:
        index = DiffusionPipeline.load_config(source, revision=revision)
        cls = getattr(diffusers, index["scheduler"][1])
        return cls.from_pretrained(source, subfolder="scheduler", revision=revision)
    except Exception:  # no model_index.json or an unknown class: the DDPM config serves
        return None


def add_lora(
    unet: torch.nn.Module, rank: int, alpha: int, text_encoder: torch.nn.Module | None = None
) -> None:
    """Attach peft LoRA adapters (UNet attention projections; the text encoder's when given)."""
    from peft import LoraConfig, inject_adapter_in_model

    unet.add_adapter(
        LoraConfig(
            r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=UNET_LORA_TARGETS
        )
    )
    if text_encoder is not None:
        # peft directly: transformers' add_adapter may demand a newer peft than PyPI has.
        inject_adapter_in_model(
            LoraConfig(
                r=rank,
                lora_alpha=alpha,
                init_lora_weights="gaussian",
                target_modules=TEXT_LORA_TARGETS,
            ),
            text_encoder,
        )


def lora_state_dicts(unet: torch.nn.Module, text_encoder: torch.nn.Module | None) -> dict:
    """The adapters in diffusers' format, ready for save_lora_weights."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    out = {"unet_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))}
    if text_encoder is not None:
        out["text_encoder_lora_layers"] = convert_state_dict_to_diffusers(
            get_peft_model_state_dict(text_encoder)
        )
    return out


def lora_metadata(unet: torch.nn.Module, text_encoder: torch.nn.Module | None) -> dict:
    """The adapters' peft configs (rank, alpha, target modules...) for the file's metadata.

    Without them a loader assumes alpha = rank: a LoRA trained with lora_alpha != lora_rank
    would reload with a different strength than the one trained and sampled.
    """
    out = {"unet_lora_adapter_metadata": unet.peft_config["default"].to_dict()}
    if text_encoder is not None:
        out["text_encoder_lora_adapter_metadata"] = text_encoder.peft_config["default"].to_dict()
    return out


def save_lora(folder: Path, unet: torch.nn.Module, text_encoder: torch.nn.Module | None) -> Path:
    """pytorch_lora_weights.safetensors in diffusers' format, with the adapter metadata that
    `load_lora_weights` reads back (diffusers >= 0.35)."""
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline.save_lora_weights(
        folder,
        safe_serialization=True,
        **lora_state_dicts(unet, text_encoder),
        **lora_metadata(unet, text_encoder),
    )
    return folder / "pytorch_lora_weights.safetensors"
