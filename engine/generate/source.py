"""What a generate call loads: a run's final model or checkpoint, a LoRA, a folder or a hub id.

Torch-free: nothing is loaded here, only worked out (see :func:`resolve_source`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.generate.errors import usage_error
from engine.runs import CONFIG_FILE, LORA_FILE


@dataclass
class Source:
    """What a generate call loads: a pipeline, optionally with a LoRA or checkpoint on top."""

    model: str  # as the user or the run's config names it (hub id, folder, builtin:tiny)
    pipeline: str  # what from_pretrained gets: a resolved folder or a hub id
    lora: Path | None = None  # a LoRA safetensors file
    checkpoint: int | None = None
    checkpoint_dir: Path | None = None
    run_dir: Path | None = None
    method: str | None = None  # the run's method, when there is a run

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        if self.lora is not None:
            out["lora"] = str(self.lora)
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        if self.run_dir is not None:
            out["run"] = str(self.run_dir)
        return out


def resolve_model(value: str) -> str:
    """builtin:tiny -> the tiny model folder (built once); a local path -> the folder, which must
    be a diffusers pipeline; anything else is a hub id, returned as is."""
    from engine import sources

    if sources.is_local_path(value):
        folder = Path(sources.resolve_model(value))
        if not folder.exists():
            raise usage_error(f"model folder '{value}' does not exist")
        if not (folder / "model_index.json").exists():
            raise usage_error(
                f"'{value}' is not a diffusers pipeline folder (no model_index.json)",
                "give a folder saved with save_pretrained, a run (--run) or a hub id",
            )
        return str(folder)
    return sources.resolve_model(value)


def list_checkpoints(run_dir: Path) -> list[int]:
    from engine.checkpoint import list_checkpoints as found

    return [step for step, _ in found(Path(run_dir))]


def load_run_config(run_dir: Path):
    from engine.config import ConfigError, load_config

    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise usage_error(f"run folder '{run_dir}' does not exist")
    if not path.exists():
        raise usage_error(f"'{run_dir}' is not a run folder (no {CONFIG_FILE})")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise usage_error(str(exc)) from None


def resolve_source(
    model: str | None = None,
    lora: str | Path | None = None,
    run_dir: str | Path | None = None,
    checkpoint: int | str | None = None,
) -> Source:
    """Work out what to load, without loading anything (no torch)."""
    lora_path = None
    if lora is not None:
        lora_path = Path(lora).expanduser()
        if lora_path.is_dir():
            lora_path = lora_path / LORA_FILE
        if not lora_path.is_file():
            raise usage_error(f"LoRA file '{lora}' does not exist")
    if run_dir is None:
        if not model:
            raise usage_error("nothing to generate with", "give --run RUN_DIR or --model ID_OR_DIR")
        if checkpoint is not None:
            raise usage_error("--checkpoint needs --run RUN_DIR")
        from engine.sources import is_local_path

        if is_local_path(model) and not Path(model).expanduser().exists():
            raise usage_error(f"model folder '{model}' does not exist")
        return Source(model=model, pipeline=model, lora=lora_path)

    run_dir = Path(run_dir).expanduser()
    cfg = load_run_config(run_dir)
    base = model or cfg.train.model
    method = cfg.train.method
    if checkpoint is not None:
        steps = list_checkpoints(run_dir)
        if not steps:
            raise usage_error(f"run '{run_dir}' has no checkpoints")
        step = steps[-1] if checkpoint == "latest" else int(checkpoint)
        if step not in steps:
            raise usage_error(
                f"run '{run_dir}' has no checkpoint at step {step}",
                "it has " + ", ".join(str(s) for s in steps),
            )
        ckpt = run_dir / "checkpoints" / f"step-{step:06d}"
        try:
            state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
            method = state.get("method") or method
        except (OSError, ValueError):
            pass
        ckpt_lora = ckpt / LORA_FILE if method == "lora" else None
        return Source(
            model=base,
            pipeline=base,
            lora=lora_path or ckpt_lora,
            checkpoint=step,
            checkpoint_dir=ckpt,
            run_dir=run_dir,
            method=method,
        )
    final = run_dir / "final"
    if (final / "model_index.json").exists():
        return Source(
            model=str(final), pipeline=str(final), lora=lora_path, run_dir=run_dir, method=method
        )
    if (final / LORA_FILE).exists():
        return Source(
            model=base,
            pipeline=base,
            lora=lora_path or final / LORA_FILE,
            run_dir=run_dir,
            method=method,
        )
    steps = list_checkpoints(run_dir)
    raise usage_error(
        f"run '{run_dir}' has no final model (did it finish?)",
        f"pick a checkpoint with --checkpoint {steps[-1]}" if steps else "train it first",
    )
