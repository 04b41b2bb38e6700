"""A Stable Diffusion pipeline (1.x, 2.x or XL) as one `.safetensors` in the original checkpoint
layout (the names A1111, Forge and ComfyUI read): UNet `model.diffusion_model.*`, VAE
`first_stage_model.*`, and the text encoder(s): SD 1.x's CLIP `cond_stage_model.transformer.*`,
SD 2.x's OpenCLIP `cond_stage_model.model.*`, SDXL's two `conditioner.embedders.{0,1}.*`
(engine.export.original_clip).

diffusers has only the other direction (diffusers.loaders.single_file_utils). The names below
are its forward converters' rules read backwards: the flat renames come from its own table
(DIFFUSERS_TO_LDM_MAPPING), the block arithmetic is the inverse of convert_ldm_unet_checkpoint's
and convert_ldm_vae_checkpoint's. Every export is then run through those forward converters and
must give back every tensor of the pipeline, unchanged, before the file is written: the library
is the judge of the layout, not this module.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from engine.export.original_clip import clip_state, converted_back, text_encoders_original
from engine.export.request import LayoutError

__all__ = ["LayoutError", "original_tensors", "to_original", "unet_key", "vae_key", "verify"]

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
# diffusers' ResnetBlock2D names -> the original ResBlock's (the inverse of
# update_unet_resnet_ldm_to_diffusers' renames)
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
# the VAE's mid attention (inverse of update_vae_attentions_ldm_to_diffusers' renames)
_VAE_ATTENTION = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_UNET_RESNET.get(head, head)}.{tail}"


def unet_key(key: str, config: dict[str, Any]) -> str:
    """One diffusers UNet2DConditionModel key -> its original name (without the prefix)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    mapping = DIFFUSERS_TO_LDM_MAPPING["unet"]
    flat = dict(mapping["layers"])
    # SDXL's added conditioning (text_time) and class embeddings: `label_emb.0.*`, as the
    # forward converter reads them only for these config values
    if config.get("addition_embed_type") == "text_time":
        flat.update(mapping["addition_embed_type"])
    if config.get("class_embed_type") in ("timestep", "projection"):
        flat.update(mapping["class_embed_type"])
    if key in flat:
        return flat[key]
    per = config["layers_per_block"] + 1  # original blocks per diffusers block (+ the sampler)
    if m := re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        b, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = b * per + i + 1
        return (
            f"input_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"input_blocks.{index}.1.{rest}")
        )
    if m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * per}.0.op.{m[2]}"
    if m := re.match(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.match(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        b, kind, i, rest = int(m[1]), m[2], int(m[3]), m[4]
        index = b * per + i
        return (
            f"output_blocks.{index}.0.{_resnet(rest)}"
            if kind == "resnets"
            else (f"output_blocks.{index}.1.{rest}")
        )
    if m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        b = int(m[1])
        has_attention = "CrossAttn" in config["up_block_types"][b]
        return f"output_blocks.{b * per + per - 1}.{2 if has_attention else 1}.conv.{m[2]}"
    raise LayoutError(f"UNet weight {key!r} has no place in the original layout")


def vae_key(key: str, config: dict[str, Any]) -> str:
    """One diffusers AutoencoderKL key -> its original name (without the prefix)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    flat = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in flat:
        return flat[key]
    n_up = len(config["up_block_types"])
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        block = n_up - 1 - int(m[1])
        return f"decoder.up.{block}.block.{m[2]}.{m[3].replace('conv_shortcut', 'nin_shortcut')}"
    if m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        rest = m[3].replace("conv_shortcut", "nin_shortcut")
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{rest}"
    if m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        if m[2] in _VAE_ATTENTION:
            return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
    raise LayoutError(f"VAE weight {key!r} has no place in the original layout")


def to_original(pipe, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The pipeline's UNet, VAE and text encoder(s) under their original names, in `dtype`."""
    return {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in original_tensors(pipe).items()
    }


def original_tensors(pipe) -> dict[str, torch.Tensor]:
    """to_original's tensors as the modules hold them (their device and dtype)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in pipe.unet.state_dict().items():
        out[UNET_PREFIX + unet_key(key, pipe.unet.config)] = value
    for key, value in pipe.vae.state_dict().items():
        name = vae_key(key, pipe.vae.config)
        if ".mid.attn_1." in name and value.ndim == 2:
            value = value[:, :, None, None]  # original VAE attention: 1x1 convolutions
        out[VAE_PREFIX + name] = value
    out.update(text_encoders_original(pipe))
    return out


def verify(original: dict[str, torch.Tensor], pipe) -> None:
    """diffusers' forward converters on `original` must give back every weight of each module
    (same names, same values up to `original`'s dtype); LayoutError otherwise."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    back = {
        "unet": (convert_ldm_unet_checkpoint(original, pipe.unet.config), pipe.unet.state_dict()),
        "vae": (convert_ldm_vae_checkpoint(original, pipe.vae.config), pipe.vae.state_dict()),
    }
    for name, (converted, module) in converted_back(original, pipe).items():
        back[name] = (converted, clip_state(module))
    for name, (converted, expected) in back.items():
        if set(converted) != set(expected):
            odd = sorted(set(converted) ^ set(expected))
            raise LayoutError(f"{name}: {len(odd)} weights do not round-trip (e.g. {odd[0]})")
        for key, value in expected.items():
            got = converted[key]
            want = value.detach().to("cpu", got.dtype)
            if got.shape != want.shape or not torch.equal(got, want):
                raise LayoutError(f"{name}: weight {key} does not round-trip")
