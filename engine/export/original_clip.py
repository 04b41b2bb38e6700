"""Text encoders under their original checkpoint names, for engine.export.single_file.

Two layouts, as the original checkpoints hold them:
- OpenAI CLIP (SD 1.x's encoder, SDXL's first): the transformers names under `text_model.`,
  below a prefix (`cond_stage_model.transformer.`, `conditioner.embedders.0.transformer.`);
- OpenCLIP (SD 2.x's encoder, SDXL's second): `positional_embedding`, `ln_final`,
  `transformer.resblocks.N.attn.in_proj_weight` (q, k and v in one tensor), `text_projection`
  (transposed), below `cond_stage_model.model.` or `conditioner.embedders.1.model.`.

The OpenCLIP names are diffusers' own table (DIFFUSERS_TO_LDM_MAPPING["openclip"]) read
backwards, and its convert_open_clip_checkpoint must give every tensor back (single_file.verify).
"""

from __future__ import annotations

import re

import torch

from engine.export.request import LayoutError

_QKV = ("q_proj", "k_proj", "v_proj")


def is_open_clip(text_encoder) -> bool:
    """OpenCLIP-trained (SD 2.x's, SDXL's second: gelu) rather than OpenAI CLIP (quick_gelu)."""
    return getattr(text_encoder.config, "hidden_act", "quick_gelu") != "quick_gelu"


def clip_state(text_encoder) -> dict[str, torch.Tensor]:
    """The encoder's weights under `text_model.*` (and `text_projection.weight`): transformers 5
    saves a CLIPTextModel without the `text_model.` level that the original checkpoints (and
    diffusers' converters) have."""
    state = text_encoder.state_dict()
    if hasattr(text_encoder, "text_model"):
        return dict(state)
    return {(k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in state.items()}


def open_clip_tensors(text_encoder) -> dict[str, torch.Tensor]:
    """The encoder in the OpenCLIP layout (names without the checkpoint's prefix)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    flat = DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"]
    # forward: diffusers_key.replace(ldm, diffusers) for each pair in order; backwards: reversed
    pieces = [
        (d, o)
        for d, o in DIFFUSERS_TO_LDM_MAPPING["openclip"]["transformer"].items()
        if not d.startswith("transformer.")  # whole-name entries, handled by `flat`
    ]
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in clip_state(text_encoder).items():
        if key in flat:
            out[flat[key]] = value.T if flat[key] == "text_projection" else value
            continue
        if not key.startswith("text_model.encoder.layers."):
            raise LayoutError(f"text encoder weight {key!r} has no place in the OpenCLIP layout")
        name = key
        for diffusers_piece, original_piece in reversed(pieces):
            name = name.replace(diffusers_piece, original_piece)
        if m := re.fullmatch(r"(.+\.attn)\.(q_proj|k_proj|v_proj)\.(weight|bias)", name):
            fused.setdefault(f"transformer.{m[1]}.in_proj_{m[3]}", {})[m[2]] = value
        else:
            out[f"transformer.{name}"] = value
    for name, parts in fused.items():
        if set(parts) != set(_QKV):
            raise LayoutError(f"text encoder: {name} lacks one of q, k, v")
        out[name] = torch.cat([parts[p] for p in _QKV], dim=0)
    return out


def text_encoders_original(pipe) -> dict[str, torch.Tensor]:
    """The pipeline's text encoder(s) under their original names (prefix included)."""
    encoders = [pipe.text_encoder]
    if getattr(pipe, "text_encoder_2", None) is not None:
        encoders.append(pipe.text_encoder_2)
    out: dict[str, torch.Tensor] = {}
    for prefix, module in zip(prefixes(pipe), encoders, strict=True):
        if is_open_clip(module):
            out.update({prefix + k: v for k, v in open_clip_tensors(module).items()})
        else:
            out.update({prefix + k: v for k, v in clip_state(module).items()})
    return out


def prefixes(pipe) -> list[str]:
    """Where each text encoder goes: SDXL's two conditioner embedders, SD's cond_stage_model."""
    if getattr(pipe, "text_encoder_2", None) is not None:
        if is_open_clip(pipe.text_encoder) or not is_open_clip(pipe.text_encoder_2):
            raise LayoutError("an SDXL pipeline whose encoders are not CLIP-L and OpenCLIP")
        return ["conditioner.embedders.0.transformer.", "conditioner.embedders.1.model."]
    if is_open_clip(pipe.text_encoder):
        return ["cond_stage_model.model."]
    return ["cond_stage_model.transformer."]


def converted_back(original: dict[str, torch.Tensor], pipe) -> dict[str, tuple[dict, object]]:
    """Each text encoder's weights as diffusers' forward converters read them from `original`
    (names as clip_state's), beside the module they must equal."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_open_clip_checkpoint,
    )

    encoders = {"text encoder": pipe.text_encoder}
    if getattr(pipe, "text_encoder_2", None) is not None:
        encoders["text encoder 2"] = pipe.text_encoder_2
    back = {}
    for (name, module), prefix in zip(encoders.items(), prefixes(pipe), strict=True):
        if is_open_clip(module):
            converted = convert_open_clip_checkpoint(module, original, prefix=prefix)
        else:
            subset = {k: v for k, v in original.items() if k.startswith(prefix)}
            converted = convert_ldm_clip_checkpoint(subset)
        back[name] = (converted, module)
    return back
