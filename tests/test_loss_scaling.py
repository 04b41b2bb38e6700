"""Issue 9 item 7: fp16 loss scaling. A skipped (overflowed) update does not advance the LR
schedule, and the gradient scaler's state survives a checkpoint.

accelerate gives no GradScaler on a CPU (fp16 there is refused), so these tests drive the
engine's own functions with a real torch GradScaler on the CPU, a real accelerate optimizer
wrapper around the engine's fused AdamW, and a real inf gradient.
"""

from __future__ import annotations

import pytest
import torch

from engine import checkpoint as ckpt
from engine.loss_scaling import SCALER_FILE, optimizer_update


@pytest.fixture
def accelerated():
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.state import AcceleratorState
    from diffusers.optimization import get_scheduler

    AcceleratorState._reset_state(reset_partial_state=True)
    Accelerator(cpu=True)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)  # as the engine
    scaler = torch.amp.GradScaler("cpu")
    wrapped = AcceleratedOptimizer(optimizer, scaler=scaler)
    schedule = get_scheduler(
        "linear", optimizer, num_warmup_steps=10, num_training_steps=100
    )  # the LR rises at every counted step
    return model, wrapped, scaler, schedule


def _backward(model, scaler, overflow: bool) -> None:
    loss = model(torch.ones(2, 4)).pow(2).mean()
    scaler.scale(loss).backward()
    if overflow:
        model.weight.grad[0, 0] = float("inf")


def test_overflowed_update_is_skipped_and_does_not_advance_the_lr_schedule(accelerated):
    model, optimizer, scaler, schedule = accelerated
    _backward(model, scaler, overflow=False)
    assert optimizer_update(optimizer, schedule, scaler) is False
    assert schedule.last_epoch == 1
    lr, weights, scale = (
        schedule.get_last_lr()[0],
        model.weight.detach().clone(),
        scaler.get_scale(),
    )

    _backward(model, scaler, overflow=True)
    assert optimizer_update(optimizer, schedule, scaler) is True
    assert torch.equal(model.weight, weights)  # the update was skipped ...
    assert scaler.get_scale() == scale / 2  # ... the scaler backed off ...
    assert schedule.last_epoch == 1 and schedule.get_last_lr()[0] == lr  # ... the LR stayed
    assert model.weight.grad is None

    _backward(model, scaler, overflow=False)
    assert optimizer_update(optimizer, schedule, scaler) is False
    assert schedule.last_epoch == 2 and schedule.get_last_lr()[0] > lr
    assert not torch.equal(model.weight, weights)


def test_without_a_scaler_every_update_counts(accelerated):
    model, optimizer, _, schedule = accelerated
    plain = torch.optim.AdamW(model.parameters(), lr=1e-2)
    schedule.optimizer = plain
    model(torch.ones(2, 4)).sum().backward()
    assert optimizer_update(plain, schedule, None) is False
    assert schedule.last_epoch == 1


def test_checkpoint_saves_and_restores_the_gradient_scaler(accelerated, tmp_path):
    model, optimizer, scaler, schedule = accelerated
    for overflow in (True, True, False):  # scale 65536 -> 16384, one good step since
        _backward(model, scaler, overflow)
        optimizer_update(optimizer, schedule, scaler)
    assert scaler.get_scale() == 16384.0
    saved = scaler.state_dict()
    assert saved["_growth_tracker"] == 1

    path = ckpt.write_checkpoint(
        tmp_path, 3, model, None, optimizer, schedule, {"method": "full"}, scaler=scaler
    )
    assert (path / SCALER_FILE).exists()

    fresh = torch.amp.GradScaler("cpu")
    assert fresh.get_scale() == 65536.0
    step = ckpt.load_checkpoint(path, model, None, optimizer, schedule, 0, fresh)
    assert step == 3
    assert fresh.state_dict() == saved
    # and the restored scaler carries on from there: an overflow halves 16384
    _backward(model, fresh, overflow=True)
    optimizer.scaler = fresh
    assert optimizer_update(optimizer, schedule, fresh) is True
    assert fresh.get_scale() == 8192.0


def test_a_checkpoint_without_a_scaler_leaves_a_fresh_one(accelerated, tmp_path):
    model, optimizer, _, schedule = accelerated
    path = ckpt.write_checkpoint(tmp_path, 1, model, None, optimizer, schedule, {})
    assert not (path / SCALER_FILE).exists()
    fresh = torch.amp.GradScaler("cpu")
    ckpt.load_checkpoint(path, model, None, optimizer, schedule, 0, fresh)
    assert fresh.get_scale() == 65536.0
