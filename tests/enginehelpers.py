"""Helpers for engine tests: configs from the demo sample, runs in-process or as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.config import dump_config, load_config
from engine.events import read_events

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny


def write_config(tmp: Path, name: str = "cfg.yaml", **sections: dict[str, Any]) -> Path:
    """The demo config with overrides, e.g. train={"max_train_steps": 4}; output_dir in tmp."""
    train = {"output_dir": str(tmp / "runs"), **sections.pop("train", {})}
    cfg = load_config(DEMO, {"train": train, **sections})
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / name
    path.write_text(dump_config(cfg, DEMO.read_text()), encoding="utf-8")
    return path


def prepare(tmp: Path, **sections: dict[str, Any]) -> Path:
    from engine.launch import prepare_run

    path = write_config(tmp, **sections)
    return prepare_run(load_config(path), path.read_text())


def train_in_process(
    tmp: Path, resume: str | None = None, run_dir: Path | None = None, **sections: dict[str, Any]
) -> tuple[int, Path, list[dict]]:
    from engine.train import run

    run_dir = run_dir or prepare(tmp, **sections)
    code = run(run_dir, resume, ["test"])
    return code, run_dir, read_events(run_dir / "events.jsonl")


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m engine ARGS` as a user runs it (offline)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd or ROOT,
        stdin=subprocess.DEVNULL,
    )


def losses(events: list[dict]) -> dict[int, float]:
    """Loss per step (a later event wins for a step seen twice, as after a resume)."""
    return {e["step"]: e["loss"] for e in events if e["type"] == "step"}


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def resume_from(run_dir: Path, step: int) -> dict[int, float]:
    """Resume a finished run in this process from its checkpoint at STEP: the losses of the
    steps the resumed run took."""
    checkpoint = run_dir / "checkpoints" / f"step-{step:06d}"
    code, _, after = train_in_process(run_dir.parent, resume=str(checkpoint), run_dir=run_dir)
    assert code == 0, of_type(after, "error")
    start = of_type(after, "run_started")[-1]
    assert start["resumed_from_step"] == step
    return losses(after[after.index(start) :])


def remade(pipe, evaluation: dict[str, Any], prompt: str, size: int = 32) -> list:
    """A run's last samples made again as the run made them (engine.render, the run's
    evaluation settings: scheduler, seed, num_images, num_inference_steps), as pixel arrays."""
    import numpy as np

    from engine.render import render
    from engine.schedulers import make_scheduler

    ev = evaluation
    pipe.scheduler = make_scheduler(ev["scheduler"], pipe.scheduler.config)
    out = []
    for i in range(ev["num_images"]):
        (image,) = render(
            pipe,
            [prompt],
            [ev["seed"] + i],
            negative_prompt="",
            num_inference_steps=ev["num_inference_steps"],
            guidance_scale=7.5,
            height=size,
            width=size,
        )
        out.append(np.asarray(image.convert("RGB")))
    return out


@contextmanager
def unet_training_shapes() -> Iterator[list[tuple[int, ...]]]:
    """The shapes of the latents the UNet trains on (its forward passes with gradients; samples
    run without), recorded while inside."""
    import torch
    from diffusers import UNet2DConditionModel

    shapes: list[tuple[int, ...]] = []
    original = UNet2DConditionModel.forward

    def watched(self, sample, *args, **kwargs):
        if torch.is_grad_enabled():
            shapes.append(tuple(sample.shape))
        return original(self, sample, *args, **kwargs)

    UNet2DConditionModel.forward = watched
    try:
        yield shapes
    finally:
        UNet2DConditionModel.forward = original
