"""Loading a config file or text (either format): YAML, translation, overrides, validation."""

from __future__ import annotations

from pathlib import Path

from engine.config.errors import ConfigError, and_list, show_value
from engine.config.rules import rule_warnings
from engine.config.schema import REQUIRED_TRAIN_KEYS, RETIRED_KEYS, Config
from engine.config.tutorial import is_tutorial_format, translate_tutorial
from engine.config.validation import validate_data
from engine.config.yaml_read import MAX_FILE_BYTES, load_yaml, plain


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_config_text(
    text: str, source: str = "<text>", overrides: dict | None = None
) -> tuple[Config, list[str]]:
    """Parse config YAML text (either format). Returns (config, warnings); raises ConfigError.

    ``overrides`` is a nested dict in this app's format, e.g. ``{"train": {"max_train_steps": 3}}``,
    merged over the file before validation.
    """
    tree = load_yaml(text, source)
    if tree is None:
        raise ConfigError(
            "the file is empty; it needs a 'train:' section with "
            f"{and_list(REQUIRED_TRAIN_KEYS)} (see sample_configs/demo.yaml)",
            file=source,
        )
    if not isinstance(tree, dict):
        raise ConfigError(
            f"expected a mapping with a 'train:' section at the top level, got {show_value(plain(tree))}"
            " (see sample_configs/demo.yaml)",
            file=source,
        )
    warnings: list[str] = []
    key_map: dict[tuple, tuple] | None = None
    if is_tutorial_format(tree):
        data, key_map, warnings = translate_tutorial(tree, source)
    else:
        data = plain(tree)
        train = data.get("train")
        if isinstance(train, dict) and train.get("mixed_precision") is False:
            warnings.append(
                f'{source}: train.mixed_precision: read false as "no"; write "no" in quotes'
            )
        for (section, key), why in RETIRED_KEYS.items():
            if isinstance(data.get(section), dict) and key in data[section]:
                del data[section][key]  # an older run's config must still load
                warnings.append(f"{source}: {section}.{key}: no longer used ({why}); ignored")
    if overrides:
        data = _deep_merge(data, overrides)
    cfg = validate_data(data, source, tree, key_map)
    return cfg, warnings + [f"{source}: {w}" for w in rule_warnings(cfg.train)]


def read_config(path: str | Path, overrides: dict | None = None) -> tuple[Config, list[str]]:
    """Load a config file (either format). Returns (config, warnings); raises ConfigError."""
    source = str(path)
    try:
        size = Path(path).expanduser().stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"too large for a config ({size} bytes, at most {MAX_FILE_BYTES}); is it the "
                "right file?",
                file=source,
            )
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=source) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a config file", file=source) from None
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text; is it a YAML file?", file=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    return parse_config_text(text, source, overrides)


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Load a config file (either format); raises ConfigError. See :func:`read_config`."""
    return read_config(path, overrides)[0]
