"""Where a config's paths point: a relative one is taken against the folder of the config file
that names it; `check_paths` checks the local ones (the builtin / local / hub rule itself is
engine/sources.py's).

`dreambooth-tui train project/dreambooth.yaml` reads `output_dir: runs` and
`instance_data: ./my-dog` as `project/runs` and `project/my-dog`, from whatever folder it is run
in, so `--resume latest` finds the same runs from anywhere. A path typed on the command line
(`--output-dir`) is relative to the current folder, as every command-line path is. The run's own
config.yaml stores every path absolute (`engine.launch.prepare_run`).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config.errors import ConfigError
from engine.config.rules import CLASS_DATA_REQUIRED
from engine.config.schema import Config
from engine.sources import BUILTIN_TINY, has_hub_id_form, is_builtin, is_local_path

_LOCAL_OR_HUB = "local paths start with ./ or /, hub ids look like 'owner/name'"


def _local(value: str) -> Path:
    return Path(os.path.expanduser(value))


def check_paths(cfg: Config, source: str | None = None) -> None:
    """Check the local paths of a config (no network: hub ids are only checked for their form).

    Raises ConfigError for: a local model path that is missing or is not a diffusers pipeline
    folder (no model_index.json); local instance_data missing or not a folder; prior preservation
    without class_data (or class_data that is a file). ``builtin:tiny`` passes.
    """
    t = cfg.train

    def fail(key: str, problem: str) -> None:
        raise ConfigError(problem, file=source, key=key)

    if not is_builtin(t.model):
        if is_local_path(t.model):
            p = _local(t.model)
            if not p.exists():
                fail(
                    "train.model",
                    f"local model folder not found: {t.model!r}; give an existing diffusers "
                    "folder, or a hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'",
                )
            if not p.is_dir() or not (p / "model_index.json").is_file():
                fail(
                    "train.model",
                    f"{t.model!r} is not a diffusers pipeline folder (no model_index.json); "
                    "give the folder that holds model_index.json, or a hub id",
                )
        elif not has_hub_id_form(t.model):
            fail(
                "train.model",
                f"{t.model!r} is neither an existing path nor a hub id; {_LOCAL_OR_HUB}",
            )
    if t.instance_data != BUILTIN_TINY:
        if is_local_path(t.instance_data):
            p = _local(t.instance_data)
            if not p.exists():
                fail(
                    "train.instance_data",
                    f"image folder not found: {t.instance_data!r}; give a folder of images "
                    "or a hub dataset id",
                )
            if not p.is_dir():
                fail(
                    "train.instance_data",
                    f"{t.instance_data!r} is not a folder; give the folder that holds the images",
                )
        elif not has_hub_id_form(t.instance_data):
            fail(
                "train.instance_data",
                f"{t.instance_data!r} is neither an existing folder nor a hub dataset id; "
                f"{_LOCAL_OR_HUB}",
            )
    if t.prior_preservation:
        if not t.class_data:
            fail("train.class_data", CLASS_DATA_REQUIRED)
        p = _local(t.class_data)
        if p.exists() and not p.is_dir():
            fail(
                "train.class_data",
                f"{t.class_data!r} is a file; give a folder (it is created if missing)",
            )


#: The train keys that may name a local path (hub ids and builtin:tiny are left alone);
#: class_data is always a local folder.
LOCAL_PATH_KEYS = ("model", "instance_data")


def absolute_in(value: str, base: Path) -> str:
    """`value` (a local path) made absolute, a relative one taken relative to `base`."""
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else (base / path).resolve())


def resolve_config_paths(cfg: Config, base: str | Path) -> Config:
    """The config with every relative local path made absolute against `base` (the config
    file's folder). Hub ids, `builtin:tiny` and absolute paths are unchanged."""
    base = Path(base).expanduser().resolve()
    train_update: dict[str, str] = {}
    for key in LOCAL_PATH_KEYS:
        value = getattr(cfg.train, key)
        if value and is_local_path(value, base):
            train_update[key] = absolute_in(value, base)
    if cfg.train.class_data:
        train_update["class_data"] = absolute_in(cfg.train.class_data, base)
    train_update["output_dir"] = absolute_in(cfg.train.output_dir, base)
    evaluation = cfg.evaluation.model_copy(
        update={"output_dir": absolute_in(cfg.evaluation.output_dir, base)}
    )
    return cfg.model_copy(
        update={"train": cfg.train.model_copy(update=train_update), "evaluation": evaluation}
    )


def config_base(config_path: str | Path | None) -> Path:
    """The folder relative paths of a config file are resolved against (cwd without a file)."""
    if config_path is None:
        return Path.cwd()
    return Path(config_path).expanduser().resolve().parent
