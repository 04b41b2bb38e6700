"""A run's LoRA (diffusers format) in the kohya / A1111 layout: `lora_unet_*`, the text
encoders' `lora_te_*` (SD 1.x/2.x) or `lora_te1_*` / `lora_te2_*` (SDXL), `.lora_down` /
`.lora_up` and one `.alpha` tensor per module.

The key mapping is diffusers' own (`convert_state_dict_to_peft`, `convert_state_dict_to_kohya`).
Set right around it:

- the alpha the run trained with (the helper writes alpha = rank, which changes the LoRA's
  strength whenever lora_alpha != lora_rank);
- the text encoders' names: `text_model.` put back (transformers 5 saves CLIPTextModel keys
  without it); one encoder is `lora_te_` as kohya's sd-scripts and A1111 name it (the helper
  writes `lora_te1_`, an SDXL name); SDXL's two stay `lora_te1_` (CLIP-L) and `lora_te2_`
  (OpenCLIP bigG);
- SDXL's UNet modules under their original (sgm) names, `lora_unet_input_blocks_4_1_...`: kohya's
  sd-scripts trains SDXL on that UNet and writes these, A1111/Forge match SDXL files by them
  (its diffusers-name conversion is SD 1.x's block arithmetic), ComfyUI and diffusers read them.
  SD 1.x/2.x keep the diffusers names (`lora_unet_down_blocks_...`), as sd-scripts writes those.
  The renames are the single-file export's (engine.export.single_file.unet_key).

Before the file is written, diffusers' reader of kohya files (the loader's lora_state_dict) must
give every module back under its own name with its tensors: the library judges the layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from engine.export.request import ExportError

UNET = "unet"
TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
SDXL_MODEL_VERSION = "sdxl_base_v1-0"  # sd-scripts' ss_base_model_version for SDXL


def read_lora(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """The LoRA file's tensors and its adapters' configs per component ("unet", "text_encoder",
    "text_encoder_2") from the file's metadata (empty when the file has none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        state = {k: fh.get_tensor(k) for k in fh.keys()}
        meta = fh.metadata() or {}
    configs: dict[str, dict] = {}
    try:
        flat = json.loads(meta.get("lora_adapter_metadata") or "{}")
    except ValueError:
        flat = {}
    for key, value in flat.items():
        component, _, field = key.partition(".")
        configs.setdefault(component, {})[field] = value
    return state, configs


def _alpha(config: dict, module: str, rank: int) -> float:
    """The trained alpha of one module: peft's alpha_pattern, else lora_alpha, else the rank
    (what every loader assumes for a file without alphas)."""
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if module.endswith(pattern):
            return float(value)
    return float(config.get("lora_alpha") or rank)


def _component(key: str) -> str:
    head = key.partition(".")[0]
    return head if head in TEXT_ENCODERS else UNET


