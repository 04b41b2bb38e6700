"""A config's values checked against the schema and the rules between keys; pydantic's errors
turned into one-line ConfigErrors pointing at the line in the file."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from engine.config.errors import (
    ConfigError,
    and_list,
    loc_text,
    show_value,
    unknown_key_message,
)
from engine.config.rules import rule_problems
from engine.config.schema import REQUIRED_TRAIN_KEYS, SECTION_MODELS, SECTIONS, Config
from engine.config.yaml_read import line_of

_REQUIRED_EXAMPLES = {
    "model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "instance_data": "./my-dog",
    "instance_prompt": "a photo of sks dog",
}


def _fields_at(prefix: tuple) -> list[str]:
    """The valid keys inside the mapping at ``prefix`` (() is the top level)."""
    if not prefix:
        return list(SECTIONS)
    model = SECTION_MODELS.get(str(prefix[0]))
    return list(model.model_fields) if model else []


def message_for(err: dict) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    value = err.get("input")
    if kind == "missing":
        if len(loc) == 1:
            return f"required section; it needs {and_list(REQUIRED_TRAIN_KEYS)}"
        example = _REQUIRED_EXAMPLES.get(str(loc[-1]))
        return f"required; e.g. '{example}'" if example else "required"
    if kind == "extra_forbidden":
        what = "section" if len(loc) == 1 else "key"
        return unknown_key_message(str(loc[-1]), _fields_at(loc[:-1]), what)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if value is None:
            if loc == ("train",):
                return f"is empty; it needs {and_list(REQUIRED_TRAIN_KEYS)}"
            return "is empty; remove the line or give it keys"
        return f"expected a section of keys, got {show_value(value)}"
    if kind == "value_error":
        ctx = err.get("ctx") or {}
        return str(ctx.get("error", err.get("msg", "invalid value")))
    if kind == "literal_error":
        return f"{err.get('msg', 'invalid choice')}; got {show_value(value)}"
    return f"{err.get('msg', 'invalid value')}, got {show_value(value)}"


def errors_from_validation(
    exc: ValidationError,
    source: str,
    tree: Any,
    key_map: Callable[[tuple], tuple] | None = None,
) -> ConfigError:
    found: list[tuple[float, int, ConfigError]] = []
    for i, err in enumerate(exc.errors(include_url=False)):
        loc = tuple(err["loc"])
        shown = key_map(loc) if key_map else loc
        line = line_of(tree, shown)
        if err["type"] == "missing":
            line = None  # a missing key has no line: after everything that is in the file
        ce = ConfigError(message_for(err), file=source, key=loc_text(shown), line=line)
        found.append((line if line is not None else math.inf, i, ce))
    found.sort(key=lambda t: (t[0], t[1]))
    first = found[0][2]
    first.more = [t[2] for t in found[1:]]
    return first


def validate_data(
    data: dict,
    source: str,
    tree: Any,
    key_map: dict[tuple, tuple] | None = None,
) -> Config:
    def mapped(loc: tuple) -> tuple:
        if key_map:
            for n in range(len(loc), 0, -1):
                if loc[:n] in key_map:
                    return key_map[loc[:n]] + loc[n:]
        return loc

    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise errors_from_validation(exc, source, tree, mapped) from None
    for rule in rule_problems(cfg.train):  # the rules between keys: the first one broken
        raise ConfigError(
            rule.problem,
            file=source,
            key=rule.key,
            line=line_of(tree, mapped(tuple(rule.near.split(".")))),
        )
    return cfg
