"""What a resumed run may change: the keys its checkpoint cannot follow, and the ones it can.

A checkpoint holds the trainable weights (their shapes follow model, method, lora_rank,
lora_alpha, use_dora, lora_targets, train_text_encoder), the optimizer's state (its kind and learning rate) and was
trained on one model, data and resolution. Changing any of those under it gives a wrong run or a
traceback, so the CLI (before anything is written) and the engine (for a run's config.yaml edited
by hand or in the app) refuse it in one line naming the key and both values. Every other change
(more steps, validation, sampling, checkpoint settings...) is applied and logged.

Torch-free: the CLI and the app import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import Config, config_to_dict
from engine.events import EVENTS_FILE, iter_events

#: train keys a checkpoint cannot follow. learning_rate, text_encoder_lr and the adam_* keys: the
#: optimizer's saved state (its param_groups) would silently put the old values back. ema_decay:
#: a checkpoint without an average cannot start one mid-run as if it had been there all along.
FROZEN_KEYS = (
    "model",
    "revision",
    "instance_data",
    "method",
    "lora_rank",
    "lora_alpha",
    "use_dora",
    "lora_targets",
    "train_text_encoder",
    "resolution",
    "optimizer",
    "learning_rate",
    "adam_beta1",
    "adam_beta2",
    "adam_weight_decay",
    "adam_epsilon",
    "ema_decay",
    "text_encoder_lr",
)
#: train keys that name the run rather than how it trains.
RUN_KEYS = ("output_dir", "run_name")

Change = tuple[str, Any, Any]  # (dotted key, value in the run, new value)


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[Change], list[Change]]:
    """(changes the checkpoint cannot follow, changes it can), between two configs in the
    config_to_dict format (a `run_started` event's, or a run's config.yaml)."""
    frozen: list[Change] = []
    followed: list[Change] = []
    for section in ("train", "evaluation", "hub"):
        a, b = old.get(section) or {}, new.get(section) or {}
        for key in b:
            if section == "train" and key in RUN_KEYS:
                continue
            if key in a and a[key] != b[key]:
                change = (f"{section}.{key}", a[key], b[key])
                (frozen if section == "train" and key in FROZEN_KEYS else followed).append(change)
    return frozen, followed


def refusal(change: Change, where: str) -> str:
    """The one line for a change the checkpoint cannot follow."""
    key, old, new = change
    return (
        f"{key}: {new!r} now but {old!r} in {where}; its checkpoint cannot follow this change: "
        f"set {key.split('.')[-1]} back to {old!r}, or start a new run (without --resume)"
    )


def describe(change: Change) -> str:
    key, old, new = change
    return f"{key}: {old!r} -> {new!r}"


def previous_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The config the run's latest attempt trained with (its last `run_started` event)."""
    config = None
    for event in iter_events(Path(run_dir) / EVENTS_FILE):
        if event.get("type") == "run_started" and isinstance(event.get("config"), dict):
            config = event["config"]
    return config


def same_source(run_cfg: Config, cfg: Config) -> bool:
    """The same base model and instance data: what `--resume latest` requires of a run."""
    a, b = run_cfg.train, cfg.train
    return (a.model, a.revision, a.instance_data) == (b.model, b.revision, b.instance_data)


def as_dict(cfg: Config) -> dict[str, Any]:
    return config_to_dict(cfg)


def latest_matching(output_dir: str | Path, cfg: Config) -> tuple[Path | None, int]:
    """The newest resumable run under output_dir of the same model and instance data as `cfg`
    (None if there is none), and how many resumable runs of other sources were passed over."""
    from engine.config import ConfigError, load_config
    from engine.runs import COMPLETED, CONFIG_FILE, list_runs

    skipped = 0
    for info in list_runs(output_dir):  # newest first; the rule of runs.latest_resumable
        if info.status == COMPLETED or info.live:
            continue
        try:
            run_cfg = load_config(info.run_dir / CONFIG_FILE)
        except ConfigError:
            run_cfg = None
        if run_cfg is not None and same_source(run_cfg, cfg):
            return info.run_dir, skipped
        skipped += 1
    return None, skipped
