"""Min-SNR, offset noise and v-prediction change the loss as the papers say (issue 9).

The engine's loss for a micro-batch is compared with the recipe written out by hand from the
scheduler's alphas_cumprod: noisy = sqrt(a) x0 + sqrt(1-a) eps; target eps (epsilon models) or
v = sqrt(a) eps - sqrt(1-a) x0 (v-prediction); per-sample MSE weighted by min(SNR, gamma)/SNR
(epsilon) or min(SNR, gamma)/(SNR+1) (v), SNR = a/(1-a); offset noise adds one N(0, 1) draw per
image and channel, times offset_noise, after the per-pixel noise.
"""

from __future__ import annotations

import pytest
import torch

from engine.config import load_config
from engine.recipe import dreambooth_loss, sample_noise
from engine.runs import CONFIG_FILE
from tests.enginehelpers import of_type, prepare, train_in_process

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}


@pytest.fixture(scope="module")
def v_model(tiny_dir, tmp_path_factory):
    from engine.tiny import build_v_prediction

    return build_v_prediction(tmp_path_factory.mktemp("v") / "model")


def prepared_trainer(tmp, **train):
    """A Trainer with models, data, cache and optimizer ready, before its first step."""
    from engine.train import Trainer

    run_dir = prepare(tmp, train={**QUIET, "train_batch_size": 4, **train})
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / CONFIG_FILE)
    trainer.setup()
    trainer.prepare()
    return trainer


def loss_by_hand(trainer, k: int) -> torch.Tensor:
    """Micro-batch k's loss, the recipe written out (same generator, same order of draws)."""
    tc = trainer.cfg.train
    sched = trainer.noise_scheduler
    latents, embeds, _, gen = trainer.micro_batch(k)
    b, c = latents.shape[:2]
    eps = torch.randn(latents.shape, generator=gen, dtype=latents.dtype)
    if tc.offset_noise:
        eps = eps + tc.offset_noise * torch.randn((b, c, 1, 1), generator=gen)
    t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=gen)
    a = sched.alphas_cumprod[t].to(latents.dtype).view(b, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * eps
    with torch.no_grad():
        pred = trainer.unet(noisy, t, embeds, return_dict=False)[0]
    v_pred = sched.config.prediction_type == "v_prediction"
    target = a.sqrt() * eps - (1 - a).sqrt() * latents if v_pred else eps
    if v_pred:  # what the docs call the target: diffusers' own velocity
        assert torch.allclose(target, sched.get_velocity(latents, eps, t), atol=1e-6)
    per_sample = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
    if tc.snr_gamma:
        snr = (a / (1 - a)).flatten()
        weights = snr.clamp(max=tc.snr_gamma) / (snr + 1 if v_pred else snr)
        per_sample = per_sample * weights
    return per_sample.mean()


def engine_loss(trainer, k: int) -> float:
    with torch.no_grad():
        return trainer.compute_loss(k).total.item()


# float32 rounding only: the engine goes through scheduler.add_noise (alphas_cumprod ** 0.5)
# and the hand-written recipe through sqrt(); both then run the same UNet.
RTOL = 1e-5


@pytest.mark.parametrize(
    "options",
    [{}, {"snr_gamma": 5.0}, {"offset_noise": 0.1}, {"snr_gamma": 5.0, "offset_noise": 0.1}],
    ids=["plain", "min-snr", "offset", "both"],
)
@pytest.mark.parametrize("model", ["epsilon", "v_prediction"])
def test_engine_loss_is_the_recipe_written_out(tiny_dir, v_model, tmp_path, options, model):
    trainer = prepared_trainer(
        tmp_path, model=str(v_model) if model == "v_prediction" else "builtin:tiny", **options
    )
    assert trainer.noise_scheduler.config.prediction_type == model
    for k in (0, 1):
        assert engine_loss(trainer, k) == pytest.approx(loss_by_hand(trainer, k).item(), rel=RTOL)


def test_each_option_changes_the_loss(tiny_dir, v_model, tmp_path):
    """Same seed, same draws: Min-SNR, offset noise and the v target each move the loss by far
    more than float noise (so the previous test tells them apart)."""

    def losses(trainer) -> list[float]:  # 4 micro-batches of 4: 16 timesteps
        return [engine_loss(trainer, k) for k in range(4)]

    plain = losses(prepared_trainer(tmp_path / "p"))
    snr = losses(prepared_trainer(tmp_path / "s", snr_gamma=1.0))
    offset = losses(prepared_trainer(tmp_path / "o", offset_noise=0.5))
    v = losses(prepared_trainer(tmp_path / "v", model=str(v_model)))
    for other in (snr, offset, v):
        assert max(abs(o - p) / p for o, p in zip(other, plain, strict=True)) > 100 * RTOL
    # epsilon: every Min-SNR weight is min(SNR, gamma)/SNR <= 1, < 1 where SNR > gamma
    assert all(s <= p for s, p in zip(snr, plain, strict=True)) and sum(snr) < sum(plain)


def test_min_snr_weights_are_min_snr_gamma_over_snr():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    t = torch.tensor([0, 500, 999])  # SNR ~ 1000, ~ 0.2, ~ 0.005
    a = sched.alphas_cumprod[t]
    snr = a / (1 - a)
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(3, 4, 8, 8, generator=gen), torch.randn(3, 4, 8, 8, generator=gen)
    per_sample = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    weights = torch.tensor([5.0 / snr[0], 1.0, 1.0])
    got = dreambooth_loss(pred, target, t, sched, snr_gamma=5.0).total
    assert got.item() == pytest.approx((per_sample * weights).mean().item(), rel=1e-6)
    assert weights[0] < 0.01  # the easy, low-noise timestep is down-weighted
    sched.register_to_config(prediction_type="v_prediction")
    v_weights = snr.clamp(max=5.0) / (snr + 1)
    got = dreambooth_loss(pred, target, t, sched, snr_gamma=5.0).total
    assert got.item() == pytest.approx((per_sample * v_weights).mean().item(), rel=1e-6)


def test_offset_noise_adds_one_shift_per_image_and_channel():
    latents = torch.zeros(64, 4, 16, 16)
    plain = sample_noise(latents, torch.Generator().manual_seed(1), 0.0)
    offset = sample_noise(latents, torch.Generator().manual_seed(1), 0.1)
    shift = offset - plain
    # constant over each image's pixels, different per image and channel, std ~ offset_noise
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-6)
    assert 0.08 < shift[:, :, 0, 0].std().item() < 0.12
    assert shift[:, :, 0, 0].unique().numel() == 64 * 4


def test_v_prediction_model_trains_and_keeps_its_prediction_type(v_model, tmp_path):
    code, run_dir, events = train_in_process(
        tmp_path, train={**QUIET, "model": str(v_model), "max_train_steps": 2}
    )
    assert code == 0, of_type(events, "error")
    import json

    config = json.loads((run_dir / "final" / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction"
