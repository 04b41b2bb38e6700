"""A form edit applied to the whole config: validated with every rule between keys, and the
learning rate moved with the method when it was the other method's default.

Torch-free (the app imports it); the rules themselves are engine/config/rules.py's, the same
that every loaded config file goes through.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.config import DEFAULT_LEARNING_RATES, Config
from engine.config.rules import RuleProblem, rule_problems


def with_field(cfg: Config, section: str, key: str, value: Any) -> Config:
    """`cfg` with section.key = value, re-validated as a whole (raises ValidationError). A
    method switch takes the new method's default learning rate when the old one was the old
    method's default (5e-6 for full fine-tunes is far too low for LoRA, 1e-4 far too high for
    full)."""
    data = cfg.model_dump()
    data[section][key] = value
    if section == "train" and key == "method" and value != cfg.train.method:
        if cfg.train.learning_rate == DEFAULT_LEARNING_RATES.get(cfg.train.method):
            data["train"]["learning_rate"] = DEFAULT_LEARNING_RATES.get(value)
    return Config.model_validate(data)


def problems(cfg: Config | None) -> list[RuleProblem]:
    """Every rule between keys the config breaks (none for no config)."""
    return rule_problems(cfg.train) if cfg is not None else []


def first_problem(cfg: Config | None) -> str | None:
    found = problems(cfg)
    return str(found[0]) if found else None


__all__ = ["ValidationError", "first_problem", "problems", "with_field"]
