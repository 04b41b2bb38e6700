"""Aspect-ratio buckets (pure, torch-free): the bucket list, each image's bucket, the batch order.

A bucket is a (width, height) of about resolution^2 pixels with both sides multiples of `step`
(SD: 8 times the VAE's downscale factor, 64 for SD and SDXL) and an aspect ratio within
1:MAX_RATIO .. MAX_RATIO:1. An image goes to the bucket nearest its aspect ratio (in log
ratio); it is resized to cover the bucket and centre-cropped. An image that would need an
upscale of more than MAX_UPSCALE to cover its bucket has no bucket (the loader skips it,
saying why) rather than being blown up.

The batch order is a pure function of (seed, epoch): every micro-batch holds images of one
bucket; global batch g of the endless sequence goes to process g % P as its micro-batch
g // P, so a resume redraws the same batches and P processes draw disjoint ones.
"""

from __future__ import annotations

import math
import random
from typing import Any

MAX_RATIO = 2.0  # widest bucket 2:1, tallest 1:2
MAX_UPSCALE = 2.0  # an image is never enlarged more than 2x to fill its bucket
TOLERANCE = 0.1  # a bucket's pixel count is within 10% of resolution^2

Bucket = tuple[int, int]  # (width, height)


def step_for(vae_blocks: int) -> int:
    """Bucket sides are multiples of 8 times the VAE's downscale factor, 2^(blocks - 1): 64
    for SD and SDXL (4 blocks)."""
    return 8 * 2 ** (vae_blocks - 1)


def buckets_on(setting: str, family: object) -> bool:
    """Whether a run with `train.aspect_buckets: setting` (auto, on, off) uses buckets: auto is
    the model family's `aspect_buckets_default` (on for SDXL, off for SD 1.x/2.x)."""
    if setting == "auto":
        return bool(getattr(family, "aspect_buckets_default", False))
    return setting == "on"


def buckets_said(setting: str, family: object | None) -> str:
    """How the Config summary and `check` say it: "aspect buckets on (auto for Stable
    Diffusion XL)", "aspect buckets off", "aspect buckets auto" (family unknown)."""
    if setting != "auto":
        return f"aspect buckets {setting}"
    if family is None:
        return "aspect buckets auto (on for SDXL, off for SD 1.x/2.x)"
    state = "on" if buckets_on(setting, family) else "off"
    return f"aspect buckets {state} (auto for {getattr(family, 'label', family)})"


def bucket_list(resolution: int, step: int = 64, max_ratio: float = MAX_RATIO) -> list[Bucket]:
    """Buckets for a training resolution, tallest first: for each width >= resolution a multiple
    of `step`, the height nearest resolution^2 / width that is a multiple of `step`, so
    |w*h - resolution^2| <= step/2 * w; kept when that is within TOLERANCE of resolution^2
    and each wide bucket's mirror as a tall one."""
    area = resolution * resolution
    out: list[Bucket] = []
    w = math.ceil(resolution / step) * step  # square or wide; the tall ones are their mirrors
    while w <= resolution * max_ratio:
        h = max(step, round(area / w / step) * step)
        near = abs(w * h - area) <= TOLERANCE * area
        if near and h <= w and w / h <= max_ratio + 1e-9:
            out += [(w, h), (h, w)]
        w += step
    if not out:  # no width within the tolerance: the one square bucket of side step
        out = [(step, step)]
    return sorted(set(out), key=lambda b: b[0] / b[1])


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is nearest the image's (in log ratio; ties: the squarer)."""
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), abs(b[0] - b[1])))


def upscale_needed(width: int, height: int, bucket: Bucket) -> float:
    """The factor an image is resized by to cover the bucket (> 1: enlarged)."""
    return max(bucket[0] / width, bucket[1] / height)


def bucket_of(
    width: int, height: int, buckets: list[Bucket], max_upscale: float = MAX_UPSCALE
) -> Bucket | None:
    """The image's bucket, or None when filling it would enlarge the image more than
    max_upscale times."""
    bucket = nearest_bucket(width, height, buckets)
    return bucket if upscale_needed(width, height, bucket) <= max_upscale else None


def cover_and_crop(
    width: int, height: int, bucket: Bucket
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((resized width, height), (left, top)) of the centre crop that makes the image its
    bucket: resized to cover it (aspect kept), then cropped at the centre."""
    scale = upscale_needed(width, height, bucket)
    rw = max(bucket[0], round(width * scale))
    rh = max(bucket[1], round(height * scale))
    return (rw, rh), ((rw - bucket[0]) // 2, (rh - bucket[1]) // 2)


def mix(*parts: int) -> int:
    """A deterministic 63-bit seed from a few integers (splitmix-style); engine.data's too."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


def epoch_batches(
    image_buckets: list[Bucket], batch_size: int, seed: int, epoch: int, shuffle: bool = True
) -> list[list[int]]:
    """Epoch `epoch`'s batches of image indices, each from one bucket: each bucket's images in
    a (seed, epoch)-shuffled order cut into batches, the last one filled from the start of the
    same order (every batch is full), then the batches shuffled. The count depends only on the
    bucket sizes, never on the epoch."""
    groups: dict[Bucket, list[int]] = {}
    for i, b in enumerate(image_buckets):
        groups.setdefault(b, []).append(i)
    batches: list[list[int]] = []
    for n, b in enumerate(sorted(groups)):
        members = groups[b]
        if shuffle:
            random.Random(mix(seed, epoch, n)).shuffle(members)
        count = math.ceil(len(members) / batch_size)
        for j in range(count):
            batches.append(
                [members[(j * batch_size + t) % len(members)] for t in range(batch_size)]
            )
    if shuffle:
        random.Random(mix(seed, epoch, -1)).shuffle(batches)
    return batches


def batch_at(
    image_buckets: list[Bucket], batch_size: int, seed: int, k: int, *args: Any
) -> list[int]:
    """Micro-batch k (`batch_place`'s, without its place; the same further arguments)."""
    return batch_place(image_buckets, batch_size, seed, k, *args)[0]


def batch_place(
    image_buckets: list[Bucket],
    batch_size: int,
    seed: int,
    k: int,
    process: int = 0,
    processes: int = 1,
    shuffle: bool = True,
) -> tuple[list[int], int]:
    """Micro-batch k of `process` (of `processes`), global batch k * processes + process of the
    endless sequence of epochs, and its place among its bucket's batches in that sequence (n:
    the bucket's n-th batch, from 0): the class images of a bucket are drawn by it."""
    g = k * processes + process
    per_epoch = len(epoch_batches(image_buckets, batch_size, seed, 0, shuffle))
    epoch, offset = divmod(g, per_epoch)
    batches = epoch_batches(image_buckets, batch_size, seed, epoch, shuffle)
    bucket = image_buckets[batches[offset][0]]
    same = [image_buckets[b[0]] == bucket for b in batches]
    return batches[offset], epoch * sum(same) + sum(same[:offset])
