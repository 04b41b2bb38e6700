"""The Generate request: its fields as typed, their validation, and the `python -m engine
generate` arguments it turns into; where the images go. Pure: no Textual, no torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.config import EVAL_SCHEDULERS
from engine.runs import images_base

__all__ = [
    "SOURCE_CUSTOM",
    "SOURCE_FINAL",
    "SOURCE_LORA",
    "GenerateRequest",
    "generate_args",
    "images_run",
    "model_choices",
    "newest_run_with_model",
    "output_dir_for",
]

SOURCE_FINAL, SOURCE_CUSTOM, SOURCE_LORA = "final", "custom", "lora"


@dataclass
class GenerateRequest:
    source: str  # "final" | "ckpt:<step>" | "custom" | "lora"
    run_dir: Path | None
    model: str  # hub id / folder (custom) or the base model (lora)
    lora: str
    prompt: str
    negative_prompt: str
    num_images: str
    steps: str
    guidance: str
    seed: str
    scheduler: str


def _int_field(name: str, value: str, minimum: int | None = 1) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{name}: a whole number, e.g. 4 (got {value!r})") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name}: at least {minimum} (got {number})")
    return number


def images_run(req: GenerateRequest) -> Path | None:
    """The run whose generated/ folder the images go to: the run whose final model or checkpoint
    makes them. A typed model or a LoRA file on a base model has no run (evaluation.output_dir),
    as with `generate --model [--lora]`."""
    if req.source == SOURCE_FINAL or req.source.startswith("ckpt:"):
        return req.run_dir
    return None


def generate_args(req: GenerateRequest) -> list[str]:
    """The `python -m engine generate` arguments for a request (without --output-dir).

    Raises ValueError with one line naming the field and what would be valid."""
    args: list[str] = []
    if req.source == SOURCE_FINAL or req.source.startswith("ckpt:"):
        if req.run_dir is None:
            raise ValueError("model: no run is selected; pick a hub id / folder instead")
        args += ["--run", str(req.run_dir)]
        if req.source.startswith("ckpt:"):
            args += ["--checkpoint", req.source.removeprefix("ckpt:")]
    elif req.source == SOURCE_CUSTOM:
        if not req.model.strip():
            raise ValueError("model: type a hub id (user/name) or a local diffusers folder")
        args += ["--model", req.model.strip()]
    elif req.source == SOURCE_LORA:
        if not req.model.strip():
            raise ValueError("model: type the base model (hub id or folder) for the LoRA")
        if not req.lora.strip():
            raise ValueError("LoRA file: type the path of the .safetensors file")
        args += ["--model", req.model.strip(), "--lora", req.lora.strip()]
    else:
        raise ValueError("model: pick where the model comes from")
    if not req.prompt.strip():
        raise ValueError("prompt: type what the images should show")
    args += ["--prompt", req.prompt]
    if req.negative_prompt:
        args += ["--negative-prompt", req.negative_prompt]
    args += ["--num-images", str(_int_field("count", req.num_images))]
    args += ["--num-inference-steps", str(_int_field("steps", req.steps))]
    try:
        guidance = float(req.guidance.strip())
    except ValueError:
        raise ValueError(f"guidance: a number, e.g. 7.5 (got {req.guidance!r})") from None
    if guidance < 0:
        raise ValueError(f"guidance: 0 or more (got {guidance})")
    args += ["--guidance-scale", f"{guidance:g}"]
    if req.seed.strip():
        args += ["--seed", str(_int_field("seed", req.seed, minimum=0))]
    if req.scheduler not in EVAL_SCHEDULERS:
        raise ValueError(f"scheduler: one of {', '.join(EVAL_SCHEDULERS)}")
    args += ["--scheduler", req.scheduler]
    return args


def model_choices(run_dir: Path | None) -> list[tuple[str, str]]:
    """(label, value) for the model Select: the run's final model and checkpoints, then the
    free-form sources."""
    choices: list[tuple[str, str]] = []
    if run_dir is not None:
        # the run's start time names it in the picker: its whole id does not fit beside it
        name = run_dir.name[:15] if re.match(r"\d{8}-\d{6}", run_dir.name) else run_dir.name
        if (run_dir / "final").exists():
            choices.append((f"final model · {name}", SOURCE_FINAL))
        ckpt_dir = run_dir / "checkpoints"
        steps: list[int] = []
        if ckpt_dir.is_dir():
            for entry in ckpt_dir.iterdir():
                tail = entry.name.removeprefix("step-")
                if entry.is_dir() and tail.isdigit():
                    steps.append(int(tail))
        for step in sorted(steps, reverse=True):
            choices.append((f"checkpoint step {step} · {name}", f"ckpt:{step}"))
    choices.append(("hub id or local folder", SOURCE_CUSTOM))  # typed beside it
    choices.append(("LoRA file on a base model", SOURCE_LORA))
    return choices


def newest_run_with_model(output_dir: Path) -> Path | None:
    """The newest run with a final model or a checkpoint (what a user generates from next)."""
    from engine.runs import list_runs

    for info in list_runs(output_dir):
        if (info.run_dir / "final").exists() or any((info.run_dir / "checkpoints").glob("step-*")):
            return info.run_dir
    return None


def output_dir_for(run_dir: Path | None, images_dir: str | Path = "images") -> Path:
    """A new <stamp> folder under runs.images_base (the rule `generate` follows too)."""
    base = images_base(run_dir, images_dir).absolute()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = base / stamp
    n = 2
    while candidate.exists():
        candidate = base / f"{stamp}-{n}"
        n += 1
    return candidate
