"""The dataset check's tests on each image (decodes, size against the resolution, aspect,
transparency, EXIF rotation, colour) and across images (exact and near duplicates), giving a
DatasetReport. Pillow only: JPEGs are decoded at a reduced scale, the rest works on thumbnails."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageChops

from ..images import ImageLoadError, caption_for, list_image_files, load_image
from .masks import scan_masks
from .report import DatasetReport, ImageInfo, num

__all__ = ["DUPLICATE_MAX_DISTANCE", "check_folder", "dhash", "hamming"]

DUPLICATE_MAX_DISTANCE = 4  # dHash bits that may differ for a near-duplicate
# dHash sees only brightness gradients: flat or low-detail images of different colours hash
# alike. A near-duplicate must also have about the same colours: mean absolute difference of
# 4x4 RGB thumbnails (0..255) at most this.
DUPLICATE_MAX_COLOUR_DIFF = 24
ODD_ASPECT = 2.0  # long side / short side above this is flagged
MIN_SIDE = 64  # a shorter side below this is always tiny
GRAYSCALE_CHROMA = 12  # max(R,G,B) - min(R,G,B) at or below this counts as grey ...
GRAYSCALE_FRACTION = 0.005  # ... for all but this fraction of the thumbnail's pixels
_REDUCE_TO = 256  # JPEGs are decoded at a reduced scale keeping both sides >= this


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: 9x8 greyscale, one bit per horizontally adjacent pair."""
    small = image.resize((9, 8), Image.Resampling.LANCZOS, reducing_gap=3.0).convert("L")
    px = small.tobytes()
    bits = 0
    for y in range(8):
        row = px[y * 9 : y * 9 + 9]
        for x in range(8):
            bits = (bits << 1) | (row[x + 1] > row[x])
    return bits


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def _is_grayscale(image: Image.Image) -> bool:
    thumb = image.copy()
    thumb.thumbnail((64, 64), Image.Resampling.BOX)
    r, g, b = thumb.split()
    chroma = ImageChops.lighter(
        ImageChops.lighter(ImageChops.difference(r, g), ImageChops.difference(g, b)),
        ImageChops.difference(r, b),
    )
    hist = chroma.histogram()
    coloured = sum(hist[GRAYSCALE_CHROMA + 1 :])
    return coloured <= GRAYSCALE_FRACTION * (thumb.width * thumb.height)


class _Fingerprint(NamedTuple):
    digest: bytes  # of the decoded pixels (exact duplicates)
    colours: bytes  # 4x4 RGB thumbnail (guards near-duplicates)


def _fingerprint(image: Image.Image) -> _Fingerprint:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    colours = image.resize((4, 4), Image.Resampling.BOX, reducing_gap=3.0).tobytes()
    return _Fingerprint(h.digest(), colours)


def _colour_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(len(a), 1)


def _check_image(path: Path, resolution: int) -> tuple[ImageInfo, _Fingerprint | None]:
    info = ImageInfo(path=path)
    try:
        loaded = load_image(path, reduce_to=_REDUCE_TO)
    except ImageLoadError as exc:
        info.error = exc.reason
        info.add("unreadable", f"{exc.reason}: skipped in training")
        return info, None
    w, h = loaded.width, loaded.height
    info.width, info.height, info.mode = w, h, loaded.mode
    info.caption = caption_for(path)
    short, long = min(w, h), max(w, h)

    tiny_limit = max(resolution / 2, MIN_SIDE)
    if short < tiny_limit:
        info.add(
            "tiny",
            f"too small: {w}×{h}, shorter side {short} px is under {num(tiny_limit)} px "
            f"(training resolution {resolution})",
        )
    elif short < resolution:
        info.add(
            "small",
            f"{w}×{h} is below the training resolution {resolution}: upscaled in training",
        )
    if short and long / short > ODD_ASPECT:
        info.add(
            "odd_aspect",
            f"aspect {w}×{h} ({long / short:.1f}:1): a square centre crop keeps only "
            f"{short / long:.0%} of it",
        )
    if loaded.has_alpha:
        info.add("alpha", "has transparency: composited on white in training")
    if loaded.orientation != 1:
        info.add(
            "exif_rotated",
            f"EXIF orientation {loaded.orientation}: turned upright in training",
        )
    if _is_grayscale(loaded.image):
        info.add("grayscale", "grayscale: the model may learn the concept without colour")
    info.dhash = dhash(loaded.image)
    return info, _fingerprint(loaded.image)


def _list_other_files(folder: Path, images: list[Path]) -> list[Path]:
    image_names = {p.name for p in images}
    return sorted(
        (
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.name not in image_names and p.is_file()
        ),
        key=lambda p: p.name,
    )


def check_folder(
    folder: Path | str,
    *,
    resolution: int = 512,
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetReport:
    """Check every image in ``folder`` (not recursive) against training at ``resolution``.

    ``on_progress(done, total)`` is called after each image (from the calling thread). Raises
    FileNotFoundError / NotADirectoryError when ``folder`` is not a folder.
    """
    folder = Path(folder)
    paths = list_image_files(folder)
    report = DatasetReport(
        folder=folder, other_files=_list_other_files(folder, paths), resolution=resolution
    )
    seen: list[tuple[ImageInfo, _Fingerprint]] = []  # earlier usable images
    for n, path in enumerate(paths, 1):
        info, fingerprint = _check_image(path, resolution)
        if fingerprint is not None:
            _mark_duplicate(info, fingerprint, seen)
            seen.append((info, fingerprint))
        report.images.append(info)
        if on_progress is not None:
            on_progress(n, len(paths))
    alpha = {i.name for i in report.images if "alpha" in i.problems}
    report.masks = scan_masks(folder, paths, alpha)
    return report


def _mark_duplicate(
    info: ImageInfo, fingerprint: _Fingerprint, seen: list[tuple[ImageInfo, _Fingerprint]]
) -> None:
    """Mark ``info`` as a duplicate of the earlier image it repeats: identical pixels first,
    else the closest near-duplicate (dHash distance <= 4, about the same colours)."""
    for earlier, earlier_fp in seen:
        same_size = (earlier.width, earlier.height) == (info.width, info.height)
        if same_size and earlier_fp.digest == fingerprint.digest:
            info.duplicate_of = earlier.path
            info.add("duplicate", f"duplicate of {earlier.name} (identical pixels)")
            return
    best: tuple[int, ImageInfo] | None = None
    for earlier, earlier_fp in seen:
        if earlier.dhash is None or info.dhash is None:
            continue
        distance = hamming(earlier.dhash, info.dhash)
        if distance > DUPLICATE_MAX_DISTANCE:
            continue
        if _colour_diff(earlier_fp.colours, fingerprint.colours) > DUPLICATE_MAX_COLOUR_DIFF:
            continue
        if best is None or distance < best[0]:
            best = (distance, earlier)
    if best is not None:
        distance, earlier = best
        info.duplicate_of = earlier.path
        info.add(
            "duplicate",
            f"duplicate of {earlier.name} (near-identical: {distance} of 64 hash bits differ)",
        )
