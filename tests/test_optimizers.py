"""The optimizer keys on the tiny model: AdamW's betas, weight decay and epsilon reach the
optimizer (AdamW, 8-bit AdamW, Prodigy) and change what is trained; Prodigy's learning rate
(1.0), its missing package at `check`, and its step-size estimate across a resume."""

from __future__ import annotations

import sys

import pytest
import torch
from safetensors.torch import load_file

from engine.cli import main as cli_main
from engine.config import parse_config_text
from engine.resume_rules import config_changes
from tests.enginehelpers import losses, of_type, resume_from, train_in_process, write_config

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}
ADAM_KEYS = {"adam_beta1": 0.8, "adam_beta2": 0.95, "adam_weight_decay": 0.3, "adam_epsilon": 1e-6}


@pytest.mark.parametrize("optimizer", ["adamw", "adamw8bit", "prodigy"])
def test_optimizer_gets_the_adam_keys(tiny_dir, tmp_path, optimizer):
    """The checkpoint's optimizer state (param_groups, as the optimizer held them) has the
    config's values, for AdamW, 8-bit AdamW and Prodigy alike."""
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            **ADAM_KEYS,
            "optimizer": optimizer,
            "learning_rate": 1.0 if optimizer == "prodigy" else 1e-4,
            "max_train_steps": 2,
            "checkpointing_steps": 1,
        },
    )
    assert code == 0, of_type(events, "error")
    state = torch.load(run_dir / "checkpoints" / "step-000001" / "optimizer.pt", weights_only=False)
    for group in state["param_groups"]:
        assert tuple(group["betas"]) == (0.8, 0.95)
        assert group["weight_decay"] == 0.3
        assert group["eps"] == 1e-6


def _trained_unet(tmp_path, weight_decay: float) -> dict[str, torch.Tensor]:
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "max_train_steps": 2,
            "learning_rate": 1e-3,
            "adam_weight_decay": weight_decay,
        },
    )
    assert code == 0, of_type(events, "error")
    return load_file(run_dir / "final" / "unet" / "diffusion_pytorch_model.safetensors")


def test_weight_decay_changes_the_trained_result(tiny_dir, tmp_path):
    """Decoupled weight decay pulls every weight toward 0: same seed and data, the decayed run's
    UNet differs and is smaller."""
    plain = _trained_unet(tmp_path / "a", 0.0)
    decayed = _trained_unet(tmp_path / "b", 0.5)
    assert plain.keys() == decayed.keys()
    norm = lambda sd: torch.sqrt(sum((v.double() ** 2).sum() for v in sd.values()))  # noqa: E731
    assert norm(decayed) < norm(plain)
    # 2 updates at lr 1e-3 with decay 0.5 shrink each weight by about 0.1% (lr * decay * 2)
    assert norm(decayed) / norm(plain) == pytest.approx(1 - 2 * 1e-3 * 0.5, abs=2e-4)


@pytest.mark.parametrize("key", list(ADAM_KEYS))
def test_resume_refuses_a_changed_adam_key(key):
    """The checkpoint's optimizer state would put the old value back: refused, not ignored."""
    old = {"train": {key: 0.5}}
    new = {"train": {key: 0.25}}
    frozen, followed = config_changes(old, new)
    assert frozen == [(f"train.{key}", 0.5, 0.25)] and followed == []


MINIMAL = "train:\n  model: builtin:tiny\n  instance_data: builtin:tiny\n  instance_prompt: x\n"


@pytest.mark.parametrize("method", ["full", "lora"])
def test_prodigy_learning_rate_defaults_to_1(method):
    cfg, warnings = parse_config_text(MINIMAL + f"  method: {method}\n  optimizer: prodigy\n")
    assert cfg.train.learning_rate == 1.0 and warnings == []


def test_prodigy_with_an_adamw_learning_rate_is_a_warning_at_check(tiny_dir, tmp_path, capsys):
    path = write_config(tmp_path, train={"optimizer": "prodigy", "learning_rate": 1e-4})
    assert cli_main(["check", str(path)]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1
    assert "cfg.yaml: train.learning_rate: 0.0001 with optimizer prodigy" in warnings[0]
    assert "1.0 is recommended" in warnings[0]


def test_prodigy_without_its_package_is_one_line_at_check(tiny_dir, tmp_path, capsys, monkeypatch):
    path = write_config(tmp_path, train={"optimizer": "prodigy", "learning_rate": 1.0})
    monkeypatch.setitem(sys.modules, "prodigyopt", None)  # import prodigyopt: ImportError
    assert cli_main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "cfg.yaml: train.optimizer: prodigy needs the prodigyopt package" in errors[0]
    assert "pip install prodigyopt" in errors[0]


def test_prodigy_resume_restores_its_step_size_estimate(tiny_dir, tmp_path):
    """Prodigy's estimate (d, and what it grows from: d_numerator and the step count k, which
    also sets its bias correction) is in the optimizer's param_groups: the step-2 checkpoint
    holds it as it was after 2 updates, the step events report d * learning_rate, and a resume
    from the checkpoint repeats the uninterrupted run's losses, step sizes and final LoRA bit
    for bit (an estimate restarted at k = 0 would change the updates)."""
    train = {
        "method": "lora",
        "optimizer": "prodigy",
        "learning_rate": 1.0,
        "max_train_steps": 4,
        "validation_steps": 100,
        "checkpointing_steps": 2,
    }
    code, run_dir, events = train_in_process(tmp_path, train=train)
    assert code == 0, of_type(events, "error")
    lrs = [e["lr"] for e in of_type(events, "step")]
    saved = torch.load(run_dir / "checkpoints" / "step-000002" / "optimizer.pt", weights_only=False)
    group = saved["param_groups"][0]
    assert group["k"] == 2 and group["d_numerator"] != 0.0
    assert group["d"] * 1.0 == lrs[2]  # the step size step 3 applied
    final = load_file(run_dir / "final" / "pytorch_lora_weights.safetensors")
    whole = losses(events)
    resumed = resume_from(run_dir, 2)
    assert resumed == {3: whole[3], 4: whole[4]}
    assert [e["lr"] for e in read_steps(run_dir)[-2:]] == lrs[2:]
    again = load_file(run_dir / "final" / "pytorch_lora_weights.safetensors")
    assert final.keys() == again.keys()
    assert all(torch.equal(final[k], again[k]) for k in final)


def read_steps(run_dir) -> list[dict]:
    from engine.events import read_events

    return of_type(read_events(run_dir / "events.jsonl"), "step")
