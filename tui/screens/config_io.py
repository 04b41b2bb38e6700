"""The Config screen's jobs in worker threads: checking the config's paths and writing its file
(each returns the message its worker posts back), and why a save is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from engine.config import Config, ConfigError, check_paths, dump_config, save_config
from tui.config_edits import first_problem

__all__ = [
    "ConfigSaved",
    "PathsChecked",
    "config_text",
    "paths_checked",
    "why_not_saved",
    "write_config",
]


class PathsChecked(Message):
    def __init__(self, version: int, error: ConfigError | None) -> None:
        super().__init__()
        self.version = version
        self.error = error


class ConfigSaved(Message):
    def __init__(self, path: Path, text: str | None, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self.error = error


def config_text(state: Any) -> str:
    """The app's config as its file would hold it now: the file's text while unmodified, else
    the config written into it (comments kept)."""
    if state.config is None:
        return state.config_text or ""
    if not state.modified and state.config_text is not None:
        return state.config_text
    return dump_config(state.config, state.config_text)


def paths_checked(cfg: Config, version: int) -> PathsChecked:
    """The first path problem of config `version` (a missing folder, a bad hub id), or none."""
    try:
        check_paths(cfg)
    except ConfigError as exc:
        return PathsChecked(version, exc)
    return PathsChecked(version, None)


def write_config(
    path: Path, cfg: Config, template: str | None, text: str | None, new_file: bool = False
) -> ConfigSaved:
    """Write the YAML tab's `text` as typed, else `cfg` keeping `template`'s comments; the
    message carries the file as written, or one line saying why it was not. A `new_file` (a
    name typed for a config not saved yet) never replaces a file that is there."""
    if new_file and path.exists():
        return ConfigSaved(
            path, None, f"{path} exists already (kept as it is); ctrl+s again with another name"
        )
    try:
        if text is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        else:
            save_config(cfg, path, template_text=template)
        saved = path.read_text(encoding="utf-8")
    except OSError as exc:
        return ConfigSaved(path, None, f"{path}: {exc.strerror or exc}")
    return ConfigSaved(path, saved)


def why_not_saved(cfg: Config | None, config_error: str | None, field_errors: dict) -> str | None:
    """Why the config cannot be saved now: the form's invalid fields, a rule between keys, or
    no config that loads; None when it can."""
    if field_errors:
        return "; ".join(f"{path}: {err}" for path, err in field_errors.items())
    rule = first_problem(cfg)
    if rule:
        return rule
    if cfg is None:
        return config_error or "no config"
    return None
