"""Checkpoints: whole or absent (written to a temp folder, then renamed), newest N kept.

With `checkpoints_total_limit` N reached, the oldest is removed before the new one is written
(as long as one complete checkpoint remains), so the disk never holds more than max(N, 2)
checkpoints, the one being written included. A killed save leaves a `.tmp-*` folder: the next
engine on the run removes it at start (`remove_leftovers`).

checkpoints/step-000500/
  state.json                        step, method, train_text_encoder, world_size (+ ema)
  unet.safetensors                  the UNet's trainable parameters (LoRA: the adapter weights)
  text_encoder.safetensors          each trained text encoder's, under its pipeline name
  text_encoder_2.safetensors          (SDXL trains two), when train_text_encoder
  pytorch_lora_weights.safetensors  LoRA runs: diffusers format, for `load_lora_weights`
                                    (made with the EMA weights when train.ema_decay is set)
  ema-unet.safetensors              train.ema_decay: the average of unet.safetensors' weights
  ema-text_encoder.safetensors      ... and of each trained text encoder's
  optimizer.pt  scheduler.pt        optimizer and LR scheduler state
  scaler.pt                         fp16: the gradient scaler's state (engine.loss_scaling)
  rng-<rank>.pt                     every RNG state of each process
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine import faults
from engine.ckpt_check import disk_full_error
from engine.file_modes import usual_modes
from engine.loss_scaling import load_scaler, save_scaler

CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# The engine's own temp folders: checkpoints/.tmp-step-NNNNNN (being written),
# checkpoints/.tmp-del-step-NNNNNN (being deleted), samples/.tmp-step-NNNNNN (being written)
# and RUN_DIR/.tmp-final.
_TEMP_CHECKPOINT = re.compile(r"^\.tmp-(del-)?step-\d+$")
_TEMP_SAMPLES = re.compile(r"^\.tmp-step-\d+(-asked(-\d+)?)?$")  # samples being written
_TEMP_IN_RUN_DIR = (".tmp-final",)


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f"step-{step:06d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / "state.json").exists():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().to("cpu", copy=True).contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable(model: torch.nn.Module, path: Path) -> None:
    state = load_file(str(path))
    params = dict(model.named_parameters())
    missing = [k for k in state if k not in params]
    if missing:
        raise RuntimeError(
            f"{path}: {len(missing)} weights do not fit the model (e.g. {missing[0]})"
        )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def temp_dir(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS / f".tmp-step-{step:06d}"


def write_rank_state(tmp: Path, rank: int) -> None:
    """Every rank writes its own RNG state into the temp folder (before the main one renames)."""
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), tmp / f"rng-{rank}.pt")


def write_checkpoint(
    run_dir: Path,
    step: int,
    unet,
    text_encoders: dict[str, torch.nn.Module] | None,
    optimizer,
    lr_scheduler,
    meta: dict[str, Any],
    writer=None,
    scaler=None,
) -> Path:
    """Main process: write the temp folder, fsync, rename. Raises OSError (disk full...).
    `writer(folder)` writes the run's other files (a LoRA's, the EMA's) and returns what
    state.json should hold besides `meta`."""
    tmp = temp_dir(run_dir, step)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        faults.check_disk(step)
        save_file(trainable_state(unet), str(tmp / "unet.safetensors"))
        faults.hang_in_save(step)
        for name, encoder in (text_encoders or {}).items():
            save_file(trainable_state(encoder), str(tmp / f"{name}.safetensors"))
        if writer is not None:
            meta = {**meta, **(writer(tmp) or {})}
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(lr_scheduler.state_dict(), tmp / "scheduler.pt")
        save_scaler(scaler, tmp)
        (tmp / "state.json").write_text(json.dumps({"step": step, **meta}, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        usual_modes(tmp)  # safetensors writes 0600
        final = checkpoint_dir(run_dir, step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException as exc:
        full = disk_full_error(exc, tmp)  # before the temp folder's space is given back
        shutil.rmtree(tmp, ignore_errors=True)
        if full is not None:
            raise full from exc
        raise
    return final


def delete_checkpoint(path: Path) -> None:
    """Rename first (atomic: the checkpoint is gone as a whole), then delete the files."""
    trash = path.with_name(f".tmp-del-{path.name}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Remove the temp folders a killed save left behind (only the engine's own names)."""
    found = [run_dir / name for name in _TEMP_IN_RUN_DIR if (run_dir / name).is_dir()]
    for root, pattern in ((CHECKPOINTS, _TEMP_CHECKPOINT), (SAMPLES, _TEMP_SAMPLES)):
        if (run_dir / root).is_dir():
            found += sorted(
                p for p in (run_dir / root).iterdir() if pattern.match(p.name) and p.is_dir()
            )
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def make_room(run_dir: Path, keep: int | None, step: int) -> list[Path]:
    """Before writing the checkpoint of `step`: remove the oldest ones so that, with the new one,
    at most `keep` exist, but never the last complete one (keep 1 peaks at 2 for a moment)."""
    if not keep:
        return []
    found = [p for s, p in list_checkpoints(run_dir) if s != step]
    excess = min(len(found) - (keep - 1), len(found) - 1)
    removed = []
    for path in found[: max(excess, 0)]:
        delete_checkpoint(path)
        removed.append(path)
    return removed


def prune(run_dir: Path, keep: int | None) -> list[Path]:
    if not keep:
        return []
    found = list_checkpoints(run_dir)
    removed = []
    for _, path in found[:-keep] if len(found) > keep else []:
        delete_checkpoint(path)
        removed.append(path)
    return removed


def read_state(path: Path) -> dict[str, Any]:
    return json.loads((path / "state.json").read_text())


def load_checkpoint(
    path: Path,
    unet,
    text_encoders: dict[str, torch.nn.Module] | None,
    optimizer,
    lr_scheduler,
    rank: int,
    scaler=None,
) -> int:
    """Restore weights (the UNet's and each trained text encoder's, by pipeline name),
    optimizer, scheduler, gradient scaler (fp16) and this rank's RNG; returns the step."""
    state = read_state(path)
    load_trainable(unet, path / "unet.safetensors")
    for name, encoder in (text_encoders or {}).items():
        if (path / f"{name}.safetensors").exists():
            load_trainable(encoder, path / f"{name}.safetensors")
    optimizer.load_state_dict(
        torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    )
    lr_scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    load_scaler(scaler, path)
    rng = path / f"rng-{rank}.pt"
    if rng.exists():
        set_rng_state(torch.load(rng, weights_only=False))
    return int(state["step"])
