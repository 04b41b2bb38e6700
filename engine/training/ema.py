"""EMA of the trained weights (`train.ema_decay`): an exponential moving average of the trainable
parameters (a full fine-tune's UNet, the text encoder when trained; a LoRA run's adapters),
kept by diffusers' EMAModel and updated after every optimizer update.

Its decay follows EMAModel's rule: min(ema_decay, (1 + n) / (10 + n)) at update n, so the average
starts as the weights themselves and lengthens as training goes on (a short DreamBooth run
averages over about its last tenth). `train.ema_device: cpu` keeps the average in host memory
(the GPU holds no copy; each update copies the weights out), `gpu` beside the weights.

The EMA weights are what a run shows and writes: validation samples, final/ (and the exports made
from it), and a checkpoint's usable files (a LoRA checkpoint's pytorch_lora_weights.safetensors)
are made with them swapped in for the moment (`ema_weights`). A checkpoint also holds the
average itself, `ema-<module>.safetensors` (the parameters by name, as `unet.safetensors` holds
the trained ones) plus `"ema": {"optimization_step": n, "decay": d}` in state.json, so a resume
continues it exactly; `generate` and `export` of a full fine-tune's checkpoint load those files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from engine.training.errors import EngineError

#: A checkpoint's file for one trained module's average ("unet", "text_encoder", ...).
EMA_FILE = "ema-{module}.safetensors"


@dataclass
class Ema:
    """The average of the parameters in `named` ((module, name, parameter), in the optimizer's
    order) and where it lives."""

    average: Any  # diffusers.training_utils.EMAModel
    named: list[tuple[str, str, torch.nn.Parameter]]
    on_cpu: bool
    swapped: bool = False  # the EMA weights are in the model now (ema_weights)

    @property
    def params(self) -> list[torch.nn.Parameter]:
        return [p for _, _, p in self.named]

    @property
    def step(self) -> int:
        """Updates averaged so far."""
        return int(self.average.optimization_step)

    def update(self) -> None:
        """One optimizer update's weights into the average."""
        if self.on_cpu:  # copied out once; marked trainable so EMAModel averages (not copies) them
            live = [p.detach().to("cpu").requires_grad_(True) for p in self.params]
        else:
            live = self.params
        self.average.step(live)

    def shadows(self) -> dict[str, dict[str, torch.Tensor]]:
        """The average per module, by parameter name, on the CPU (what a checkpoint holds)."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for (module, name, _), shadow in zip(self.named, self.average.shadow_params, strict=True):
            out.setdefault(module, {})[name] = shadow.detach().to("cpu").contiguous()
        return out

    def save(self, folder: Path) -> dict[str, Any]:
        """The average into a checkpoint folder; returns its state.json entry."""
        for module, tensors in self.shadows().items():
            save_file(tensors, str(folder / EMA_FILE.format(module=module)))
        return {"optimization_step": self.step, "decay": self.average.decay}

    def load(self, folder: Path, entry: dict[str, Any] | None) -> None:
        """The average a checkpoint holds (an EngineError if it holds none, or not for these
        parameters)."""
        if not entry:
            raise EngineError(
                "config",
                f"{folder}: this checkpoint has no EMA weights (it was saved with "
                "train.ema_decay: null)",
                "resume with train.ema_decay: null, or start a new run",
                2,
            )
        by_module: dict[str, dict[str, torch.Tensor]] = {}
        for module in dict.fromkeys(m for m, _, _ in self.named):
            path = folder / EMA_FILE.format(module=module)
            if not path.is_file():
                raise EngineError(
                    "data", f"{folder}: {path.name} is missing", "resume from another checkpoint"
                )
            by_module[module] = load_file(str(path))
        shadows = []
        for module, name, p in self.named:
            value = by_module[module].get(name)
            if value is None or value.shape != p.shape:
                raise EngineError(
                    "data",
                    f"{folder}: {EMA_FILE.format(module=module)} does not fit the model "
                    f"({module}.{name})",
                    "resume from another checkpoint, or start a new run",
                )
            device = "cpu" if self.on_cpu else p.device
            shadows.append(value.to(device=device, dtype=p.dtype))
        self.average.load_state_dict(
            {"optimization_step": int(entry["optimization_step"]), "shadow_params": shadows}
        )


def build(models: Any, cfg: Any, accelerator: Any) -> Ema | None:
    """The average of the run's trainable parameters, starting from their values now (None
    when train.ema_decay is null)."""
    tc = cfg.train
    if tc.ema_decay is None:
        return None
    from diffusers.training_utils import EMAModel

    modules = {"unet": accelerator.unwrap_model(models.unet)}
    modules.update(models.trained_text_encoders(accelerator))  # SDXL: both
    named = [
        (module, name, p)
        for module, m in modules.items()
        for name, p in m.named_parameters()
        if p.requires_grad
    ]
    on_cpu = tc.ema_device == "cpu"
    start = [p.detach().to("cpu") for _, _, p in named] if on_cpu else [p for _, _, p in named]
    # foreach: one kernel per update over all tensors; not for a CPU average, whose copy_to
    # would first move the whole average to the device at once.
    average = EMAModel(start, decay=tc.ema_decay, foreach=not on_cpu)
    return Ema(average, named, on_cpu)


@contextlib.contextmanager
def ema_weights(ema: Ema | None) -> Iterator[None]:
    """The EMA weights in the model for the block (the trained ones kept on the CPU and put back
    after it, bit for bit); nothing without an EMA, or when they are in already."""
    if ema is None or ema.swapped:
        yield
        return
    params = ema.params
    ema.average.store(params)
    ema.average.copy_to(params)
    ema.swapped = True
    try:
        yield
    finally:
        ema.average.restore(params)
        ema.swapped = False
