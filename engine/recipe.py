"""The DreamBooth training recipe, one function per step, in the order the paper reads.

    latents  = encode_latents(vae, pixels)          # or sample_latents from the cache
    noise    = sample_noise(...)                    # (+ offset noise)
    t        = sample_timesteps(...)
    noisy    = add_noise(scheduler, latents, noise, t)
    pred     = unet(noisy, t, text_embeddings)
    target   = prediction_target(scheduler, latents, noise, t)
    loss     = dreambooth_loss(pred, target, ...)   # instance MSE + w * prior MSE (Min-SNR optional)
                                                    # (masked loss: weights from mask_weight)

Every random draw takes an explicit generator, so a step is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def latent_distribution(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE posterior's mean and std for pixels in [-1, 1]."""
    dist = vae.encode(pixels).latent_dist
    return dist.mean, dist.std


def sample_latents(
    mean: torch.Tensor, std: torch.Tensor, scaling_factor: float, gen: torch.Generator
) -> torch.Tensor:
    eps = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)
    return (mean + std * eps) * scaling_factor


def encode_latents(vae, pixels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mean, std = latent_distribution(vae, pixels)
    return sample_latents(mean, std, vae.config.scaling_factor, gen)


def sample_noise(
    latents: torch.Tensor, gen: torch.Generator, offset_noise: float = 0.0
) -> torch.Tensor:
    noise = torch.randn(latents.shape, generator=gen, device=latents.device, dtype=latents.dtype)
    if offset_noise:
        b, c = latents.shape[:2]
        noise = noise + offset_noise * torch.randn(
            (b, c, 1, 1), generator=gen, device=latents.device, dtype=latents.dtype
        )
    return noise


def sample_timesteps(
    scheduler, batch: int, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    n = scheduler.config.num_train_timesteps
    return torch.randint(0, n, (batch,), generator=gen, device=device).long()


def add_noise(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    return scheduler.add_noise(latents, noise, timesteps)


def prediction_target(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction_type {kind!r} (epsilon or v_prediction)")


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (Hang et al. 2023), per sample."""
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=gamma) / snr
    if scheduler.config.prediction_type == "v_prediction":
        weights = torch.clamp(snr, max=gamma) / (snr + 1)
    return weights


def mask_weight(mask: torch.Tensor, flip: bool, size: tuple[int, int]) -> torch.Tensor:
    """A view's loss weights at latent size: its uint8 mask [1, H, W] (white = subject), mirrored
    with a flipped view, area-averaged down to `size` (each latent pixel: the mean of the mask
    over the pixels it encodes) -> float [1, h, w] in [0, 1]."""
    weights = mask.float().div(255.0)
    if flip:
        weights = weights.flip(-1)
    return F.interpolate(weights[None], size=size, mode="area")[0]


def stack_weights(
    rows: list[torch.Tensor | None], size: tuple[int, int], device: torch.device
) -> torch.Tensor | None:
    """A batch's loss weights [B, 1, h, w] from its views' (None: a view without a mask counts
    fully); None when no view has a mask."""
    if all(row is None for row in rows):
        return None
    ones = torch.ones((1, *size))
    return torch.stack([ones if row is None else row for row in rows]).to(device)


@dataclass
class Loss:
    total: torch.Tensor
    instance: torch.Tensor
    prior: torch.Tensor | None


def dreambooth_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler=None,
    num_instance: int | None = None,
    prior_loss_weight: float = 1.0,
    snr_gamma: float | None = None,
    weights: torch.Tensor | None = None,
) -> Loss:
    """MSE on the instance part (+ prior_loss_weight x MSE on the class part, if any).

    `weights` [n, 1, h, w] (masked loss, the instance part only): each instance sample's loss
    is its weighted mean squared error, sum(w * err^2) / (channels * sum(w)), so pixels of
    weight 0 count for nothing (a view with no weight at all gives 0); then the mean over the
    samples (Min-SNR weighted when on), as without weights."""
    pred, target = pred.float(), target.float()
    n = pred.shape[0] if num_instance is None else num_instance
    prior = None
    if n < pred.shape[0]:
        prior = F.mse_loss(pred[n:], target[n:], reduction="mean")
        pred, target, timesteps = pred[:n], target[:n], timesteps[:n]
    if weights is not None:
        err = F.mse_loss(pred, target, reduction="none") * weights
        area = weights.sum(dim=(1, 2, 3)) * pred.shape[1]
        per_sample = err.sum(dim=(1, 2, 3)) / area.clamp_min(torch.finfo(area.dtype).tiny)
        if snr_gamma:
            per_sample = per_sample * min_snr_weights(scheduler, timesteps, snr_gamma)
        instance = per_sample.mean()
    elif snr_gamma:
        per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
        instance = (per_sample * min_snr_weights(scheduler, timesteps, snr_gamma)).mean()
    else:
        instance = F.mse_loss(pred, target, reduction="mean")
    total = instance if prior is None else instance + prior_loss_weight * prior
    return Loss(total, instance, prior)


def step_seed(seed: int, micro_step: int, rank: int) -> int:
    """The seed of one micro-batch's random draws: derived from the run seed and position."""
    x = (seed * 1_000_003 + micro_step) * 8191 + rank
    x ^= x >> 17
    return (x * 0x9E3779B1) & 0x7FFFFFFFFFFFFFFF
