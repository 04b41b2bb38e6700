"""Where a config's relative paths point: the folder of the config file that names them.

`dreambooth-tui train project/dreambooth.yaml` reads `output_dir: runs` and
`instance_data: ./my-dog` as `project/runs` and `project/my-dog`, from whatever folder it is run
in, so `--resume latest` finds the same runs from anywhere. A path typed on the command line
(`--output-dir`) is relative to the current folder, as every command-line path is. The run's own
config.yaml stores every path absolute (`engine.launch.prepare_run`).

Torch-free: the app imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.config import Config
from engine.sources import is_local_path

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
