"""Fake training runs on the tiny model, for the generate and hub tests.

They have the layout the training engine writes (DESIGN.md, "Run directory"): config.yaml,
events.jsonl, samples/step-N/*.png, final/ (a pipeline folder, or a LoRA file), checkpoints/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.events import EventWriter
from engine.tiny import ensure_tiny

LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]


def tiny_model() -> Path:
    return ensure_tiny() / "model"


def write_config(
    run_dir: Path,
    *,
    model: str = "builtin:tiny",
    method: str = "full",
    steps: int = 4,
    **evaluation,
) -> None:
    ev = {
        "prompts": ["a photo of sks shape"],
        "num_images": 2,
        "num_inference_steps": 3,
        "seed": 5,
        "scheduler": "ddim",
        **evaluation,
    }
    lines = [
        "train:",
        f"  model: {json.dumps(model)}",
        "  instance_data: builtin:tiny",
        '  instance_prompt: "a photo of sks shape"',
        f"  method: {method}",
        "  resolution: 32",
        f"  max_train_steps: {steps}",
        "  learning_rate: 1.0e-4",
        "evaluation:",
        *(f"  {k}: {json.dumps(v)}" for k, v in ev.items()),
    ]
    (run_dir / "config.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_events_and_samples(run_dir: Path, steps: int = 4, sample_step: int = 4) -> None:
    from PIL import Image

    w = EventWriter(run_dir / "events.jsonl")
    w.emit(
        "run_started",
        run_id=run_dir.name,
        config={},
        total_steps=steps,
        device={"kind": "cpu", "name": "cpu", "total_mem": None},
        resumed_from_step=None,
        world_size=1,
    )
    for step in range(1, steps + 1):
        w.emit("step", step=step, loss=0.1, lr=1e-4)
    folder = run_dir / "samples" / f"step-{sample_step:06d}"
    folder.mkdir(parents=True)
    for i, color in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (32, 32), color).save(folder / f"{i:02d}.png")
        w.emit(
            "sample",
            step=sample_step,
            prompt="a photo of sks shape",
            paths=[f"samples/step-{sample_step:06d}/{i:02d}.png"],
            seed=5 + i,
        )
    w.emit("finished", status="completed", step=steps, outputs={"final": "final"}, duration_s=1.0)
    w.close()


def make_full_run(root: Path, **config) -> Path:
    run_dir = root / "run-full"
    run_dir.mkdir(parents=True)
    write_config(run_dir, method="full", **config)
    shutil.copytree(tiny_model(), run_dir / "final")
    write_events_and_samples(run_dir)
    return run_dir


def perturbed_lora_unet(seed: int = 1):
    import torch
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    unet = UNet2DConditionModel.from_pretrained(tiny_model(), subfolder="unet")
    unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=LORA_TARGETS, init_lora_weights="gaussian")
    )
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return unet


def save_lora(unet, folder: Path) -> Path:
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder,
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        safe_serialization=True,
    )
    return folder / "pytorch_lora_weights.safetensors"


def make_lora_run(root: Path, **config) -> Path:
    run_dir = root / "run-lora"
    run_dir.mkdir(parents=True)
    write_config(run_dir, method="lora", **config)
    save_lora(perturbed_lora_unet(), run_dir / "final")
    write_events_and_samples(run_dir)
    return run_dir


def add_full_checkpoint(run_dir: Path, step: int) -> Path:
    """A full-method checkpoint whose UNet weights differ from the base (scaled conv_out)."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    ckpt = run_dir / "checkpoints" / f"step-{step:06d}"
    ckpt.mkdir(parents=True)
    unet = UNet2DConditionModel.from_pretrained(tiny_model(), subfolder="unet")
    state = {
        k: (v * 3.0).contiguous() for k, v in unet.state_dict().items() if k.startswith("conv_out.")
    }
    assert state
    save_file({k: v.to(torch.float32) for k, v in state.items()}, str(ckpt / "unet.safetensors"))
    (ckpt / "state.json").write_text(json.dumps({"step": step, "method": "full"}))
    return ckpt
