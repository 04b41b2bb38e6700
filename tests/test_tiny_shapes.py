"""builtin:tiny-shapes' hand-set VAE is an exact colour codec: what the demo model draws is what
its UNet made, not a random decoder's noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.tiny import concept_image
from engine.tiny_shapes import CODEC_MEAN, CODEC_SCALE, codec_vae, shape_image, to_tensor


def test_the_codec_vae_encodes_the_2x2_colour_mean_and_decodes_it_back():
    vae = codec_vae()
    images = to_tensor([concept_image(i, 32) for i in range(6)])
    with torch.no_grad():
        posterior = vae.encode(images).latent_dist
        latents = posterior.sample(torch.Generator().manual_seed(0))
        decoded = vae.decode(latents).sample
    pooled = F.avg_pool2d(images, 2)
    assert torch.allclose(latents[:, :3], (pooled - CODEC_MEAN) / CODEC_SCALE, atol=1e-4)
    assert posterior.std.max() < 1e-6  # sampling a latent is taking its mean
    # within half a grey level (0-255) of the image averaged over each 2x2 block
    assert (decoded - F.interpolate(pooled, scale_factor=2)).abs().max() * 127.5 < 0.5
    assert vae.config.scaling_factor == 1.0


def test_the_codec_keeps_each_image_own_brightness():
    """The last GroupNorm of each half would normalise every image to the same mean and spread;
    a light and a dark image of the same shape must come back as they went in."""
    import random

    image, _ = shape_image(random.Random(3))
    light = to_tensor([image])
    dark = light * 0.3 - 0.5
    vae = codec_vae()
    with torch.no_grad():
        for x in (light, dark):
            out = vae.decode(vae.encode(x).latent_dist.mean).sample
            target = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2)
            assert (out - target).abs().max() * 127.5 < 0.5
