"""Issue 9, item 5: whatever `check` accepts trains; whatever cannot work here, `check` refuses
in one line (exit 2) before any model loads. One case per value of every choice and per flag of
the schema, each either refused by `check` or trained for a step on the tiny model."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from ruamel.yaml import YAML

from engine.cli import main as cli_main
from engine.config import (
    EMA_DEVICES,
    EVAL_SCHEDULERS,
    LORA_TARGETS,
    LR_SCHEDULERS,
    METHODS,
    MIXED_PRECISIONS,
    OPTIMIZERS,
    REPORT_TO,
    EvaluationConfig,
    TrainConfig,
)
from tests.enginehelpers import of_type, train_in_process, write_config

CUDA = torch.cuda.is_available()
COMPILER = any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "g++", "c++"))
INSTALLED = {p: importlib.util.find_spec(p) is not None for p in ("tensorboard", "wandb")}

FAST_TRAIN = {"max_train_steps": 1, "validation_steps": 100, "checkpointing_steps": 100}
FAST_EVAL = {"num_images": 1, "num_inference_steps": 2}

# id -> (train overrides, evaluation overrides, refused on this machine?)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "defaults": ({}, {}, False),  # full, constant, adamw, no mixed precision, dpmpp_2m
    "method-lora": ({"method": "lora"}, {}, False),
    "sched-linear": ({"lr_scheduler": "linear"}, {}, False),
    "sched-cosine": ({"lr_scheduler": "cosine"}, {}, False),
    "sched-cosine_with_restarts": (
        {"lr_scheduler": "cosine_with_restarts", "lr_num_cycles": 2, "max_train_steps": 2},
        {},
        False,
    ),
    "sched-polynomial": ({"lr_scheduler": "polynomial", "lr_power": 2.0}, {}, False),
    "sched-constant_with_warmup": (
        {"lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 1, "max_train_steps": 2},
        {},
        False,
    ),
    "sched-piecewise_constant": (
        {"lr_scheduler": "piecewise_constant", "lr_step_rules": "1:2,0.5", "max_train_steps": 2},
        {},
        False,
    ),
    "sched-piecewise_constant-no-rules": ({"lr_scheduler": "piecewise_constant"}, {}, True),
    "sched-piecewise_constant-bad-rules": (
        {"lr_scheduler": "piecewise_constant", "lr_step_rules": "1:20,0.5:10,0.1"},
        {},
        True,
    ),
    "sched-constant-with-warmup-steps": ({"lr_warmup_steps": 2}, {}, True),
    "optimizer-adamw8bit": ({"optimizer": "adamw8bit"}, {}, False),
    "adam-keys": (
        {"adam_beta1": 0.8, "adam_beta2": 0.99, "adam_weight_decay": 0.0, "adam_epsilon": 1e-6},
        {},
        False,
    ),
    "adam_beta2-1": ({"adam_beta2": 1.0}, {}, True),
    "optimizer-prodigy": ({"optimizer": "prodigy", "learning_rate": 1.0}, {}, False),
    "prodigy-text_encoder_lr": (
        {
            "optimizer": "prodigy",
            "learning_rate": 1.0,
            "train_text_encoder": True,
            "text_encoder_lr": 0.5,
        },
        {},
        True,
    ),
    "ema": ({"ema_decay": 0.99}, {}, False),
    "ema-cpu-lora": ({"ema_decay": 0.99, "ema_device": "cpu", "method": "lora"}, {}, False),
    "ema_decay-1": ({"ema_decay": 1.0}, {}, True),
    "precision-bf16": ({"mixed_precision": "bf16"}, {}, False),
    "precision-fp16": ({"mixed_precision": "fp16"}, {}, not CUDA),
    "eval-euler_a": ({}, {"scheduler": "euler_a"}, False),
    "eval-ddim": ({}, {"scheduler": "ddim"}, False),
    "eval-pndm": ({}, {"scheduler": "pndm"}, False),
    # flags that change only how images are drawn: one run
    "data-flags": (
        {"captions": True, "center_crop": False, "random_flip": True, "shuffle": False},
        {},
        False,
    ),
    "prior_preservation": (
        {
            "prior_preservation": True,
            "class_data": "CLASS_DIR",
            "num_class_images": 1,
            "sample_batch_size": 1,
        },
        {},
        False,
    ),
    "train_text_encoder-full": ({"train_text_encoder": True}, {}, False),
    "train_text_encoder-lora-checkpointing": (
        {"train_text_encoder": True, "method": "lora", "gradient_checkpointing": True},
        {},
        False,
    ),
    "lora-variants": (
        {
            "method": "lora",
            "lora_dropout": 0.1,
            "use_dora": True,
            "lora_targets": "attention+ff",
            "train_text_encoder": True,
            "text_encoder_lr": 1e-5,
        },
        {},
        False,
    ),
    "lora_targets-all": ({"method": "lora", "lora_targets": "all"}, {}, False),
    "text_encoder_lr-without-text-encoder": ({"text_encoder_lr": 1e-5}, {}, True),
    "export-kohya-dora": ({"method": "lora", "use_dora": True, "export": "kohya"}, {}, True),
    "lora_dropout-1": ({"method": "lora", "lora_dropout": 1.0}, {}, True),
    "caption_dropout": ({"caption_dropout": 0.5}, {}, False),
    "gradient_checkpointing": ({"gradient_checkpointing": True}, {}, False),
    "cache_latents-off": ({"cache_latents": False, "caption_dropout": 0.5}, {}, False),
    "aspect_buckets": ({"aspect_buckets": True}, {}, False),
    "aspect_buckets-prior": (
        {
            "aspect_buckets": True,
            "prior_preservation": True,
            "class_data": "CLASS_DIR",
            "num_class_images": 2,
            "sample_batch_size": 2,
        },
        {},
        False,
    ),
    "torch_compile": ({"torch_compile": True}, {}, not CUDA and not COMPILER),
    "loss-flags": ({"snr_gamma": 5.0, "offset_noise": 0.1}, {}, False),
    "masked_loss": ({"masked_loss": True}, {}, False),  # no mask in the demo images: all count
    "report_to-tensorboard": ({"report_to": "tensorboard"}, {}, not INSTALLED["tensorboard"]),
    "report_to-wandb": ({"report_to": "wandb"}, {}, not INSTALLED["wandb"]),
    "validation_at_start": ({"validation_at_start": True}, {}, False),  # samples at 0 and 1
    "checkpoints_total_limit-null": (
        {"checkpoints_total_limit": None, "checkpointing_steps": 1, "max_train_steps": 2},
        {},
        False,
    ),
}


def _write(tmp_path: Path, train: dict[str, Any], evaluation: dict[str, Any]) -> Path:
    """The demo config with these values, written as a user would (valid or not)."""
    path = write_config(tmp_path, evaluation=evaluation)
    yaml = YAML()
    tree = yaml.load(path.read_text(encoding="utf-8"))
    tree["train"].update(train)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(tree, fh)
    return path


def test_every_choice_and_flag_has_a_case():
    train_values: dict[str, set] = {k: {f.default} for k, f in TrainConfig.model_fields.items()}
    eval_values = {k: {f.default} for k, f in EvaluationConfig.model_fields.items()}
    for train, evaluation, _ in CASES.values():
        for k, v in train.items():
            train_values.setdefault(k, set()).add(v)
        for k, v in evaluation.items():
            eval_values.setdefault(k, set()).add(v)
    assert set(METHODS) <= train_values["method"]
    assert set(LORA_TARGETS) <= train_values["lora_targets"]
    assert set(LR_SCHEDULERS) <= train_values["lr_scheduler"]
    assert set(OPTIMIZERS) <= train_values["optimizer"]
    assert set(MIXED_PRECISIONS) <= train_values["mixed_precision"]
    assert set(EMA_DEVICES) <= train_values["ema_device"]
    assert set(EVAL_SCHEDULERS) <= eval_values["scheduler"]
    assert set(REPORT_TO) <= train_values["report_to"]
    for name, field in TrainConfig.model_fields.items():
        if field.annotation is bool:  # every flag flipped from its default
            assert (not field.default) in train_values[name], name
    flags = [n for n, f in EvaluationConfig.model_fields.items() if f.annotation is bool]
    assert flags == []  # none yet; add cases when one appears


@pytest.mark.parametrize("case", list(CASES))
def test_check_refuses_or_it_trains(case, tiny_dir, tmp_path, capsys, monkeypatch):
    train, evaluation, refused = CASES[case]
    if train.get("torch_compile"):  # traced as with inductor, without its minutes of codegen
        from engine import compile as ec

        monkeypatch.setattr(ec, "COMPILE_OPTIONS", {"fullgraph": True, "backend": "eager"})
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
        torch._dynamo.reset()
    if train.get("class_data") == "CLASS_DIR":
        train = {**train, "class_data": str(tmp_path / "class")}
    train = {**FAST_TRAIN, **train}
    evaluation = {**FAST_EVAL, **evaluation}
    path = _write(tmp_path, train, evaluation)

    code = cli_main(["check", str(path)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if refused:
        assert code == 2 and len(errors) == 1, err
        assert "cfg.yaml: train." in errors[0]
        return
    assert code == 0 and errors == [], err

    code, run_dir, events = train_in_process(tmp_path, train=train, evaluation=evaluation)
    assert code == 0, of_type(events, "error")
    finished = of_type(events, "finished")[-1]
    assert finished["status"] == "completed" and finished["step"] == train["max_train_steps"]
    assert of_type(events, "sample"), "no sample image at the last step"
    assert (run_dir / "final").is_dir()