def as_peft(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LoRA's tensors under peft's names (`<component>.<module>.lora_A.weight`), with
    `text_model.` in the text encoders' module paths (CLIP's own path, which the original
    checkpoints and the kohya names use)."""
    from diffusers.utils.state_dict_utils import (
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    # Runs write peft's names (`.lora_A` / `.lora_B`); earlier runs wrote diffusers' older ones,
    # `.lora.down` on the UNet and `.lora_linear_layer.down` on the text encoder: each has its
    # own helper to peft's.
    peft = convert_unet_state_dict_to_peft(
        {k: v for k, v in state.items() if _component(k) == UNET}
    )
    for name in TEXT_ENCODERS:
        text = {k: v for k, v in state.items() if _component(k) == name}
        if any("lora_linear_layer" in k for k in text):
            text = convert_state_dict_to_peft(text)
        for key, value in text.items():
            rest = key[len(name) + 1 :]
            peft[f"{name}.{rest if rest.startswith('text_model.') else 'text_model.' + rest}"] = (
                value
            )
    return peft


def _sgm_key(key: str, unet_config: dict[str, Any]) -> str:
    """unet.<diffusers module>.lora_X.weight -> unet.<original module>.lora_X.weight."""
    from engine.export.single_file import unet_key

    module, _, part = key[len(UNET) + 1 :].partition(".lora_")
    original = unet_key(module + ".weight", unet_config).removesuffix(".weight")
    return f"{UNET}.{original}.lora_{part}"


def to_kohya(
    state: dict[str, torch.Tensor],
    configs: dict[str, dict],
    dtype: torch.dtype,
    sdxl_unet: dict[str, Any] | None = None,
) -> dict[str, torch.Tensor]:
    """diffusers-format LoRA tensors -> kohya tensors in `dtype` (alphas included). `sdxl_unet`:
    the UNet config of an SDXL base (its names are then SDXL's); None for SD 1.x/2.x."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya

    def kohya_name(key: str) -> str:
        # one text encoder (SD 1.x/2.x): `lora_te_`, as kohya's sd-scripts and A1111 name it
        return key if sdxl_unet is not None else key.replace("lora_te1_", "lora_te_", 1)

    peft = as_peft(state)
    laid_out: dict[str, torch.Tensor] = {}
    origin = {}  # kohya module name -> (component, module path): where its alpha comes from
    for key, value in peft.items():
        name = key
        if sdxl_unet is not None and _component(key) == UNET:
            name = _sgm_key(key, sdxl_unet)
        laid_out[name] = value
        if ".lora_A." in key:
            kohya_module = kohya_name(next(iter(convert_state_dict_to_kohya({name: value}))))
            component, _, module = key.split(".lora_A.")[0].partition(".")
            origin[kohya_module.split(".")[0]] = (component, module)
    kohya = {kohya_name(k): v for k, v in convert_state_dict_to_kohya(laid_out).items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in kohya.items():
        if key.endswith(".alpha"):
            base = key[: -len(".alpha")]
            component, module = origin[base]
            rank = int(kohya[base + ".lora_down.weight"].shape[0])
            value = torch.tensor(_alpha(configs.get(component, {}), module, rank))
        out[key] = value.to(dtype).contiguous()
    return out


def verify(
    kohya: dict[str, torch.Tensor],
    peft: dict[str, torch.Tensor],
    sdxl_unet: dict[str, Any] | None = None,
) -> None:
    """diffusers' loader reads `kohya` back (its lora_state_dict: the sgm block map and the
    kohya converter): every module of `peft` must come back under its own name with its tensors
    (in `kohya`'s dtype), and nothing else; ExportError (exit 1) otherwise."""
    from diffusers.configuration_utils import FrozenDict
    from diffusers.loaders.lora_pipeline import (
        StableDiffusionLoraLoaderMixin,
        StableDiffusionXLLoraLoaderMixin,
    )
    from diffusers.utils.state_dict_utils import (
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    loader = (
        StableDiffusionLoraLoaderMixin if sdxl_unet is None else StableDiffusionXLLoraLoaderMixin
    )
    config = None if sdxl_unet is None else FrozenDict(sdxl_unet)
    try:
        read, _alphas = loader.lora_state_dict(dict(kohya), unet_config=config)
    except ValueError as exc:  # the converter's "keys have not been correctly renamed"
        raise _layout_error(
            f"diffusers cannot read it ({str(exc).strip().splitlines()[0]})"
        ) from None
    back = convert_unet_state_dict_to_peft({k: v for k, v in read.items() if _component(k) == UNET})
    text = {k: v for k, v in read.items() if _component(k) != UNET}
    if text:
        back.update(convert_state_dict_to_peft(text))
    if set(back) != set(peft):
        odd = sorted(set(back) ^ set(peft))
        raise _layout_error(f"{len(odd)} tensors do not come back in diffusers (e.g. {odd[0]})")
    for key, value in peft.items():
        if not torch.equal(back[key], value.to(back[key].dtype)):
            raise _layout_error(f"{key} comes back in diffusers with other values")


def _layout_error(what: str) -> ExportError:
    return ExportError(f"kohya export: {what}; nothing written", "internal", 1)


def export_kohya(
    lora_file: Path,
    output: Path,
    dtype: torch.dtype,
    sdxl_unet: dict[str, Any] | None = None,
    sd2: bool = False,
) -> int:
    """Write the kohya file at `output` (written whole by the caller); returns modules written.
    `sdxl_unet`: the base's UNet config for an SDXL run, None for SD 1.x/2.x; `sd2`: the base
    is SD 2.x."""
    from engine.export.files import save_safetensors

    state, configs = read_lora(lora_file)
    kohya = to_kohya(state, configs, dtype, sdxl_unet)
    verify(kohya, as_peft(state), sdxl_unet)
    meta = {"format": "pt", "ss_network_module": "networks.lora"}
    # what sd-scripts writes for SDXL and SD 2.x: A1111/Forge take a file with metadata but
    # neither key for SD 1.x, and hide it from the Lora tab while an SDXL or SD 2.x checkpoint
    # is loaded
    if sdxl_unet is not None:
        meta["ss_base_model_version"] = SDXL_MODEL_VERSION
    elif sd2:
        meta["ss_v2"] = "True"
    save_safetensors(kohya, output, meta)
    return sum(1 for k in kohya if k.endswith(".alpha"))
