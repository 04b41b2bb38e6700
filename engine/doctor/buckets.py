"""The aspect-ratio bucket each image of a checked folder falls into (train.aspect_buckets on),
for `check` and the Data screen: the training rule of engine.buckets on the sizes the check
read (after EXIF orientation). Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.buckets import MAX_UPSCALE, Bucket, bucket_list, bucket_of

from .report import DatasetReport, _names, _plural

__all__ = ["NO_BUCKET", "bucket_label", "bucket_lines", "class_bucket_line", "image_buckets"]

NO_BUCKET = f"none: would be enlarged over {MAX_UPSCALE:g}x (skipped)"


def image_buckets(
    report: DatasetReport, resolution: int, step: int = 64
) -> dict[Path, Bucket | None]:
    """Each usable image's bucket (None: too small for any, skipped in training), by path."""
    buckets = bucket_list(resolution, step)
    return {
        i.path: bucket_of(i.width, i.height, buckets) for i in report.usable if i.width and i.height
    }


def bucket_label(bucket: Bucket | None) -> str:
    """ "80×48", or why the image has none."""
    return NO_BUCKET if bucket is None else f"{bucket[0]}×{bucket[1]}"


def bucket_lines(report: DatasetReport, resolution: int, step: int = 64) -> list[str]:
    """A heading and one line per bucket in use, widest last, naming its images, e.g.
    "80×48: 2 images (a.png, c.png)"; the images of no bucket last."""
    found = image_buckets(report, resolution, step)
    groups: dict[Bucket | None, list[Path]] = {}
    for path, bucket in found.items():
        groups.setdefault(bucket, []).append(path)
    used = sorted((b for b in groups if b is not None), key=lambda b: b[0] / b[1])
    total = len(bucket_list(resolution, step))
    lines = [f"aspect-ratio buckets: {len(used)} of {total} in use (sides multiples of {step})"]
    for bucket in [*used, *([None] if None in groups else [])]:
        paths = groups[bucket]
        lines.append(
            f"{bucket_label(bucket)}: {_plural(len(paths), 'image')} "
            f"({_names(paths, limit=len(paths))})"
        )
    return lines


def class_bucket_line(
    folder: Path, instance_buckets: list[Bucket | None], train: Any, step: int = 64
) -> str:
    """How many class images each instance bucket has in `folder` and how many a run makes
    (engine.class_buckets), e.g. "class images by aspect-ratio bucket: 48×80: 2 of 2;
    64×64: 1 of 2 (1 to make)"."""
    from engine.class_buckets import plan_buckets  # engine-only (check), not the app's

    used = [b for b in instance_buckets if b is not None]
    every = bucket_list(train.resolution, step)
    plan = plan_buckets(folder, used, train.num_class_images, every)
    parts = []
    for b, wanted in plan.wanted.items():
        missing = plan.missing_in(b)
        made = f" ({missing} to make)" if missing else ""
        parts.append(f"{bucket_label(b)}: {min(len(plan.existing[b]), wanted)} of {wanted}{made}")
    return f"class images by aspect-ratio bucket: {'; '.join(parts)}"
