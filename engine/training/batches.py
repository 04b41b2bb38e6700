"""From data to micro-batches: the image sets, the latent and text-embedding caches, and the
latents and prompt embeddings of micro-batch k on this process."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine import crops
from engine.buckets import Bucket, batch_place, bucket_list, mix, step_for
from engine.config import Config
from engine.data import (
    DataError,
    ImageSet,
    caption_dropped,
    load_files,
    load_images,
    normalize,
    stream_indices,
)
from engine.families import Conditioning, PromptEmbeds, SampleGeometry
from engine.recipe import (
    latent_distribution,
    mask_weight,
    sample_latents,
    stack_weights,
    step_seed,
)
from engine.training.context import RunContext
from engine.training.errors import EngineError
from engine.training.setup import Models


def bucket_step(vae: torch.nn.Module) -> int:
    """Bucket sides are multiples of 8 times the VAE's downscale factor (64 for SD and SDXL)."""
    return step_for(len(vae.config.block_out_channels))


def load_data(
    cfg: Config,
    log: Callable[..., None],
    step: int = 64,
    ensure_classes: Callable[[list[Bucket] | None], None] | None = None,
    bucketed: bool | None = None,
) -> tuple[ImageSet, ImageSet | None]:
    """The instance images and (prior preservation) the class images, said in one log line;
    `bucketed` (train.aspect_buckets resolved by the family; None: on only when "on"), cropped
    to buckets of sides multiples of `step`, the class images
    those of the instance images' buckets (engine.class_buckets). `ensure_classes(instance
    buckets)` makes the missing class images, between the two."""
    tc = cfg.train
    if bucketed is None:  # the family's default unknown: auto means off (SD 1.x/2.x)
        bucketed = tc.aspect_buckets == "on"
    buckets = bucket_list(tc.resolution, step) if bucketed else None

    def warn(msg: str) -> None:
        log(msg, "warning")

    try:
        instances = load_images(
            tc.instance_data,
            tc.instance_prompt,
            tc.resolution,
            tc.center_crop,
            tc.captions,
            tc.revision,
            tc.seed,
            warn,
            bucket_list=buckets,
            masks=tc.masked_loss,
        )
        classes = None
        if tc.prior_preservation:
            if ensure_classes is not None:
                ensure_classes(instances.buckets)
            classes = load_class_images(cfg, instances.buckets, step, warn)
    except DataError as exc:
        raise EngineError(exc.kind, str(exc), exc.hint, 2 if exc.kind == "data" else 1) from exc
    msg = f"{len(instances)} instance images"
    if classes is not None:
        msg += f", {len(classes)} class images"
    if instances.skipped:
        msg += f" ({len(instances.skipped)} skipped)"
    if instances.buckets:
        msg += f", in {len(set(instances.buckets))} aspect-ratio buckets"
    if tc.masked_loss:
        masked = sum(m is not None for m in instances.masks or [])
        msg += f"; masked loss: {masked} with a mask, {len(instances) - masked} counted fully"
    log(msg)
    if tc.cache_latents and not tc.center_crop:
        log(crops.CACHE_WARNING, "warning")
    return instances, classes


def load_class_images(
    cfg: Config, instance_buckets: list[Bucket] | None, step: int, warn: Callable[[str], None]
) -> ImageSet:
    """The class images a run trains on: `num_class_images` of class_data, or, with bucketed
    instance images, the plan's images of each of their buckets (each bucket has one)."""
    tc = cfg.train
    if instance_buckets is None:
        return load_images(
            tc.class_data,
            tc.class_prompt,
            tc.resolution,
            tc.center_crop,
            False,
            None,
            tc.seed + 1,
            warn,
            limit=tc.num_class_images,
        )
    from engine.class_images import run_plan
    from engine.data import resolve_data

    found = run_plan(Path(resolve_data(tc.class_data)), tc, instance_buckets, step)
    every = bucket_list(tc.resolution, step)
    used = found.used()
    classes = load_files(used, tc.class_prompt, tc.resolution, tc.center_crop, bucket_list=every)
    short = [b for b in found.wanted if b not in set(classes.buckets or [])]
    if short:
        raise DataError(
            f"{tc.class_data}: no class image of the aspect-ratio bucket "
            f"{short[0][0]}x{short[0][1]} that instance images use",
            hint="let the run generate them (keep the folder writable) or add images of that shape",
        )
    return classes


def _view_geometry(
    images: ImageSet, idx: list[int], corners: list[tuple[int, int]], flips: list[bool]
) -> list[SampleGeometry]:
    return [
        crops.geometry(images, i, corner, flip)
        for i, corner, flip in zip(idx, corners, flips, strict=True)
    ]


