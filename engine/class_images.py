"""Class images for prior preservation: which images of class_data a run uses, and making the
missing ones with the base model.

- A run uses `num_class_images` images of the folder: the first ones by file name (the order
  `engine.images.list_image_files` gives), never more. When there are fewer, the missing ones
  are generated from `class_prompt` with the base model, as diffusers' DreamBooth script does.
- Generation uses a pipeline of its own, loaded from the base model in the weight dtype and
  put on the accelerator device; nothing of the models being trained takes part (with
  `method: full` the training UNet is still on the CPU at that point). It is freed (del, gc,
  CUDA cache) before training starts.
- Each process makes its share (image i is made by rank i mod world_size); image i's seed is
  derived from the run seed and i, so the images do not depend on the number of processes.
- A user's file is never overwritten: a new image is written to a `.tmp-class-*` file (hidden:
  never read as an image), then linked to a new name that carries its content hash; an existing
  name is never replaced. A killed generation's `.tmp-class-*` files are removed next time.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.buckets import Bucket, bucket_list
from engine.class_buckets import BucketPlan, ClassJob, plan_buckets
from engine.families import SD, ModelFamily
from engine.images import scan_images

if TYPE_CHECKING:
    from engine.training.context import RunContext

TEMP_PREFIX = ".tmp-class-"


@dataclass
class ClassPlan:
    folder: Path
    existing: list[Path]  # the usable images already there, in name order
    wanted: int

    @property
    def missing(self) -> int:
        return max(self.wanted - len(self.existing), 0)

    @property
    def total(self) -> int:
        return self.wanted

    @property
    def present(self) -> int:
        return min(len(self.existing), self.wanted)

    def jobs(self, seed: int, resolution: int) -> list[ClassJob]:
        """The images to make: square, at the training resolution."""
        have = len(self.existing)
        return [
            ClassJob(f"class-{i:05d}", class_seed(seed, i), resolution, resolution)
            for i in range(have, have + self.missing)
        ]

    def used(self) -> list[Path]:
        """The images a run trains on (once the missing ones exist): the first `wanted`."""
        return scan_images(self.folder).good[: self.wanted]


def plan(folder: Path, wanted: int) -> ClassPlan:
    return ClassPlan(folder, scan_images(folder).good, wanted)


def remove_temp_files(folder: Path) -> list[Path]:
    """The `.tmp-class-*` files of an interrupted generation (only that exact prefix)."""
    found = sorted(p for p in folder.glob(f"{TEMP_PREFIX}*") if p.is_file())
    for p in found:
        p.unlink(missing_ok=True)
    return found


def class_seed(seed: int, index: int) -> int:
    return seed + 10_000 + index


def write_new_image(folder: Path, stem: str, image: Any) -> Path:
    """Save `image` as PNG under a name that exists nowhere in `folder`, atomically: a reader
    sees the whole file or none, and no existing file is replaced."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()
    digest = hashlib.sha1(data).hexdigest()[:10]
    tmp = folder / f"{TEMP_PREFIX}{stem}-{os.getpid()}.png"
    try:
        with open(tmp, "wb") as fh:  # a full disk: the cut temp file is removed below
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(1000):
            target = folder / (f"{stem}-{digest}.png" if n == 0 else f"{stem}-{digest}-{n}.png")
            try:
                os.link(tmp, target)  # fails if the name exists: never replaces a file
                return target
            except FileExistsError:
                continue
            except OSError as exc:  # a file system without hard links
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if not target.exists():
                    os.replace(tmp, target)
                    return target
        raise FileExistsError(errno.EEXIST, "no free file name", str(folder / stem))
    finally:
        tmp.unlink(missing_ok=True)


