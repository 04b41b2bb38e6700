"""What the app's config form needs from the schema: its field groups, and one field's value
validated as the user types it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from engine.config.errors import unknown_key_message
from engine.config.schema import SECTION_MODELS, SECTIONS, EvaluationConfig, HubConfig
from engine.config.validation import message_for

#: The groups of the config form, in order; together they name every field exactly once.
FIELD_GROUPS: dict[str, list[tuple[str, str]]] = {
    "Model and data": [
        ("train", k)
        for k in (
            "model",
            "revision",
            "instance_data",
            "instance_prompt",
            "captions",
            "caption_dropout",
            "resolution",
            "center_crop",
            "random_flip",
            "aspect_buckets",
            "shuffle",
        )
    ],
    "Method": [
        ("train", k)
        for k in (
            "method",
            "lora_rank",
            "lora_alpha",
            "lora_dropout",
            "use_dora",
            "lora_targets",
            "train_text_encoder",
            "prior_preservation",
            "class_data",
            "class_prompt",
            "num_class_images",
            "sample_batch_size",
            "prior_loss_weight",
        )
    ],
    "Optimisation": [
        ("train", k)
        for k in (
            "max_train_steps",
            "train_batch_size",
            "gradient_accumulation_steps",
            "learning_rate",
            "text_encoder_lr",
            "lr_scheduler",
            "lr_warmup_steps",
            "lr_num_cycles",
            "lr_power",
            "lr_step_rules",
            "optimizer",
            "adam_beta1",
            "adam_beta2",
            "adam_weight_decay",
            "adam_epsilon",
            "max_grad_norm",
            "ema_decay",
            "snr_gamma",
            "offset_noise",
            "masked_loss",
            "seed",
        )
    ],
    "Memory": [
        ("train", k)
        for k in (
            "mixed_precision",
            "gradient_checkpointing",
            "cache_latents",
            "torch_compile",
            "ema_device",
            "num_processes",
        )
    ],
    "Sampling and checkpoints": [
        ("train", k)
        for k in (
            "validation_steps",
            "validation_at_start",
            "checkpointing_steps",
            "checkpoints_total_limit",
            "output_dir",
            "run_name",
            "report_to",
            "export",
        )
    ],
    "Evaluation": [("evaluation", k) for k in EvaluationConfig.model_fields],
    "Hub": [("hub", k) for k in HubConfig.model_fields],
}


_PLACEHOLDERS = {"model": "x", "instance_data": "x", "instance_prompt": "x"}
_YAML_SAFE = YAML(typ="safe", pure=True)


def _is_text_field(section: str, key: str) -> bool:
    ann = SECTION_MODELS[section].model_fields[key].annotation
    return ann in (str, str | None)


def validate_value(section: str, key: str, raw: str) -> tuple[object, str | None]:
    """Parse what a user typed into one form field and validate it against that field.

    Returns ``(value, None)`` or ``(None, "one-line error naming what is valid")``. Text fields
    take the text as typed (quotes optional; ``null`` or nothing clears an optional one); other
    fields read it as a YAML scalar or flow list (``[a, b]``); nothing typed means null.
    """
    model = SECTION_MODELS.get(section)
    if model is None:
        return None, f"unknown section {section!r}; valid: {', '.join(SECTIONS)}"
    field = model.model_fields.get(key)
    if field is None:
        return None, unknown_key_message(key, list(model.model_fields))
    text = (raw or "").strip()
    value: Any
    if _is_text_field(section, key):
        optional = field.annotation is not str
        if optional and text.lower() in ("", "null", "~"):
            value = None
        elif len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            try:
                value = _YAML_SAFE.load(text)
            except YAMLError:
                value = text
        else:
            value = text
    elif text == "":
        value = None
    else:
        try:
            value = _YAML_SAFE.load(text)
        except YAMLError:
            value = text
        if key == "prompts" and not isinstance(value, (list, str)):
            value = text  # "a photo: dog" is one prompt, not a mapping
    data: dict[str, Any] = dict(_PLACEHOLDERS) if section == "train" else {}
    data[key] = value
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = next((e for e in errors if e["loc"] and e["loc"][0] == key), errors[0])
        message = message_for(err)
        if text == "":
            message = re.sub(r", got null$", "", message)
            return None, (
                "a value is required"
                if message == "must not be empty"
                else f"a value is required; {message}"
            )
        return None, message
    return getattr(obj, key), None
