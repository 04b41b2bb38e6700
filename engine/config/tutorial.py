"""The tutorial's config format (top level train_params / eval_params), translated to this app's."""

from __future__ import annotations

import math
from typing import Any

from engine.config.errors import (
    ConfigError,
    and_list,
    loc_text,
    show_value,
    unknown_key_message,
)
from engine.config.field_types import as_bool
from engine.config.schema import SECTIONS, TUTORIAL_SECTIONS
from engine.config.yaml_read import line_of, plain

# tutorial key -> (section, key) of this app's format; None: accepted, unused
_TUTORIAL_TRAIN: dict[str, tuple[str, str] | None] = {
    "stable_diffusion_backbone": ("train", "model"),
    "feature_extractor": None,
    "hugging_face_image_store": ("train", "instance_data"),
    "learning_rate": ("train", "learning_rate"),
    "max_train_steps": ("train", "max_train_steps"),
    "resolution": ("train", "resolution"),
    "train_bs": ("train", "train_batch_size"),
    "grad_accum_steps": ("train", "gradient_accumulation_steps"),
    "max_gradient_norm": ("train", "max_grad_norm"),
    "sample_batch_size": ("train", "sample_batch_size"),
    "model_checkpoint_name": ("train", "run_name"),
    "random_shuffle_train_set": ("train", "shuffle"),
    "use_8bit_optimizer": ("train", "optimizer"),
    "concept_name": ("train", "instance_prompt"),
    "item_type": ("train", "instance_prompt"),
}
_TUTORIAL_EVAL: dict[str, tuple[str, str] | None] = {
    "image_save_path": ("evaluation", "output_dir"),
    "eval_prompt": ("evaluation", "prompts"),
    # not in the tutorial's file (its eval script hard-codes them), accepted as a convenience
    "num_inference_steps": ("evaluation", "num_inference_steps"),
    "guidance_scale": ("evaluation", "guidance_scale"),
}
_TUTORIAL_REQUIRED = {
    "stable_diffusion_backbone": "CompVis/stable-diffusion-v1-4",
    "hugging_face_image_store": "you/my-concept-images",
    "concept_name": "sks",
    "item_type": "dog",
}


def is_tutorial_format(data: Any) -> bool:
    """True for a mapping whose top level has ``train_params`` or ``eval_params``."""
    return isinstance(data, dict) and any(k in data for k in TUTORIAL_SECTIONS)


def translate_tutorial(tree: Any, source: str) -> tuple[dict, dict[tuple, tuple], list[str]]:
    """Tutorial mapping -> (this app's dict, map of our key path -> tutorial key path, warnings)."""
    data = plain(tree)
    errors: list[ConfigError] = []

    def err(problem: str, loc: tuple) -> None:
        errors.append(ConfigError(problem, file=source, key=loc_text(loc), line=line_of(tree, loc)))

    mixed = [k for k in data if k in SECTIONS]
    if mixed:
        err(
            "mixes this app's format with the tutorial format (train_params/eval_params); "
            "use one of them",
            (mixed[0],),
        )
    for k in data:
        if k not in TUTORIAL_SECTIONS and k not in SECTIONS:
            err(unknown_key_message(str(k), list(TUTORIAL_SECTIONS), "section"), (k,))

    out: dict[str, dict] = {"train": {}, "evaluation": {}}
    key_map: dict[tuple, tuple] = {}
    warnings: list[str] = []
    sections = (("train_params", _TUTORIAL_TRAIN), ("eval_params", _TUTORIAL_EVAL))
    for name, table in sections:
        section = data.get(name)
        if section is None:
            if name == "train_params":
                err(f"required section; it needs {and_list(_TUTORIAL_REQUIRED)}", (name,))
            continue
        if not isinstance(section, dict):
            err(f"expected a section of keys, got {show_value(section)}", (name,))
            continue
        for key, value in section.items():
            if key not in table:
                err(unknown_key_message(str(key), list(table), "key"), (name, key))
                continue
            target = table[key]
            if target is None:
                warnings.append(
                    f"{source}: {name}.{key}: accepted, unused; this app takes the feature "
                    "extractor (if any) from the model"
                )
                continue
            sec, field = target
            if key in ("concept_name", "item_type"):
                continue  # combined below
            if key == "use_8bit_optimizer":
                try:
                    value = "adamw8bit" if as_bool(value) else "adamw"
                except ValueError as exc:
                    err(str(exc), (name, key))
                    continue
            out[sec][field] = value
            key_map[(sec, field)] = (name, key)

    train = data.get("train_params")
    if isinstance(train, dict):
        for key, example in _TUTORIAL_REQUIRED.items():
            if train.get(key) is None:
                errors.append(
                    ConfigError(
                        f"required; e.g. '{example}'", file=source, key=f"train_params.{key}"
                    )
                )
        concept, item = train.get("concept_name"), train.get("item_type")
        for key, value in (("concept_name", concept), ("item_type", item)):
            if value is not None and (isinstance(value, (bool, dict, list, float))):
                err(f"expected text, got {show_value(value)}", ("train_params", key))
        if concept is not None and item is not None:
            # the tutorial builds its instance prompt exactly like this
            out["train"]["instance_prompt"] = f"a photo of {concept} {item}"
            key_map[("train", "instance_prompt")] = ("train_params", "concept_name")
            out["train"]["class_prompt"] = f"a photo of {item}"  # the class, without the token
            key_map[("train", "class_prompt")] = ("train_params", "item_type")
        if "prompts" not in out["evaluation"] and "instance_prompt" in out["train"]:
            out["evaluation"]["prompts"] = [out["train"]["instance_prompt"]]

    if errors:
        errors.sort(key=lambda e: e.line if e.line is not None else math.inf)
        first = errors[0]
        first.more = errors[1:]
        raise first
    return out, key_map, warnings
