"""A run's LoRA (diffusers format) in the kohya / A1111 layout: `lora_unet_*`, `lora_te_*`,
`.lora_down` / `.lora_up` and one `.alpha` tensor per module.

The key mapping is diffusers' own (`convert_state_dict_to_peft`, `convert_state_dict_to_kohya`).
Two things are set right after it: the alpha the run trained with (the helper writes alpha =
rank, which changes the LoRA's strength whenever lora_alpha != lora_rank), and the text encoder's
names, which must read `lora_te_text_model_...` for SD 1.x/2.x (the helper writes `lora_te1_`, an
SDXL name, and transformers 5 saves CLIP keys without `text_model.`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TE_PREFIX = "text_encoder."


def read_lora(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """The LoRA file's tensors and its adapters' configs per component ("unet", "text_encoder")
    from the file's metadata (empty when the file has none)."""
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


def _with_text_model(key: str) -> str:
    """text_encoder.encoder.layers... -> text_encoder.text_model.encoder.layers... (CLIP's own
    module path, which the original checkpoints and the kohya names use)."""
    if key.startswith(TE_PREFIX) and not key.startswith(TE_PREFIX + "text_model."):
        return TE_PREFIX + "text_model." + key[len(TE_PREFIX) :]
    return key


def to_kohya(
    state: dict[str, torch.Tensor], configs: dict[str, dict], dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """diffusers-format LoRA tensors -> kohya tensors in `dtype` (alphas included)."""
    from diffusers.utils.state_dict_utils import (
        convert_state_dict_to_kohya,
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    # Runs write peft's names (`.lora_A` / `.lora_B`); earlier runs wrote diffusers' older ones,
    # `.lora.down` on the UNet and `.lora_linear_layer.down` on the text encoder: each has its
    # own helper to peft's.
    unet = {k: v for k, v in state.items() if not k.startswith(TE_PREFIX)}
    text = {k: v for k, v in state.items() if k.startswith(TE_PREFIX)}
    peft = convert_unet_state_dict_to_peft(unet)
    if any("lora_linear_layer" in k for k in text):
        text = convert_state_dict_to_peft(text)
    peft.update(text)
    peft = {_with_text_model(k): v for k, v in peft.items()}
    kohya = {_kohya_name(k): v for k, v in convert_state_dict_to_kohya(peft).items()}
    origin = {}  # kohya module name -> (component, module path): where its alpha comes from
    for key, value in peft.items():
        if ".lora_A." in key:
            name = next(iter(convert_state_dict_to_kohya({key: value})))
            component, _, module = key.split(".lora_A.")[0].partition(".")
            origin[_kohya_name(name).split(".")[0]] = (component, module)
    out: dict[str, torch.Tensor] = {}
    for key, value in kohya.items():
        if key.endswith(".alpha"):
            base = key[: -len(".alpha")]
            component, module = origin[base]
            rank = int(kohya[base + ".lora_down.weight"].shape[0])
            value = torch.tensor(_alpha(configs.get(component, {}), module, rank))
        out[key] = value.to(dtype).contiguous()
    return out


def _kohya_name(key: str) -> str:
    """One text encoder (SD 1.x/2.x): `lora_te_`, as kohya's sd-scripts and A1111 name it."""
    return key.replace("lora_te1_", "lora_te_", 1)


def export_kohya(lora_file: Path, output: Path, dtype: torch.dtype) -> int:
    """Write the kohya file at `output` (written whole by the caller); returns modules written."""
    from engine.export.files import save_safetensors

    state, configs = read_lora(lora_file)
    kohya = to_kohya(state, configs, dtype)
    save_safetensors(kohya, output, {"format": "pt", "ss_network_module": "networks.lora"})
    return sum(1 for k in kohya if k.endswith(".alpha"))
