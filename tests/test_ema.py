"""train.ema_decay on the tiny models (CPU): the average follows EMAModel's decay rule, final/
and the samples are made with it (not with the trained weights, which differ), checkpoints hold
it and a resume continues it exactly; full fine-tune and LoRA, SD and SDXL."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.enginehelpers import losses, of_type, resume_from, train_in_process
from tests.test_run_outputs import generated, pixels, samples_of, train_run

DECAY = 0.9
EVALUATION = {"num_images": 2, "num_inference_steps": 3, "seed": 7, "scheduler": "euler_a"}


def ramp(n: int) -> float:
    """EMAModel's decay at update n: 0 at the first (the average starts as the weights)."""
    return 0.0 if n <= 1 else min(DECAY, n / (9 + n))


def ckpt(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:06d}"


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def full_run(tiny_dir, tmp_path_factory):
    """Full fine-tune of the UNet and text encoder, a checkpoint after every update."""
    return train_run(
        tmp_path_factory.mktemp("ema-full"),
        {
            "max_train_steps": 4,
            "validation_steps": 2,
            "checkpointing_steps": 1,
            "checkpoints_total_limit": None,
            "learning_rate": 1e-3,
            "train_text_encoder": True,
            "ema_decay": DECAY,
        },
        EVALUATION,
    )


def test_the_average_follows_the_decay_rule(full_run):
    """Each checkpoint's ema-*.safetensors is the average of the trained weights the earlier
    checkpoints hold, weighted by EMAModel's ramp: computed here from the files alone."""
    _, run_dir, _ = full_run
    for module in ("unet", "text_encoder"):
        average = None
        for step in (1, 2, 3):
            trained = load_file(ckpt(run_dir, step) / f"{module}.safetensors")
            d = ramp(step)
            average = (
                trained
                if average is None
                else {k: d * average[k] + (1 - d) * trained[k] for k in trained}
            )
            saved = load_file(ckpt(run_dir, step) / f"ema-{module}.safetensors")
            assert max_diff(saved, average) < 1e-6, (module, step)
            if step > 1:
                assert max_diff(saved, trained) > 1e-5, (module, step)  # an average, not a copy


def test_final_holds_the_ema_weights_not_the_trained_ones(full_run):
    """final/ = ramp(4) * average at step 3 + (1 - ramp(4)) * the weights trained at step 4 (the
    Trainer's own, which stay the trained ones), and differs from those."""
    trainer, run_dir, _ = full_run
    d = ramp(4)
    for module, model in (
        ("unet", trainer.models.unet),
        ("text_encoder", trainer.models.text_encoder),
    ):
        trained = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
        before = load_file(ckpt(run_dir, 3) / f"ema-{module}.safetensors")
        expected = {k: d * before[k] + (1 - d) * trained[k] for k in trained}
        name = "diffusion_pytorch_model" if module == "unet" else "model"
        final = load_file(run_dir / "final" / module / f"{name}.safetensors")
        final = {k: final[k] for k in expected}
        assert max_diff(final, expected) < 1e-6, module
        assert max_diff(final, trained) > 1e-5, module


def test_samples_are_made_with_the_ema_weights(full_run, tmp_path):
    """The step-2 samples are what `generate --checkpoint 2` makes (it loads the average), and
    not what the weights trained by step 2 make; the last samples are final/'s images."""
    _, run_dir, events = full_run
    at_2 = samples_of(run_dir, events, 2)
    with_ema = generated(tmp_path / "ema", run_dir, "--run", str(run_dir), "--checkpoint", "2")
    for a, b in zip(with_ema, at_2, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), (a, b)
    for f in ckpt(run_dir, 2).glob("ema-*.safetensors"):  # the same checkpoint, trained weights
        shutil.move(f, tmp_path / f.name)
    try:
        raw = generated(tmp_path / "raw", run_dir, "--run", str(run_dir), "--checkpoint", "2")
    finally:
        for f in tmp_path.glob("ema-*.safetensors"):
            shutil.move(f, ckpt(run_dir, 2) / f.name)
    assert not np.array_equal(pixels(raw[0]), pixels(at_2[0]))
    last = samples_of(run_dir, events, 4)
    final = generated(tmp_path / "final", run_dir, "--run", str(run_dir))
    for a, b in zip(final, last, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), (a, b)


def _final_lora(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "final" / "pytorch_lora_weights.safetensors")


@pytest.mark.parametrize("ema_device", ["gpu", "cpu"])
def test_lora_resume_continues_the_average_exactly(tiny_dir, tmp_path, ema_device):
    """A LoRA run resumed from its step-2 checkpoint repeats the uninterrupted run's losses and
    writes the same final LoRA (the average restored, not restarted), bit for bit."""
    train = {
        "method": "lora",
        "train_text_encoder": True,
        "max_train_steps": 4,
        "validation_steps": 100,
        "checkpointing_steps": 2,
        "learning_rate": 1e-2,
        "ema_decay": DECAY,
        "ema_device": ema_device,
    }
    code, run_dir, events = train_in_process(tmp_path, train=train, evaluation=EVALUATION)
    assert code == 0, of_type(events, "error")
    whole, whole_losses = _final_lora(run_dir), losses(events)
    state = (ckpt(run_dir, 2) / "state.json").read_text()
    assert '"optimization_step": 2' in state
    resumed = resume_from(run_dir, 2)
    assert resumed == {3: whole_losses[3], 4: whole_losses[4]}
    again = _final_lora(run_dir)
    assert whole.keys() == again.keys()
    assert all(torch.equal(whole[k], again[k]) for k in whole)


def test_sdxl_lora_final_is_the_average(tiny_sdxl_dir, tmp_path):
    """Through the SDXL family: the final LoRA is the adapters' average, not the trained ones."""
    from engine.train import Trainer
    from tests.enginehelpers import prepare

    run_dir = prepare(
        tmp_path,
        train={
            "model": "builtin:tiny-sdxl",
            "method": "lora",
            "max_train_steps": 3,
            "validation_steps": 100,
            "checkpointing_steps": 100,
            "learning_rate": 1e-2,
            "ema_decay": DECAY,
            "ema_device": "cpu",
        },
        evaluation={"num_images": 1, "num_inference_steps": 2},
    )
    trainer = Trainer(run_dir, None, ["test"])
    assert trainer.run() == 0
    ema = trainer.models.ema
    assert ema.step == 3 and all(s.device.type == "cpu" for s in ema.average.shadow_params)
    final = _final_lora(run_dir)
    trained = {n: p.detach().cpu() for _, n, p in ema.named}
    average = dict(zip(trained, ema.average.shadow_params, strict=True))
    lora_b = [n for n in trained if ".lora_B." in n]  # zero at the start: both moved since
    assert lora_b and len(final) == len(trained)
    # final values, matched by value to the average (the file's names are diffusers')
    final_sums = sorted(round(float(v.double().sum()), 6) for v in final.values())
    assert final_sums == sorted(round(float(v.double().sum()), 6) for v in average.values())
    assert final_sums != sorted(round(float(v.double().sum()), 6) for v in trained.values())
