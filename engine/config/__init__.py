"""The config contract: the typed schema (pydantic v2) and its YAML file.

The file format is DESIGN.md's "Config" section: three sections, ``train`` (required),
``evaluation`` and ``hub`` (both optional). Files in the tutorial's own format (top level
``train_params:`` / ``eval_params:``) load too, translated to this format.

Every problem is reported as one :class:`ConfigError` whose text is a single line naming the file,
the key path, what is wrong and what would be valid, e.g.::

    demo.yaml: train.learnig_rate: unknown key; did you mean 'learning_rate'?

The app imports this package, so it must stay light: stdlib, pydantic and ruamel.yaml only
(no torch, diffusers, transformers, accelerate, datasets or textual). Its modules:
``schema`` (the sections and their keys), ``field_types`` (what each key accepts), ``errors``
(ConfigError), ``yaml_read`` / ``yaml_write`` (the YAML round trip, comments kept),
``tutorial`` (the tutorial format), ``validation`` and ``load`` (loading entry points),
``rules`` (rules between keys), ``paths`` (where relative paths point), ``form`` (the app's form),
``summary``; and ``checks`` (what this machine cannot train: imports torch lazily, engine only,
not imported here).
"""

from __future__ import annotations

from engine.config.errors import ConfigError
from engine.config.form import FIELD_GROUPS, validate_value
from engine.config.load import load_config, parse_config_text, read_config
from engine.config.paths import check_paths
from engine.config.schema import (
    DEFAULT_LEARNING_RATES,
    EMA_DEVICES,
    EVAL_SCHEDULERS,
    LORA_TARGETS,
    LR_SCHEDULERS,
    METHODS,
    MIXED_PRECISIONS,
    OPTIMIZERS,
    REPORT_TO,
    SECTION_MODELS,
    SECTIONS,
    Config,
    EvaluationConfig,
    HubConfig,
    TrainConfig,
    config_to_dict,
)
from engine.config.summary import summary
from engine.config.tutorial import is_tutorial_format
from engine.config.yaml_write import dump_config, save_config
from engine.sources import BUILTIN_TINY, is_local_path

__all__ = [
    "BUILTIN_TINY",
    "DEFAULT_LEARNING_RATES",
    "EMA_DEVICES",
    "EVAL_SCHEDULERS",
    "LORA_TARGETS",
    "LR_SCHEDULERS",
    "METHODS",
    "MIXED_PRECISIONS",
    "OPTIMIZERS",
    "REPORT_TO",
    "SECTIONS",
    "SECTION_MODELS",
    "Config",
    "ConfigError",
    "EvaluationConfig",
    "FIELD_GROUPS",
    "HubConfig",
    "TrainConfig",
    "check_paths",
    "config_to_dict",
    "dump_config",
    "is_local_path",
    "is_tutorial_format",
    "load_config",
    "parse_config_text",
    "read_config",
    "save_config",
    "summary",
    "validate_value",
]
