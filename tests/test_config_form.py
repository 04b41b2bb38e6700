"""engine/config.py's form helpers: one field's value checked, the field groups, the summary.

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import pytest
from confighelpers import MINIMAL, SAMPLES

from engine.config import (
    FIELD_GROUPS,
    EvaluationConfig,
    HubConfig,
    TrainConfig,
    load_config,
    parse_config_text,
    summary,
    validate_value,
)

# --------------------------------------------------------------------------------------------
# the form helpers


@pytest.mark.parametrize(
    ("section", "key", "raw", "value"),
    [
        ("train", "max_train_steps", "800", 800),
        ("train", "learning_rate", "1e-4", 1e-4),
        ("train", "learning_rate", "2", 2.0),
        ("train", "method", "lora", "lora"),
        ("train", "mixed_precision", "no", "no"),
        ("train", "gradient_checkpointing", "yes", True),
        ("train", "snr_gamma", "", None),
        ("train", "snr_gamma", "null", None),
        ("train", "checkpoints_total_limit", "null", None),
        ("train", "instance_prompt", "a sks dog # not a comment", "a sks dog # not a comment"),
        ("train", "instance_prompt", "'quoted: yes'", "quoted: yes"),
        ("train", "class_data", "", None),
        ("train", "run_name", "2024", "2024"),
        ("evaluation", "prompts", "[a photo, another photo]", ["a photo", "another photo"]),
        ("evaluation", "prompts", "just one, with a comma", ["just one, with a comma"]),
        ("evaluation", "prompts", "a photo: on the beach", ["a photo: on the beach"]),
        ("evaluation", "negative_prompt", "", ""),
        ("evaluation", "height", "768", 768),
        ("hub", "private", "false", False),
    ],
)
def test_validate_value_good(section, key, raw, value):
    got, error = validate_value(section, key, raw)
    assert error is None
    assert got == value


@pytest.mark.parametrize(
    ("section", "key", "raw", "expected"),
    [
        ("train", "max_train_steps", "abc", "expected an integer, got 'abc'"),
        ("train", "max_train_steps", "1.5", "expected an integer, got 1.5"),
        ("train", "max_train_steps", "0", "must be >= 1, got 0"),
        ("train", "learning_rate", "-1", "must be > 0, got -1.0"),
        ("train", "learning_rate", "fast", "expected a number, got 'fast'"),
        ("train", "method", "qlora", "must be one of full, lora; got 'qlora'"),
        ("train", "resolution", "500", "must be a positive multiple of 8, got 500; e.g. 496 or 504"),
        ("train", "captions", "maybe", "expected true or false, got 'maybe'"),
        ("train", "max_train_steps", "", "a value is required; expected an integer"),
        ("train", "model", "", "a value is required"),
        ("evaluation", "prompts", "[1, 2]", "item 1: expected a prompt (text), got 1"),
        ("evaluation", "scheduler", "heun", "must be one of dpmpp_2m, euler_a, ddim, pndm; got 'heun'"),
        ("train", "learnig_rate", "1", "unknown key; did you mean 'learning_rate'?"),
    ],
)  # fmt: skip
def test_validate_value_bad(section, key, raw, expected):
    value, error = validate_value(section, key, raw)
    assert value is None and error == expected


def test_field_groups_cover_every_field_once():
    assert list(FIELD_GROUPS) == [
        "Model and data",
        "Method",
        "Optimisation",
        "Memory",
        "Sampling and checkpoints",
        "Evaluation",
        "Hub",
    ]
    listed = [pair for pairs in FIELD_GROUPS.values() for pair in pairs]
    every = [
        (section, key)
        for section, model in (("train", TrainConfig), ("evaluation", EvaluationConfig), ("hub", HubConfig))
        for key in model.model_fields
    ]  # fmt: skip
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(every)


def test_summary():
    cfg = parse_config_text(MINIMAL)[0]
    assert summary(cfg, 5) == (
        "5 images · 400 steps · effective batch 1 (1×1×1 GPU) · full fine-tune · fp32 · "
        "prior preservation off · aspect buckets auto (on for SDXL, off for SD 1.x/2.x)"
    )
    cfg = load_config(SAMPLES / "sd15-full.yaml")
    cfg.train.train_batch_size, cfg.train.gradient_accumulation_steps = 2, 4
    cfg.train.num_processes = 2
    line = summary(cfg)
    assert line.startswith("800 steps · effective batch 16 (2×4×2 GPUs)")
    assert "bf16" in line and "prior preservation on (200 class images)" in line
    assert "LoRA rank 8" in summary(load_config(SAMPLES / "sd15-lora.yaml"), 1)
    assert summary(load_config(SAMPLES / "sd15-lora.yaml"), 1).startswith("1 image ·")