def bucket_draw(
    buckets: list[Bucket], place: tuple[Bucket, int], bs: int, seed: int, shuffle: bool, stream: int
) -> list[int]:
    """The class images drawn with the n-th batch of a bucket (place = (bucket, n)): items
    [n*bs, (n+1)*bs) of the endless per-epoch orders of that bucket's class images, seeded by
    (seed, stream, bucket): a pure function of the seed, as the instance order."""
    bucket, n = place
    pool = [j for j, b in enumerate(buckets) if b == bucket]
    order = stream_indices(len(pool), n * bs, bs, seed, shuffle, mix(stream, *bucket))
    return [pool[t] for t in order]


@dataclass
class MicroBatch:
    """What one micro-batch feeds the recipe."""

    latents: torch.Tensor
    cond: Conditioning
    num_instance: int  # the first num_instance rows are instance images, the rest class images
    gen: torch.Generator  # the micro-batch's generator on the device (noise, timesteps)
    weights: torch.Tensor | None  # masked loss: the instance rows' weights [n, 1, h, w]


class Batches:
    """Micro-batches of a run's images: each a pure function of (seed, k, process)."""

    def __init__(
        self, ctx: RunContext, models: Models, instances: ImageSet, classes: ImageSet | None
    ) -> None:
        self.ctx, self.models = ctx, models
        self.instances, self.classes = instances, classes
        # key -> (means, stds), indexed by image (a list of tensors when images differ in shape)
        self.latent_cache: dict[str, tuple[torch.Tensor | list, torch.Tensor | list]] = {}
        self.text_cache: dict[str, PromptEmbeds] = {}  # one row per prompt
        # masked loss: key -> each instance image's weights at latent size (None: no mask)
        self.mask_cache: dict[str, list[torch.Tensor | None]] = {}

    def sets(self) -> list[tuple[str, int, ImageSet]]:
        """(name, data stream, images) of the instance and the class images."""
        found = [("instance", 0, self.instances)]
        if self.classes is not None:
            found.append(("class", 1, self.classes))
        return found

    def build_cache(self) -> None:
        """Latent mean/std of every image (both flips) and the frozen text embeddings."""
        tc, m, device = self.ctx.cfg.train, self.models, self.ctx.device
        if not tc.cache_latents:
            return
        self.ctx.phase("caching", "latents and text embeddings")
        with torch.no_grad():
            for name, stream, images in self.sets():
                for flip in (False, True) if tc.random_flip else (False,):
                    for c in range(crops.crops_per_image(images, cache=True)):
                        means, stds = [], []
                        chunk = 1 if images.buckets else 8  # bucketed images differ in shape
                        for i in range(0, len(images), chunk):
                            ids = list(range(i, min(i + chunk, len(images))))
                            views = [crops.cached(images, j, c, tc.seed, stream) for j in ids]
                            mean, std = latent_distribution(
                                m.vae, self.pixels(views, [flip] * len(ids))
                            )
                            means.append(mean)
                            stds.append(std)
                        key = f"{name}/{int(flip)}/{c}"
                        if self.masked(name, images):
                            self.mask_cache[key] = [
                                self.view_weight(
                                    crops.cached_mask(images, j, c, tc.seed, stream),
                                    flip,
                                    means[j // chunk][j % chunk],
                                )
                                for j in range(len(images))
                            ]
                        if images.buckets:  # one tensor per image, each its bucket's shape
                            self.latent_cache[key] = ([x[0] for x in means], [x[0] for x in stds])
                        else:
                            self.latent_cache[key] = (torch.cat(means), torch.cat(stds))
            if not m.train_te:
                prompts = {p for _, _, images in self.sets() for p in images.prompts}
                if tc.caption_dropout:
                    prompts.add("")  # what a dropped caption trains on
                for p in sorted(prompts):
                    self.text_cache[p] = m.family.encode_prompts(m.parts(), [p], device).row(0)
        # The frozen encoders leave the accelerator; sampling brings them back for a moment.
        if device.type == "cuda":
            for module in m.frozen_encoders():
                module.to("cpu")
            torch.cuda.empty_cache()
        m.offloaded = device.type == "cuda"

    def masked(self, name: str, images: ImageSet) -> bool:
        """Whether this set's views carry loss weights (masked loss: instance images only)."""
        return self.ctx.cfg.train.masked_loss and name == "instance" and images.masks is not None

    @staticmethod
    def view_weight(
        mask: torch.Tensor | None, flip: bool, latent: torch.Tensor
    ) -> torch.Tensor | None:
        """A view's loss weights at the size of its latent (None: no mask, counts fully)."""
        return None if mask is None else mask_weight(mask, flip, tuple(latent.shape[-2:]))

    def pixels(self, views: list[torch.Tensor], flips: list[bool]) -> torch.Tensor:
        px = torch.stack(views)
        flip_t = torch.tensor(flips, dtype=torch.bool)
        if flip_t.any():
            px[flip_t] = px[flip_t].flip(-1)
        # in the VAE's dtype: the weight dtype, or fp32 for a VAE that overflows in fp16
        return normalize(px).to(self.ctx.device, dtype=self.models.vae.dtype, non_blocking=True)

    def micro_batch(self, k: int) -> tuple[torch.Tensor, Conditioning, int, torch.Generator]:
        """Latents and the UNet's conditioning of micro-batch k on this rank (+ its generator)."""
        mb = self.batch(k)
        return mb.latents, mb.cond, mb.num_instance, mb.gen

    def batch(self, k: int) -> MicroBatch:
        """Latents and the UNet's conditioning (the family's, from the prompts' embeddings and,
        where it reads them, each view's geometry) of micro-batch k on this rank, its generator
        and (masked loss) its instance views' loss weights, each mask cropped and flipped as
        its view."""
        tc, m, acc = self.ctx.cfg.train, self.models, self.ctx.accelerator
        geometry: list[SampleGeometry] | None = [] if m.family.conditions_on_geometry else None
        seed = step_seed(tc.seed, k, acc.process_index)
        cpu_gen = torch.Generator().manual_seed(seed)
        dev_gen = torch.Generator(self.ctx.device).manual_seed(seed)
        bs = tc.train_batch_size
        start = (k * acc.num_processes + acc.process_index) * bs
        latents, prompts = [], []
        weights: list[torch.Tensor | None] = []
        place: tuple[Bucket, int] | None = None  # the instance batch's bucket and its place
        for name, stream, images in self.sets():
            if images.buckets and place is None:  # one bucket per micro-batch
                idx, n = batch_place(
                    images.buckets, bs, tc.seed, k, acc.process_index, acc.num_processes, tc.shuffle
                )
                place = (images.buckets[idx[0]], n)
            elif images.buckets and place is not None:  # class images of the same bucket
                idx = bucket_draw(images.buckets, place, bs, tc.seed, tc.shuffle, stream)
            else:
                idx = stream_indices(len(images), start, bs, tc.seed, tc.shuffle, stream)
            positions = range(start, start + bs)  # the draws' places in the data sequence
            flips = (
                (torch.rand(len(idx), generator=cpu_gen) < 0.5).tolist()
                if tc.random_flip
                else [False] * len(idx)
            )
            if tc.cache_latents:
                count = crops.crops_per_image(images, cache=True)
                keys = [
                    f"{name}/{int(f)}/{crops.cached_choice(tc.seed, stream, pos, count)}"
                    for f, pos in zip(flips, positions, strict=True)
                ]
                mean = torch.stack(
                    [self.latent_cache[key][0][i] for key, i in zip(keys, idx, strict=True)]
                )
                std = torch.stack(
                    [self.latent_cache[key][1][i] for key, i in zip(keys, idx, strict=True)]
                )
                if self.masked(name, images):
                    weights += [self.mask_cache[key][i] for key, i in zip(keys, idx, strict=True)]
                if geometry is not None:
                    choices = [int(key.rsplit("/", 1)[1]) for key in keys]
                    corners = [
                        crops.cached_corner(images, i, c, tc.seed, stream)
                        for i, c in zip(idx, choices, strict=True)
                    ]
                    geometry += _view_geometry(images, idx, corners, flips)
            else:
                if geometry is not None:
                    corners = [
                        crops.drawn_corner(images, i, tc.seed, stream, pos)
                        for i, pos in zip(idx, positions, strict=True)
                    ]
                    geometry += _view_geometry(images, idx, corners, flips)
                views = [
                    crops.drawn(images, i, tc.seed, stream, pos)
                    for i, pos in zip(idx, positions, strict=True)
                ]
                with torch.no_grad():
                    mean, std = latent_distribution(m.vae, self.pixels(views, flips))
                if self.masked(name, images):
                    weights += [
                        self.view_weight(crops.drawn_mask(images, i, tc.seed, stream, pos), f, mean)
                        for i, pos, f in zip(idx, positions, flips, strict=True)
                    ]
            latents.append(sample_latents(mean, std, m.vae.config.scaling_factor, dev_gen))
            prompts += [
                ""
                if name == "instance" and caption_dropped(tc.seed, pos, tc.caption_dropout)
                else p
                for p, pos in zip([images.prompts[i] for i in idx], positions, strict=True)
            ]
        if self.text_cache:
            embeds = PromptEmbeds.stack([self.text_cache[p] for p in prompts])
        else:
            with contextlib.nullcontext() if m.train_te else torch.no_grad():
                embeds = m.family.encode_prompts(m.parts(), prompts, self.ctx.device)
        latents_t = torch.cat(latents)
        loss_weights = stack_weights(weights, tuple(latents_t.shape[-2:]), self.ctx.device)
        return MicroBatch(
            latents_t, m.family.conditioning(embeds, geometry), bs, dev_gen, loss_weights
        )
