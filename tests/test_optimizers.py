"""The optimizer keys on the tiny model: AdamW's betas, weight decay and epsilon reach the
optimizer (AdamW and 8-bit AdamW) and change what is trained."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from engine.resume_rules import config_changes
from tests.enginehelpers import of_type, train_in_process

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}
ADAM_KEYS = {"adam_beta1": 0.8, "adam_beta2": 0.95, "adam_weight_decay": 0.3, "adam_epsilon": 1e-6}


@pytest.mark.parametrize("optimizer", ["adamw", "adamw8bit"])
def test_optimizer_gets_the_adam_keys(tiny_dir, tmp_path, optimizer):
    """The checkpoint's optimizer state (param_groups, as the optimizer held them) has the
    config's values, for AdamW and 8-bit AdamW alike."""
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            **ADAM_KEYS,
            "optimizer": optimizer,
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
