"""Class images for prior preservation with aspect-ratio buckets (torch-free).

Every micro-batch trains instance and class images of one shape, so each bucket the instance
images use needs class images of that bucket:

- `num_class_images` is split over the instance images' buckets in proportion to how many
  instance images each holds (largest remainder), at least one each (so a run has more class
  images than `num_class_images` only when it has fewer than it has buckets);
- a class image serves the bucket an instance image of its shape would go to (the same rule:
  nearest aspect ratio, enlarged at most 2x), so the folder is keyed by the images' own shapes:
  a run with other buckets never crops an image made for one bucket into another;
- a bucket short of images gets new ones generated at its size (`class-WxH-NNNNN-<hash>.png`);
  a bucket with more uses the first ones by file name. Images of the folder that fit no bucket
  in use stay there, unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.buckets import Bucket, bucket_of, mix
from engine.images import oriented_size, scan_images


@dataclass(frozen=True)
class ClassJob:
    """One class image to generate: its file name's stem, its seed and its size."""

    stem: str
    seed: int
    width: int
    height: int


def shares(instance_buckets: list[Bucket], total: int) -> dict[Bucket, int]:
    """`total` class images split over the instance images' buckets (in bucket order) in
    proportion to their instance counts: largest remainder (ties: the bucket order), then a
    bucket left without one takes one from the bucket with the most (every bucket at least one;
    when total < the number of buckets, one each)."""
    counts: dict[Bucket, int] = {}
    for b in instance_buckets:
        counts[b] = counts.get(b, 0) + 1
    order = sorted(counts, key=lambda b: b[0] / b[1])
    n = len(instance_buckets)
    exact = {b: total * counts[b] / n for b in order}
    out = {b: int(exact[b]) for b in order}
    left = total - sum(out.values())
    for b in sorted(order, key=lambda b: -(exact[b] - out[b]))[:left]:
        out[b] += 1
    for b in order:
        if out[b] == 0:
            richest = max(order, key=lambda c: out[c])
            if out[richest] > 1:
                out[richest] -= 1
            out[b] = 1
    return out


def class_bucket_seed(seed: int, bucket: Bucket, index: int) -> int:
    """The seed of a bucket's index-th generated class image (independent of other buckets)."""
    return mix(seed, 10_000, bucket[0], bucket[1], index)


def sort_folder(
    folder: Path, in_use: list[Bucket], all_buckets: list[Bucket]
) -> tuple[dict[Bucket, list[Path]], int]:
    """The usable images of `folder` (none when it does not exist) by bucket of `in_use`, in
    name order, and how many fit none of them."""
    existing: dict[Bucket, list[Path]] = {b: [] for b in in_use}
    unused = 0
    for path in scan_images(folder).good if folder.is_dir() else []:
        bucket = bucket_of(*oriented_size(path), all_buckets)
        if bucket in existing:
            existing[bucket].append(path)
        else:
            unused += 1
    return existing, unused


@dataclass
class BucketPlan:
    """Which class images a bucketed run uses and which it must make."""

    folder: Path
    all_buckets: list[Bucket]  # every bucket of the resolution (an image's bucket is among them)
    wanted: dict[Bucket, int]  # per bucket the instance images use, in bucket order
    existing: dict[Bucket, list[Path]]  # usable images there whose bucket it is, by name
    unused: int = 0  # usable images there that fit no bucket in use

    def missing_in(self, bucket: Bucket) -> int:
        return max(self.wanted[bucket] - len(self.existing[bucket]), 0)

    @property
    def missing(self) -> int:
        return sum(self.missing_in(b) for b in self.wanted)

    @property
    def total(self) -> int:
        return sum(self.wanted.values())

    @property
    def present(self) -> int:
        return self.total - self.missing

    def jobs(self, seed: int, resolution: int) -> list[ClassJob]:
        """The images to make, bucket by bucket, each at its bucket's size."""
        out = []
        for b in self.wanted:
            have = len(self.existing[b])
            for i in range(have, have + self.missing_in(b)):
                stem = f"class-{b[0]}x{b[1]}-{i:05d}"
                out.append(ClassJob(stem, class_bucket_seed(seed, b, i), b[0], b[1]))
        return out

    def used(self) -> list[Path]:
        """The images a run trains on (once the missing ones exist): the first `wanted` of each
        bucket, bucket by bucket."""
        now, _ = sort_folder(self.folder, list(self.wanted), self.all_buckets)
        return [p for b, n in self.wanted.items() for p in now[b][:n]]


def plan_buckets(
    folder: Path,
    instance_buckets: list[Bucket],
    num_class_images: int,
    all_buckets: list[Bucket],
) -> BucketPlan:
    """The plan for `folder` (which may not exist yet): `num_class_images` split over the
    instance images' buckets, the folder's images sorted into the buckets of `all_buckets`."""
    wanted = shares(instance_buckets, num_class_images)
    existing, unused = sort_folder(folder, list(wanted), all_buckets)
    return BucketPlan(folder, all_buckets, wanted, existing, unused)