def load_class_pipeline(
    source: str, revision: str | None, device: torch.device, dtype, family: ModelFamily = SD
):
    """The base model's own pipeline (its family's class), in `dtype`, on `device`."""
    pipe = family.pipeline_class().from_pretrained(
        source, revision=revision, torch_dtype=dtype, **family.pipeline_extras
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate_missing(
    plan: ClassPlan | BucketPlan,
    *,
    source: str,
    revision: str | None,
    prompt: str,
    seed: int,
    resolution: int,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
    rank: int,
    world_size: int,
    should_stop: Callable[[], bool],
    progress: Callable[[int], None] | None = None,
    family: ModelFamily = SD,
) -> int:
    """Make this rank's share of the missing images (with the base model's `family`'s
    pipeline), each at its size (batches of one size); returns how many it made."""
    mine = plan.jobs(seed, resolution)[rank::world_size]
    if not mine:
        return 0
    pipe = load_class_pipeline(source, revision, device, dtype, family)
    made = 0
    try:
        while mine and not should_stop():
            size = (mine[0].width, mine[0].height)
            n = 1
            while n < min(batch_size, len(mine)) and (mine[n].width, mine[n].height) == size:
                n += 1
            batch, mine = mine[:n], mine[n:]
            gens = [torch.Generator(device).manual_seed(job.seed) for job in batch]
            with torch.no_grad():
                images = pipe(
                    [prompt] * len(batch),
                    num_inference_steps=25 if min(size) >= 256 else 10,
                    generator=gens,
                    height=size[1],
                    width=size[0],
                ).images
            for job, img in zip(batch, images, strict=True):
                write_new_image(plan.folder, job.stem, img)
                made += 1
            if progress is not None:
                progress(made)
    finally:
        del pipe
        free_memory(device)
    return made


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        with contextlib.suppress(RuntimeError):
            torch.cuda.empty_cache()


def run_plan(
    folder: Path, train: Any, instance_buckets: list[Bucket] | None, step: int = 64
) -> ClassPlan | BucketPlan:
    """The class images of a run: `num_class_images` of the folder, or, when the instance
    images are bucketed, that many split over their buckets (engine.class_buckets)."""
    if instance_buckets is None:
        return plan(folder, train.num_class_images)
    every = bucket_list(train.resolution, step)
    return plan_buckets(folder, instance_buckets, train.num_class_images, every)


def ensure(
    ctx: RunContext,
    source: str,
    family: ModelFamily = SD,
    instance_buckets: list[Bucket] | None = None,
    step: int = 64,
) -> None:
    """A run's missing class images made (with the base model's family's pipeline) before it
    trains: every process its share; with bucketed instance images, at their buckets' sizes."""
    tc = ctx.cfg.train
    if not tc.prior_preservation:
        return
    from engine.data import resolve_data

    acc = ctx.accelerator
    folder = Path(resolve_data(tc.class_data))
    if ctx.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        remove_temp_files(folder)
    acc.wait_for_everyone()  # every rank plans from the same folder, before any writes
    found = run_plan(folder, tc, instance_buckets, step)
    acc.wait_for_everyone()
    if found.missing == 0:
        return
    have, total = found.present, found.total
    ctx.phase("generating_class_images", f"{found.missing} of {total} to make")

    def progress(made: int) -> None:
        if acc.num_processes == 1:
            ctx.log(f"class images {have + made}/{total}")

    try:
        made = make_missing(ctx, found, source, family, progress)
    except OSError as exc:  # a full disk: the images made so far are whole and kept
        from engine.training.errors import disk_error

        done = min(len(scan_images(folder).good), total)
        raise disk_error(
            exc, f"class images ({done} of {total} made)", ctx.run_dir, folder
        ) from exc
    counts = acc.gather(torch.tensor([made], device=ctx.device)).tolist()
    if acc.num_processes > 1:
        ctx.log(
            f"class images {have + sum(counts)}/{total} "
            f"(made per process: {', '.join(map(str, counts))})"
        )
    acc.wait_for_everyone()


def make_missing(
    ctx: RunContext,
    found: ClassPlan | BucketPlan,
    source: str,
    family: ModelFamily,
    progress: Callable[[int], None],
) -> int:
    """This process's share of the missing class images, with the run's settings."""
    tc, acc = ctx.cfg.train, ctx.accelerator
    return generate_missing(
        found,
        source=source,
        revision=tc.revision,
        prompt=tc.class_prompt,
        seed=tc.seed,
        resolution=tc.resolution,
        batch_size=tc.sample_batch_size,
        device=ctx.device,
        dtype=ctx.weight_dtype,
        rank=acc.process_index,
        world_size=acc.num_processes,
        should_stop=lambda: ctx.stop.requested,
        progress=progress,
        family=family,
    )
