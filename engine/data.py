"""Training data: image folders or Hub datasets -> pixel tensors and prompts; the sample order.

Images are decoded once (engine.images does the robust reading: EXIF, modes, bad files), cropped
to the training resolution and kept as uint8 tensors; DreamBooth sets are small. The order in
which examples are drawn is a pure function of (seed, position), so a resumed run continues
exactly where it stopped without replaying a data loader.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from engine.buckets import Bucket, bucket_of, cover_and_crop
from engine.buckets import mix as _mix  # the seed mixer (torch-free, shared)
from engine.doctor.masks import MaskError, load_mask, opened_image_mask, scan_masks
from engine.errors import DreamboothError, exit_code_for
from engine.families.sd import tokenize  # noqa: F401 (re-exported: the trainer's name)
from engine.images import caption_for, list_image_files, open_rgb, scan_images, to_rgb
from engine.sources import is_local_path, resolve_data


class DataError(DreamboothError, RuntimeError):
    """Training data that cannot be used; `kind` is "data" (exit 2) or "network" (exit 1)."""

    def __init__(self, message: str, hint: str = "", kind: str = "data") -> None:
        super().__init__(message, kind=kind, hint=hint, exit_code=exit_code_for(kind))


@dataclass
class ImageSet:
    """uint8 images [3, H, W] and one prompt each: centre-cropped to the resolution, or, with
    random crops (crop_size set), resized only; engine.crops crops them at each draw. Each
    image's (height, width) as read and as resized (before any crop) are kept: SDXL conditions
    on them (engine.crops.geometry). With aspect-ratio buckets (engine.buckets) each image is
    resized to cover its bucket and centre-cropped to it once, at load, or, with random crops,
    resized only (each draw crops a bucket-sized view); `buckets` holds each image's (width,
    height) bucket, None without buckets."""

    pixels: list[torch.Tensor]
    prompts: list[str]
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    crop_size: int | None = None  # random crops: the square's side (with buckets: the bucket)
    original_sizes: list[tuple[int, int]] = field(default_factory=list)
    resized_sizes: list[tuple[int, int]] = field(default_factory=list)
    buckets: list[Bucket] | None = None
    masks: list[torch.Tensor | None] | None = None  # uint8 [1, H, W] as the pixels, or None

    def add(
        self,
        img: Image.Image,
        size: int,
        center_crop: bool,
        prompt: str,
        name: str,
        bucket_list: list[Bucket] | None = None,
        mask: Image.Image | None = None,
    ) -> str | None:
        """Append an RGB image: resized (shorter side `size`), centre-cropped when asked; with
        `bucket_list`, cropped to its bucket. Its loss mask ("L", the image's size), when given,
        goes through the same resize and crop (`masks` then holds one entry per image, None
        for an image without). Returns why it was skipped (too small for any bucket), or
        None."""
        if bucket_list is not None:
            bucket = bucket_of(img.width, img.height, bucket_list)
            if bucket is None:
                reason = (
                    f"{img.width}x{img.height} is too small for aspect-ratio buckets at this "
                    "resolution (it would be enlarged more than 2x)"
                )
                self.skipped.append((name, reason))
                return reason
            (w, h), (left, top) = cover_and_crop(img.width, img.height, bucket)

            def view(im: Image.Image) -> Image.Image:
                im = im.resize((w, h), Image.Resampling.BILINEAR)
                if not center_crop:  # engine.crops cuts a bucket-sized view at each draw
                    return im
                return im.crop((left, top, left + bucket[0], top + bucket[1]))

            self.buckets = [*(self.buckets or []), bucket]
        else:
            w, h = resized_size(img.width, img.height, size)
            corner = crop_box(w, h, size, True, None)

            def view(im: Image.Image) -> Image.Image:
                im = im.resize((w, h), Image.Resampling.BILINEAR)
                if not center_crop:  # random crops are drawn later (engine.crops)
                    return im
                return im.crop((*corner, corner[0] + size, corner[1] + size))

        self.pixels.append(_as_tensor(view(img)))
        if mask is not None or self.masks is not None:
            self.masks = self.masks if self.masks is not None else [None] * (len(self.pixels) - 1)
            self.masks.append(None if mask is None else _as_tensor(view(mask), 1))
        self.prompts.append(prompt)
        self.names.append(name)
        self.original_sizes.append((img.height, img.width))
        self.resized_sizes.append((h, w))
        return None

    def keep(self, limit: int) -> None:
        """Only the first `limit` images."""
        for items in (
            self.pixels,
            self.prompts,
            self.names,
            self.original_sizes,
            self.resized_sizes,
            *([self.buckets] if self.buckets is not None else []),
            *([self.masks] if self.masks is not None else []),
        ):
            del items[limit:]

    def __len__(self) -> int:
        return len(self.pixels)


def crop_box(
    width: int, height: int, size: int, center: bool, gen: torch.Generator | None
) -> tuple[int, int]:
    """Top-left corner of a size x size crop from an image whose shorter side is size."""
    if center or gen is None:
        return (width - size) // 2, (height - size) // 2
    left = int(torch.randint(0, width - size + 1, (1,), generator=gen))
    top = int(torch.randint(0, height - size + 1, (1,), generator=gen))
    return left, top


def to_training_pixels(
    img: Image.Image,
    size: int,
    center_crop: bool,
    gen: torch.Generator | None = None,
    crop: bool = True,
) -> torch.Tensor:
    """Resize the shorter side to `size` (bilinear, as the reference), crop, -> uint8 [3,H,W].
    crop=False: resized only (random crops are drawn later, engine.crops)."""
    nw, nh = resized_size(*img.size, size)
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    if crop:
        left, top = crop_box(nw, nh, size, center_crop, gen)
        img = img.crop((left, top, left + size, top + size))
    return _as_tensor(img)


def _as_tensor(img: Image.Image, channels: int = 3) -> torch.Tensor:
    """An RGB image (or, channels=1, an "L" mask) -> uint8 [channels, H, W]."""
    data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return data.view(img.height, img.width, channels).permute(2, 0, 1).contiguous()


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) of an image resized so its shorter side is `size`."""
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [.., 3, H, W] -> float in [-1, 1]."""
    return pixels.float().div_(127.5).sub_(1.0)


def load_folder(
    folder: Path,
    prompt: str,
    size: int,
    center_crop: bool,
    captions: bool,
    seed: int = 0,
    warn=None,
    limit: int | None = None,
    bucket_list: list[Bucket] | None = None,
    masks: bool = False,
) -> ImageSet:
    """The folder's usable images in name order (the first `limit` of them when given); with
    `masks`, each with its loss mask (engine.doctor.masks), a bad mask refused."""
    if not folder.exists():
        raise DataError(f"{folder}: folder not found", hint="check train.instance_data")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder", hint="point train.instance_data at a folder")
    scan = scan_images(folder)
    for path, reason in scan.skipped:
        if warn:
            warn(f"skipped {path.name}: {reason}")
    if not scan.good:
        found = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        what = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "") if found else "nothing"
        raise DataError(
            f"{folder}: no usable image (found: {what})",
            hint="add .jpg, .jpeg, .png, .webp or .bmp images",
        )
    if masks:
        bad = scan_masks(folder, list_image_files(folder)).bad
        if bad:
            raise DataError(
                f"{bad[0][0]}: bad mask: {bad[0][1]}",
                hint=f"fix or remove {bad[0][0].name}, or set train.masked_loss: false",
            )
    out = load_files(
        scan.good[:limit], prompt, size, center_crop, captions, warn, bucket_list, folder, masks
    )
    out.skipped[:0] = [(str(p), r) for p, r in scan.skipped]
    return out


def load_files(
    paths: list[Path],
    prompt: str,
    size: int,
    center_crop: bool,
    captions: bool = False,
    warn=None,
    bucket_list: list[Bucket] | None = None,
    folder: Path | None = None,
    masks: bool = False,
) -> ImageSet:
    """These image files (known to decode) in this order, as `load_folder` loads them."""
    out = ImageSet([], [], [])
    out.crop_size = None if center_crop else size
    for path in paths:
        text = (captions and caption_for(path)) or prompt
        mask = _mask_of(path) if masks else None
        why = out.add(open_rgb(path), size, center_crop, text, path.name, bucket_list, mask)
        if why and warn:
            warn(f"skipped {path.name}: {why}")
    if paths and not out.pixels:  # every image too small for its bucket
        raise DataError(
            f"{folder or paths[0].parent}: no usable image ({out.skipped[-1][1]})",
            hint="use larger images, a lower train.resolution or aspect_buckets: false",
        )
    return out


def _mask_of(path: Path) -> Image.Image | None:
    try:
        return load_mask(path)
    except MaskError as exc:  # scan_masks found none: the file changed since
        raise DataError(f"{exc.path}: bad mask: {exc.reason}", hint="fix or remove it") from exc


def load_hub_dataset(
    repo_id: str,
    prompt: str,
    size: int,
    center_crop: bool,
    captions: bool,
    revision: str | None = None,
    seed: int = 0,
    bucket_list: list[Bucket] | None = None,
    masks: bool = False,
) -> ImageSet:
    """A Hub dataset's images (with `masks`, an image's alpha channel is its loss mask)."""
    import datasets

    try:
        ds = datasets.load_dataset(repo_id, split="train", revision=revision)
    except Exception as exc:  # datasets raises many kinds; all mean "could not get it"
        raise DataError(
            f"cannot load the Hub dataset '{repo_id}' ({exc.__class__.__name__})",
            hint="check the network and the dataset id, or use a local image folder",
            kind="network",
        ) from exc
    image_cols = [k for k, f in ds.features.items() if isinstance(f, datasets.Image)]
    if not image_cols:
        raise DataError(
            f"Hub dataset '{repo_id}' has no image column",
            hint="its features must include an Image column",
        )
    text_cols = [k for k in ("text", "caption", "prompt") if k in ds.features]
    out = ImageSet([], [], [], crop_size=None if center_crop else size)
    for i, row in enumerate(ds):
        img = row[image_cols[0]]
        if img is None:
            out.skipped.append((f"row {i}", "no image"))
            continue
        cap = row.get(text_cols[0]) if (captions and text_cols) else None
        text = cap.strip() if isinstance(cap, str) and cap.strip() else prompt
        mask = opened_image_mask(img) if masks else None
        out.add(to_rgb(img), size, center_crop, text, f"row {i}", bucket_list, mask)
    if not out.pixels:
        raise DataError(f"Hub dataset '{repo_id}' holds no usable image")
    return out


def load_images(
    value: str,
    prompt: str,
    size: int,
    center_crop: bool,
    captions: bool,
    revision: str | None = None,
    seed: int = 0,
    warn=None,
    limit: int | None = None,
    bucket_list: list[Bucket] | None = None,
    masks: bool = False,
) -> ImageSet:
    """The images of a folder or Hub dataset (cropped to their aspect-ratio buckets when
    `bucket_list` is given; with their loss masks when `masks`)."""
    source = resolve_data(value)
    if is_local_path(source) or Path(source).exists():
        return load_folder(
            Path(source), prompt, size, center_crop, captions, seed, warn, limit, bucket_list, masks
        )
    images = load_hub_dataset(
        source, prompt, size, center_crop, captions, revision, seed, bucket_list, masks
    )
    if limit is not None:
        images.keep(limit)
    return images


def stream_indices(
    n: int, start: int, count: int, seed: int, shuffle: bool, stream: int = 0
) -> list[int]:
    """Items [start, start+count) of the endless sequence of per-epoch orders of n examples.

    Epoch e's order is a permutation seeded by (seed, stream, e): derived, never stored.
    """
    out: list[int] = []
    pos = start
    cache: dict[int, list[int]] = {}
    while len(out) < count:
        epoch, offset = divmod(pos, n)
        if epoch not in cache:
            if shuffle:
                g = torch.Generator().manual_seed(_mix(seed, stream, epoch))
                cache[epoch] = torch.randperm(n, generator=g).tolist()
            else:
                cache[epoch] = list(range(n))
        take = min(count - len(out), n - offset)
        out.extend(cache[epoch][offset : offset + take])
        pos += take
    return out


#: The caption dropout's own draws in the seed mixer (apart from orders, crops and flips).
_CAPTION_DROPOUT = 0xCA7D


def caption_dropped(seed: int, position: int, rate: float) -> bool:
    """Whether the instance image drawn at `position` of the data sequence trains on the empty
    prompt (train.caption_dropout = `rate`): a pure function of (seed, position), so a resumed
    run drops exactly the captions the uninterrupted one would have."""
    return rate > 0 and random.Random(_mix(seed, position, _CAPTION_DROPOUT)).random() < rate
