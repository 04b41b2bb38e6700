"""`builtin:tiny-shapes`: the tiny model, pre-trained on generic shapes, that the demo teaches.

The plain tiny model (engine/tiny.py) has random weights: it runs every code path, but its
samples are coloured noise before and after a run, so a newcomer cannot tell training from doing
nothing. This one is built from it, once, into its own cache folder:

- its VAE is an exact colour codec, set by hand (`codec_vae`): a latent pixel is the 2x2 mean of
  the image's RGB (normalised), and the decoder paints it back. A random VAE cannot be learned
  through in a minute, and a trained one takes minutes of CPU to reconstruct colours at all;
- its scheduler predicts v (as SD 2.x 768-v), which a small UNet learns much sooner than noise;
- its UNet is pre-trained for `PRETRAIN_STEPS` steps on circles and squares in five colours with
  their captions ("a photo of a red circle shape"), a tenth of them uncaptioned for guidance.

The demo run then teaches it the concept (the orange ring with a blue dot, "sks shape") in a few
hundred steps: its samples go from a generic shape to the concept (tests/test_demo_learns.py).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from engine.sources import tiny_shapes_cache_dir
from engine.tiny import RESOLUTION, VAE_CONFIG, build_atomically, ensure_tiny, save_pipeline

PRETRAIN_STEPS = 600
PRETRAIN_BATCH = 8
PRETRAIN_LR = 1e-3
SEED = 1
COLOURS = {
    "red": (220, 40, 40),
    "blue": (40, 80, 210),
    "green": (40, 170, 60),
    "orange": (235, 120, 20),
    "yellow": (230, 210, 40),
}
KINDS = ("circle", "square")
#: Per-channel mean and spread of the codec's latents (image values in [-1, 1]).
CODEC_MEAN, CODEC_SCALE = 0.4, 0.6
_K, _B = 100.0, 20.0  # constant channels that fix GroupNorm's statistics; SiLU's linear range


def shape_image(rng: random.Random, size: int = RESOLUTION) -> tuple[Image.Image, str]:
    """A generic training image and its caption: a circle or square in one of five colours."""
    colour, kind = rng.choice(list(COLOURS)), rng.choice(KINDS)
    img = Image.new("RGB", (size, size), tuple(rng.randint(200, 240) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.2, 0.36) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    (draw.ellipse if kind == "circle" else draw.rectangle)(
        [cx - r, cy - r, cx + r, cy + r], fill=COLOURS[colour]
    )
    return img, f"a photo of a {colour} {kind} shape"


def codec_vae():
    """An AutoencoderKL (the tiny model's layout, one norm group) whose encoder is the exact 2x2
    colour mean and whose decoder paints it back, every weight set by hand.

    Every residual branch is zeroed, so each block passes its input on; channels 0-2 carry the
    image and 3-5 its negation. The final GroupNorm of each half would take away every image's
    own brightness, so a block's bias adds channels of +K and -K beside them: the group's mean
    is then exactly 0 and its spread K to one part in 10^5, and the norm's weight undoes it. A
    bias of B keeps SiLU in its linear range. The log-variance is -30: sampling is the mean."""
    import torch
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**{**VAE_CONFIG, "norm_num_groups": 1, "scaling_factor": 1.0})
    enc, dec = vae.encoder, vae.decoder
    rgb, both = range(3), range(6)

    def centre(conv, pairs, pool: bool = False) -> None:
        k = conv.weight.shape[-1]
        for out, inp, w in pairs:
            if pool:  # the 2x2 mean (Downsample2D pads right and bottom, never read here)
                conv.weight[out, inp, 0:2, 0:2] = w / 4
            else:
                conv.weight[out, inp, k // 2, k // 2] = w

    def constants(conv, channels: int) -> int:
        half = (channels - 6) // 2
        conv.bias[6 : 6 + half] = _K
        conv.bias[6 + half : 6 + 2 * half] = -_K
        return 2 * half

    def undo_norm(norm, n_const: int, channels: int) -> None:
        norm.weight[:3] = _K * math.sqrt(n_const / channels)
        norm.bias[:3] = _B

    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()
        for m in vae.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.fill_(1.0)
        same = [(c, c, 1.0) for c in both]
        centre(enc.conv_in, [(c, c, 1.0) for c in rgb] + [(c + 3, c, -1.0) for c in rgb])
        centre(enc.down_blocks[0].downsamplers[0].conv, same, pool=True)
        centre(enc.down_blocks[1].resnets[0].conv_shortcut, same)
        undo_norm(enc.conv_norm_out, constants(enc.mid_block.resnets[1].conv2, 64), 64)
        for c in rgb:
            enc.conv_out.weight[c, c, 1, 1] = 1 / CODEC_SCALE
            enc.conv_out.bias[c] = -(_B + CODEC_MEAN) / CODEC_SCALE
        enc.conv_out.bias[4:8] = -30.0  # log-variance
        centre(vae.quant_conv, [(c, c, 1.0) for c in range(8)])
        centre(vae.post_quant_conv, [(c, c, 1.0) for c in range(4)])
        centre(
            dec.conv_in,
            [(c, c, CODEC_SCALE) for c in rgb] + [(c + 3, c, -CODEC_SCALE) for c in rgb],
        )
        dec.conv_in.bias[:3] = CODEC_MEAN
        dec.conv_in.bias[3:6] = -CODEC_MEAN
        centre(dec.up_blocks[0].upsamplers[0].conv, same)
        centre(dec.up_blocks[1].resnets[0].conv_shortcut, same)
        undo_norm(dec.conv_norm_out, constants(dec.up_blocks[1].resnets[1].conv2, 32), 32)
        centre(dec.conv_out, [(c, c, 1.0) for c in rgb])
        dec.conv_out.bias[:] = -_B
    return vae


def to_tensor(images: list[Image.Image]):
    import numpy as np
    import torch

    arr = np.stack([np.asarray(i, dtype=np.float32) for i in images]) / 127.5 - 1
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def pretrain(unet, vae, tokenizer, text_encoder, scheduler, steps: int = PRETRAIN_STEPS) -> None:
    """Teach UNET generic shapes: v-prediction, AdamW with a cosine decay, seeded throughout."""
    import torch

    captions = [f"a photo of a {c} {k} shape" for c in COLOURS for k in KINDS] + [""]
    with torch.no_grad():
        ids = tokenizer(captions, padding="max_length", max_length=77, return_tensors="pt")
        embeds = text_encoder(ids.input_ids)[0]
    row = {c: i for i, c in enumerate(captions)}
    rng, gen = random.Random(SEED), torch.Generator().manual_seed(SEED)
    opt = torch.optim.AdamW(unet.parameters(), PRETRAIN_LR, weight_decay=0.0)
    unet.train()
    for step in range(steps):
        images, texts = zip(*(shape_image(rng) for _ in range(PRETRAIN_BATCH)), strict=True)
        with torch.no_grad():
            latents = vae.encode(to_tensor(list(images))).latent_dist.mean
        cond = embeds[[row[t] if rng.random() >= 0.1 else row[""] for t in texts]]
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(texts),), generator=gen)
        noisy = scheduler.add_noise(latents, noise, t)
        target = scheduler.get_velocity(latents, noise, t)
        loss = (unet(noisy, t, cond).sample - target).pow(2).mean()
        for group in opt.param_groups:
            group["lr"] = PRETRAIN_LR * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"  pre-training on shapes: step {step + 1}/{steps}", file=sys.stderr)
    unet.eval()


def build(folder: str | Path, steps: int = PRETRAIN_STEPS) -> Path:
    """Write FOLDER/model (the pre-trained tiny model) and FOLDER/images (the demo concept)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    tiny = ensure_tiny() / "model"
    tokenizer = CLIPTokenizer.from_pretrained(tiny / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(tiny / "text_encoder")
    unet = UNet2DConditionModel.from_pretrained(tiny / "unet")
    config = dict(DDPMScheduler.load_config(tiny / "scheduler"), prediction_type="v_prediction")
    config.pop("skip_prk_steps", None)
    scheduler = DDPMScheduler.from_config(config)
    vae = codec_vae()
    pretrain(unet, vae, tokenizer, text_encoder, scheduler, steps)
    save_pipeline(folder / "model", tokenizer, text_encoder, vae, unet, "v_prediction")
    shutil.copytree(tiny.parent / "images", folder / "images")
    (folder / "model" / "tiny-shapes.json").write_text(json.dumps({"pretrain_steps": steps}))
    return folder


def ensure_tiny_shapes() -> Path:
    """Build builtin:tiny-shapes once into the cache (atomically) and return its folder."""
    target = tiny_shapes_cache_dir()
    if (target / "model" / "model_index.json").exists():
        return target
    print(
        "building builtin:tiny-shapes, the tiny model pre-trained on shapes (once, about a "
        "minute)...",
        file=sys.stderr,
    )
    return build_atomically(target, build, prefix=".tiny-shapes-build-")
