"""engine/config.py: the sample configs, defaults, values and coercion.

Pure and fast: no torch, no network. Errors, the tutorial format, the round trip, the form
helpers and paths are in test_config_errors.py, _tutorial.py, _roundtrip.py, _form.py, _paths.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confighelpers import DATA, MINIMAL, ROOT, SAMPLES, error_of, with_train

from engine.config import (
    BUILTIN_TINY,
    LR_SCHEDULERS,
    Config,
    EvaluationConfig,
    HubConfig,
    TrainConfig,
    config_to_dict,
    dump_config,
    load_config,
    parse_config_text,
    read_config,
)
from engine.sources import BUILTIN_TINY_SHAPES

# DESIGN.md "Config": every default (required keys excluded), plus the lead's additional keys.
DESIGN_DEFAULTS = {
    "train": {
        "revision": None,
        "captions": False,
        "prior_preservation": False,
        "class_data": None,
        "class_prompt": "a photo of dog",
        "num_class_images": 100,
        "prior_loss_weight": 1.0,
        "resolution": 512,
        "center_crop": True,
        "random_flip": False,
        "method": "full",
        "lora_rank": 4,
        "lora_alpha": 4,
        "train_text_encoder": False,
        "max_train_steps": 400,
        "train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 5.0e-6,
        "lr_scheduler": "constant",
        "lr_warmup_steps": 0,
        "optimizer": "adamw",
        "max_grad_norm": 1.0,
        "mixed_precision": "no",
        "gradient_checkpointing": False,
        "cache_latents": True,
        "snr_gamma": None,
        "offset_noise": 0.0,
        "masked_loss": False,
        "seed": 42,
        "checkpointing_steps": 500,
        "checkpoints_total_limit": 2,
        "validation_steps": 100,
        "num_processes": 1,
        "output_dir": "runs",
        # additional keys
        "run_name": None,
        "shuffle": True,
        "sample_batch_size": 4,
        "torch_compile": False,
        "report_to": "none",
        "lr_num_cycles": 1,
        "lr_power": 1.0,
        "lr_step_rules": None,
        "export": [],
        "aspect_buckets": "auto",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_weight_decay": 1e-2,
        "adam_epsilon": 1e-8,
        "ema_decay": None,
        "ema_device": "gpu",
        "caption_dropout": 0.0,
        "lora_dropout": 0.0,
        "use_dora": False,
        "lora_targets": "attention",
        "text_encoder_lr": None,
        "validation_at_start": False,
    },
    "evaluation": {
        "prompts": ["a photo of sks dog on the beach"],
        "negative_prompt": "",
        "num_images": 4,
        "num_inference_steps": 25,
        "guidance_scale": 7.5,
        "seed": 0,
        "scheduler": "dpmpp_2m",
        "height": None,
        "width": None,
        "output_dir": "images",
    },
    "hub": {"model_repo": None, "dataset_repo": None, "private": True},
}

DESIGN_TRAIN_ORDER = [
    "model", "revision", "instance_data", "instance_prompt", "captions", "prior_preservation",
    "class_data", "class_prompt", "num_class_images", "prior_loss_weight", "resolution",
    "center_crop", "random_flip", "method", "lora_rank", "lora_alpha", "train_text_encoder",
    "max_train_steps", "train_batch_size", "gradient_accumulation_steps", "learning_rate",
    "lr_scheduler", "lr_warmup_steps", "optimizer", "max_grad_norm", "mixed_precision",
    "gradient_checkpointing", "cache_latents", "snr_gamma", "offset_noise", "seed",
    "checkpointing_steps", "checkpoints_total_limit", "validation_steps", "num_processes",
    "output_dir",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# samples and defaults


@pytest.mark.parametrize(
    "name",
    [
        "sd15-full.yaml",
        "sd15-lora.yaml",
        "sdxl-full.yaml",
        "sdxl-lora.yaml",
        "demo.yaml",
        "tutorial-format.yaml",
    ],
)
def test_every_sample_config_loads(name):
    cfg, warnings = read_config(SAMPLES / name)
    assert isinstance(cfg, Config)
    if name == "tutorial-format.yaml":
        assert len(warnings) == 1 and "feature_extractor" in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize(
    "name", ["sd15-full.yaml", "sd15-lora.yaml", "sdxl-full.yaml", "sdxl-lora.yaml", "demo.yaml"]
)
def test_samples_show_every_key_and_round_trip_unchanged(name):
    text = (SAMPLES / name).read_text()
    cfg = load_config(SAMPLES / name)
    assert dump_config(cfg, text) == text
    for section, keys in config_to_dict(cfg).items():
        for key in keys:
            assert f"  {key}:" in text, f"{name} does not show {section}.{key}"


def test_sample_values():
    full = load_config(SAMPLES / "sd15-full.yaml").train
    assert full.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert full.method == "full" and full.optimizer == "adamw8bit"
    assert full.mixed_precision in ("bf16", "fp16") and full.gradient_checkpointing
    assert full.learning_rate in (2e-6, 5e-6) and full.max_train_steps == 800
    assert full.prior_preservation and full.class_data == "./class-dog"
    assert full.resolution == 512

    lora = load_config(SAMPLES / "sd15-lora.yaml").train
    assert lora.method == "lora" and lora.learning_rate == 1e-4 and lora.resolution == 512
    assert lora.mixed_precision == "bf16" and lora.lora_rank == lora.lora_alpha == 8

    demo = load_config(SAMPLES / "demo.yaml")
    t, e = demo.train, demo.evaluation
    assert t.model == BUILTIN_TINY_SHAPES and t.instance_data == BUILTIN_TINY
    assert t.instance_prompt == "a photo of sks shape"
    assert (t.resolution, t.max_train_steps, t.validation_steps, t.checkpointing_steps) == (
        32,
        200,
        20,
        100,
    )
    assert t.validation_at_start and (e.num_images, e.num_inference_steps) == (2, 8)
    assert t.learning_rate == 2e-4 and t.mixed_precision == "no" and t.cache_latents
    assert t.output_dir == "runs"


def test_defaults_match_design():
    cfg, warnings = parse_config_text(MINIMAL)
    assert warnings == []
    data = config_to_dict(cfg)
    for section, defaults in DESIGN_DEFAULTS.items():
        for key, value in defaults.items():
            assert data[section][key] == value, f"{section}.{key}"
        required = {"model", "instance_data", "instance_prompt"} if section == "train" else set()
        assert set(data[section]) == set(defaults) | required, section


def test_key_order_follows_design():
    keys = list(TrainConfig.model_fields)
    assert [k for k in keys if k in DESIGN_TRAIN_ORDER] == DESIGN_TRAIN_ORDER
    assert list(Config.model_fields) == ["train", "evaluation", "hub"]


def test_every_field_has_a_one_line_description():
    for model in (TrainConfig, EvaluationConfig, HubConfig, Config):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
            assert "\n" not in field.description


def test_config_to_dict_is_json_able():
    cfg = load_config(SAMPLES / "sd15-full.yaml")
    data = config_to_dict(cfg)
    assert json.loads(json.dumps(data)) == data
    assert list(data["train"])[:4] == ["model", "revision", "instance_data", "instance_prompt"]


def test_import_stays_light():
    code = (
        "import sys, engine.config\n"
        "heavy = {'torch', 'diffusers', 'transformers', 'accelerate', 'datasets', 'textual'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# values and coercion


def test_yaml_12_no_and_false_mean_no():
    assert parse_config_text(with_train("mixed_precision: no\n"))[0].train.mixed_precision == "no"
    cfg, warnings = parse_config_text(with_train("mixed_precision: false\n"), "demo.yaml")
    assert cfg.train.mixed_precision == "no"
    assert warnings and "train.mixed_precision" in warnings[0]
    cfg = parse_config_text(with_train("mixed_precision: BF16\nmethod: LoRA\n"))[0]
    assert (cfg.train.mixed_precision, cfg.train.method) == ("bf16", "lora")


def test_numbers_and_lists():
    cfg = parse_config_text(
        with_train("learning_rate: 5e-6\nmax_grad_norm: 2\n")
        + "evaluation:\n  prompts: one prompt\n  guidance_scale: 7\n"
    )[0]
    assert cfg.train.learning_rate == 5e-6 and isinstance(cfg.train.max_grad_norm, float)
    assert cfg.evaluation.prompts == ["one prompt"]
    assert cfg.evaluation.guidance_scale == 7.0


def test_all_lr_schedulers_accepted():
    assert "cosine_with_restarts" in LR_SCHEDULERS and len(LR_SCHEDULERS) == 7
    for name in LR_SCHEDULERS:
        rules = "lr_step_rules: '1:10,0.1'\n" if name == "piecewise_constant" else ""
        text = with_train(f"lr_scheduler: {name}\n{rules}")
        assert parse_config_text(text)[0].train.lr_scheduler == name


def test_piecewise_constant_needs_valid_step_rules_in_one_line():
    err = error_of(with_train("lr_scheduler: piecewise_constant\n"))
    assert err.key == "train.lr_step_rules" and "1:100,0.1:300,0.01" in str(err)
    err = error_of(
        with_train("lr_scheduler: piecewise_constant\nlr_step_rules: '1:20,0.5:10,0.1'\n")
    )
    assert err.key == "train.lr_step_rules" and "increasing" in str(err)
    err = error_of(with_train("lr_warmup_steps: 5\n"))  # constant ignores warmup
    assert err.key == "train.lr_warmup_steps" and "constant_with_warmup" in str(err)


def test_sections_optional_and_null_limit():
    cfg = parse_config_text(with_train("checkpoints_total_limit: null\nsnr_gamma: 5\n"))[0]
    assert cfg.train.checkpoints_total_limit is None and cfg.train.snr_gamma == 5.0
    assert cfg.hub.private is True and cfg.evaluation.height is None


def test_overrides():
    cfg = parse_config_text(MINIMAL, overrides={"train": {"max_train_steps": 3}})[0]
    assert cfg.train.max_train_steps == 3 and cfg.train.instance_prompt == "a photo of sks dog"
    err = error_of(MINIMAL, overrides={"train": {"max_train_steps": 0}})
    assert str(err) == "demo.yaml: train.max_train_steps: must be >= 1, got 0"
    tut = parse_config_text((DATA / "tutorial.yaml").read_text(), overrides={"train": {"seed": 1}})
    assert tut[0].train.seed == 1


def test_learning_rate_default_follows_the_method():
    from engine.config import parse_config_text

    base = "train:\n  model: a/b\n  instance_data: a/c\n  instance_prompt: x\n"
    assert parse_config_text(base)[0].train.learning_rate == 5e-6
    assert parse_config_text(base + "  method: lora\n")[0].train.learning_rate == 1e-4
    lr = parse_config_text(base + "  method: lora\n  learning_rate: 3.0e-4\n")[
        0
    ].train.learning_rate
    assert lr == 3e-4


def test_a_retired_key_from_an_older_run_loads_with_a_warning():
    from engine.config import parse_config_text

    base = "train:\n  model: a/b\n  instance_data: a/c\n  instance_prompt: x\n"
    cfg, warnings = parse_config_text(base + "  dataloader_num_workers: 2\n", "old.yaml")
    assert cfg.train.instance_prompt == "x"
    assert any("train.dataloader_num_workers" in w and "ignored" in w for w in warnings)
