"""A run's checkpoints: saved at a step by all processes, and on a resume found, checked against
the config and restored (the folder format itself is engine.checkpoint)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from engine import checkpoint as ckpt
from engine.ckpt_check import incomplete_reason, latest_whole
from engine.config import Config, config_to_dict
from engine.resume_rules import config_changes, previous_config, refusal
from engine.runs import CONFIG_FILE
from engine.training.context import RunContext
from engine.training.ema import ema_weights
from engine.training.errors import EngineError, disk_error
from engine.training.setup import Models, Optimization


def save(ctx: RunContext, models: Models, opt: Optimization, step: int) -> Path | None:
    """Every process writes its RNG state, the main one the rest, then renames (whole or
    absent); the oldest beyond checkpoints_total_limit go. Returns the folder (main only)."""
    acc, tc, run_dir = ctx.accelerator, ctx.cfg.train, ctx.run_dir
    tmp = ckpt.temp_dir(run_dir, step)
    ckpt.write_rank_state(tmp, acc.process_index)
    acc.wait_for_everyone()
    path = None
    if ctx.is_main:
        for old in ckpt.make_room(run_dir, tc.checkpoints_total_limit, step):
            ctx.log(f"removed old checkpoint {old.name} to make room")
        unet = acc.unwrap_model(models.unet)
        tes = models.trained_text_encoders(acc)

        def writer(folder: Path) -> dict:
            """The LoRA file (the weights samples use: the EMA's, if any) and the EMA."""
            if tc.method == "lora":
                with ema_weights(models.ema):
                    models.family.save_lora(folder, unet, tes)
            return {"ema": models.ema.save(folder)} if models.ema is not None else {}

        meta = {
            "method": tc.method,
            "train_text_encoder": models.train_te,
            "world_size": acc.num_processes,
            "time": time.time(),
        }
        try:
            path = ckpt.write_checkpoint(
                run_dir,
                step,
                unet,
                tes,
                opt.optimizer,
                opt.lr_scheduler,
                meta,
                writer,
                acc.scaler,
            )
        except OSError as exc:
            raise disk_error(exc, f"checkpoint at step {step}", run_dir) from exc
        ctx.events.emit("checkpoint", step=step, path=str(path.relative_to(run_dir)))
        for old in ckpt.prune(run_dir, tc.checkpoints_total_limit):
            ctx.log(f"removed old checkpoint {old.name}", level="debug")  # housekeeping
    acc.wait_for_everyone()
    return path


def resume_checkpoint(
    run_dir: Path, resume: str | None, log: Callable[..., None] | None = None
) -> Path | None:
    """The checkpoint to resume from: `--resume PATH`, or for `latest` the newest whole one
    (a checkpoint cut short by a crash on a filesystem without atomic renames is skipped,
    and with `log` said so, with the reason)."""
    if resume != "latest":
        return Path(resume) if resume else None
    path, skipped = latest_whole(ckpt.list_checkpoints(run_dir))
    for folder, reason in skipped if log else []:
        log(f"skipped checkpoint {folder.name}: {reason}", level="warning")
    return path


def restore(ctx: RunContext, models: Models, opt: Optimization, resume: str | None) -> int:
    """Weights, optimizer, schedule and RNG from the resume's checkpoint; the step it was at
    (0: no resume, or no checkpoint yet)."""
    if not resume:
        return 0
    path = resume_checkpoint(ctx.run_dir, resume, ctx.log)
    if path is None:
        ctx.log("no checkpoint yet: starting from step 0")
        return 0
    if not (path / "state.json").exists():
        raise EngineError(
            "config",
            f"{path}: not a checkpoint folder (no state.json)",
            "pass a checkpoints/step-NNNNNN folder or --resume latest",
            2,
        )
    if (reason := incomplete_reason(path)) is not None:
        raise EngineError(
            "config",
            f"{path}: not a whole checkpoint ({reason})",
            "pass an earlier checkpoints/step-NNNNNN folder or --resume latest",
            2,
        )
    acc = ctx.accelerator
    step = ckpt.load_checkpoint(
        path,
        acc.unwrap_model(models.unet),
        models.trained_text_encoders(acc),
        opt.optimizer,
        opt.lr_scheduler,
        acc.process_index,
        acc.scaler,
    )
    if models.ema is not None:
        models.ema.load(path, ckpt.read_state(path).get("ema"))
    ctx.log(f"resumed from {path.name} (step {step})")
    return step


def check_resume_edits(run_dir: Path, resume: str | None, cfg: Config) -> list:
    """A resume under a config its checkpoint cannot follow is refused (exit 2, nothing
    written); the changes it can follow are returned, to be logged."""
    if not resume:
        return []
    previous = previous_config(run_dir)
    if previous is None:
        return []
    frozen, followed = config_changes(previous, config_to_dict(cfg))
    if frozen:
        raise EngineError("config", f"{CONFIG_FILE}: {refusal(frozen[0], 'the checkpoint')}", "", 2)
    return followed


def resumed_from(run_dir: Path, resume: str | None) -> int | None:
    """The step the resume's checkpoint holds (None: a fresh run or no checkpoint)."""
    if not resume:
        return None
    path = resume_checkpoint(run_dir, resume)
    if path is None or not (path / "state.json").exists():
        return None
    return int(ckpt.read_state(path)["step"])
