"""LoRA adapters through peft: which modules they adapt, their options (rank, alpha, dropout,
DoRA), and their weights in the file diffusers' `load_lora_weights` reads back.

The target sets are module-name suffixes (peft matches a module whose name ends with one), the
same for every Stable Diffusion family (SD 1.x/2.x and SDXL name their UNet and CLIP modules
alike):

- attention: the attention projections (what a run adapted before the choice existed);
- attention+ff: also the transformer blocks' feed-forward layers (the text encoders' MLPs);
- all: also the UNet's convolutions and their projections (kohya's "LoCon").

Torch-free at import: peft is imported where the adapters are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_ATTENTION_UNET = ["to_k", "to_q", "to_v", "to_out.0"]
_ATTENTION_TEXT = ["q_proj", "k_proj", "v_proj", "out_proj"]
_FF_UNET = ["ff.net.0.proj", "ff.net.2"]
_FF_TEXT = ["fc1", "fc2"]
# The ResNet blocks' convolutions and time projection, the transformer blocks' in/out
# projections (1x1 convolutions or linear layers), the down- and upsampling convolutions.
_CONV_UNET = [
    "proj_in",
    "proj_out",
    "conv1",
    "conv2",
    "conv_shortcut",
    "time_emb_proj",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
]

#: train.lora_targets -> (UNet module suffixes, text-encoder module suffixes).
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "attention": (_ATTENTION_UNET, _ATTENTION_TEXT),
    "attention+ff": (_ATTENTION_UNET + _FF_UNET, _ATTENTION_TEXT + _FF_TEXT),
    "all": (_ATTENTION_UNET + _FF_UNET + _CONV_UNET, _ATTENTION_TEXT + _FF_TEXT),
}
DEFAULT_TARGETS = "attention"


@dataclass(frozen=True)
class LoraSpec:
    """How a run's adapters are made (train.lora_rank, lora_alpha, lora_dropout, use_dora,
    lora_targets)."""

    rank: int
    alpha: int
    dropout: float = 0.0
    use_dora: bool = False
    targets: str = DEFAULT_TARGETS

    @classmethod
    def of(cls, train: Any) -> LoraSpec:
        """The spec a `train` config section asks for."""
        return cls(
            train.lora_rank,
            train.lora_alpha,
            train.lora_dropout,
            train.use_dora,
            train.lora_targets,
        )

    def config(self, text: bool) -> Any:
        """peft's LoraConfig for the UNet (text=False) or a text encoder."""
        from peft import LoraConfig

        unet_targets, text_targets = TARGETS[self.targets]
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            use_dora=self.use_dora,
            init_lora_weights="gaussian",
            target_modules=list(text_targets if text else unet_targets),
        )


def add_lora_adapters(unet: Any, spec: LoraSpec, text_encoders: list[Any]) -> None:
    """peft adapters on the UNet's target modules and on each text encoder's."""
    from peft import inject_adapter_in_model

    unet.add_adapter(spec.config(text=False))
    for text_encoder in text_encoders:
        # peft directly: transformers' add_adapter may demand a newer peft than PyPI has.
        inject_adapter_in_model(spec.config(text=True), text_encoder)


def adapter_weights(module: Any, text: bool) -> dict[str, Any]:
    """One module's adapter weights as the LoRA file holds them: peft's names (`lora_A`,
    `lora_B`, `lora_magnitude_vector`) for every module.

    Not diffusers' older names: its converter renames only the attention projections, and its
    loader picks the format from the UNet's first key, so a file mixing both loses the modules
    of the other format. A text encoder's DoRA magnitudes end in `.weight`: transformers 5's
    adapter loader maps `x.lora_magnitude_vector.weight` onto the layer's parameter, and
    drops the name without it.
    """
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(module)
    if not text:
        return state
    return {
        (k + ".weight" if k.endswith("lora_magnitude_vector") else k): v for k, v in state.items()
    }


def adapter_metadata(module: Any) -> dict[str, Any]:
    """The adapter's peft config for the file's metadata, with lora_dropout 0: dropout only
    acts in training, but a loader that made its adapters with it would leave them in training
    mode (peft's new Dropout modules), and every image it made would be noisy and different."""
    return {**module.peft_config["default"].to_dict(), "lora_dropout": 0.0}
