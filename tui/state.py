"""What the screens of the app share: the config being edited, where runs live, the followed run.

Light on purpose (no textual widgets, no torch): every screen imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from engine.config import Config, ConfigError, read_config
from engine.config.paths import absolute_in, config_base
from engine.sources import local_folder

IMAGE_PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")
IMAGES_ENV = "DREAMBOOTH_TUI_IMAGES"
DEFAULT_CONFIG = "dreambooth.yaml"
DEMO_CONFIG = "dreambooth-demo.yaml"  # what `dreambooth-tui demo` writes


@dataclass
class AppState:
    config_path: Path | None = None
    config: Config | None = None
    config_text: str | None = None  # the file's text: the template that keeps comments on save
    config_error: str | None = None  # one line, when the file did not load
    output_dir: Path = Path("runs")
    run_dir: Path | None = None  # the run the Train screen follows
    demo: bool = False
    image_protocol: str = "auto"  # auto | kitty | sixel | halfcell | unicode
    num_images: int | None = None  # usable images in the data folder, once checked
    config_version: int = 0  # bumped on every change, so screens see what changed elsewhere
    modified: bool = False  # the config differs from its file
    picked_data: str | None = None  # a data folder picked on Data, not yet instance_data
    gpu: Any = None  # engine.fit.Gpu: this machine's GPU (NVML), looked up once per app
    gpu_checked: bool = False  # the lookup has answered (gpu None then: no GPU here)

    def set_config(self, cfg: Config, text: str | None = None) -> None:
        """A config as loaded from a file (or a sample): nothing modified yet."""
        self.config = cfg
        if text is not None:
            self.config_text = text
        self.config_error = None
        self.output_dir = Path(cfg.train.output_dir).expanduser()
        self.config_version += 1
        self.modified = False

    def change_config(self, cfg: Config) -> None:
        """An edit of the config (not saved yet)."""
        self.config = cfg
        self.config_error = None
        self.output_dir = Path(cfg.train.output_dir).expanduser()
        self.config_version += 1
        self.modified = True

    @property
    def base_dir(self) -> Path:
        """The folder the config's relative paths are taken against: the config file's own
        (as on the command line), the current folder without a file."""
        return config_base(self.config_path)

    @property
    def runs_dir(self) -> Path:
        """output_dir made absolute (run directories are handed to other processes)."""
        return Path(absolute_in(str(self.output_dir), self.base_dir))

    @property
    def instance_data(self) -> str | None:
        return self.config.train.instance_data if self.config else None


def data_folder(value: str | None) -> Path | None:
    """The local folder a train.instance_data value names (builtin:tiny included), else None."""
    return local_folder(value, "images")


def image_protocol_from(flag: str | None) -> str:
    """The image protocol forced by `--images` or DREAMBOOTH_TUI_IMAGES; "auto" otherwise."""
    value = (flag or os.environ.get(IMAGES_ENV) or "auto").strip().lower()
    aliases = {"tgp": "kitty", "half-cell": "halfcell", "half": "halfcell"}
    value = aliases.get(value, value)
    return value if value in IMAGE_PROTOCOLS else "auto"


def build_state(
    config_path: Path | None = None, demo: bool = False, images: str | None = None
) -> AppState:
    """The start-up state: the config from `config_path`, else the one last used in this
    folder (tui.recent), else ./dreambooth.yaml, else ./dreambooth-demo.yaml (what `demo`
    writes), where present."""
    from tui import recent

    state = AppState(demo=demo, image_protocol=image_protocol_from(images))
    if config_path is None:
        config_path = recent.last_config() or next(
            (Path(name) for name in (DEFAULT_CONFIG, DEMO_CONFIG) if Path(name).is_file()), None
        )
    if config_path is None:
        return state
    recent.remember(Path(config_path))
    state.config_path = Path(config_path)
    try:
        state.config_text = state.config_path.read_text(encoding="utf-8")
    except OSError as exc:
        state.config_error = f"{config_path}: cannot read ({exc.strerror or exc})"
        return state
    try:
        cfg, _warnings = read_config(state.config_path)
    except ConfigError as exc:
        state.config_error = str(exc)
    else:
        state.set_config(cfg)
    return state


class RunAttached(Message):
    """Posted to the Train screen when the app starts following another run."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir


class ConfigChanged(Message, bubble=False):
    """The app's config changed on one screen ("Use this folder" on Data, say): posted to the
    app, which passes it on to the other screens (their copies do not bubble back up)."""

    def __init__(self, origin: str = "", sender_screen: object | None = None) -> None:
        super().__init__()
        self.origin = origin
        self.sender_screen = sender_screen
