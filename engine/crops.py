"""Random crops (`center_crop: false`): a new crop every time an image is drawn.

With aspect-ratio buckets an image is kept resized to cover its bucket (aspect kept) and each
draw cuts a bucket-sized view at a random place along its spare side, by the same rule.

With center crops an image is cropped once, when it is loaded. With random crops an image is
kept resized (shorter side = the resolution) but uncropped, and each draw crops it at a place
derived from (seed, stream, position in the endless data sequence), as the data order is: the
same draw gets the same crop after a resume, a later epoch gets a new one.

Cached latents cannot follow a new crop per draw. With `cache_latents: true` the latents of
CACHED_CROPS different crops of each image are cached (distinct where the image allows as many)
and each draw uses one of them, chosen from its position: a run sees at most CACHED_CROPS crops
of an image. `cache_latents: false` gives a new crop on every draw (and encodes every draw).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.data import ImageSet, _mix

if TYPE_CHECKING:
    from engine.families.base import SampleGeometry

CACHED_CROPS = 4
_DRAW, _CACHED, _CHOICE = 0xC20, 0xC21, 0xC22

CACHE_WARNING = (
    f"center_crop: false with cache_latents: latents are cached for {CACHED_CROPS} random "
    f"crops of each image and every draw uses one of these {CACHED_CROPS}, not a new crop; "
    "set cache_latents: false for a new random crop on every draw"
)


def _shape(images: ImageSet, i: int) -> tuple[int, int]:
    """(height, width) of image i's random crops: its bucket, or the resolution's square."""
    if images.buckets is not None:
        width, height = images.buckets[i]
        return height, width
    return images.crop_size, images.crop_size


def _corner(pixels: torch.Tensor, shape: tuple[int, int], index: int) -> tuple[int, int]:
    """(top, left) of the index-th of the image's crop places of `shape` (row-major)."""
    return divmod(index, pixels.shape[-1] - shape[1] + 1)


def _crop(pixels: torch.Tensor, shape: tuple[int, int], index: int) -> torch.Tensor:
    """The index-th of the image's crop places of `shape` (row-major over top, left)."""
    top, left = _corner(pixels, shape, index)
    return pixels[:, top : top + shape[0], left : left + shape[1]]


def _places(pixels: torch.Tensor, shape: tuple[int, int]) -> int:
    return (pixels.shape[-2] - shape[0] + 1) * (pixels.shape[-1] - shape[1] + 1)


def crops_per_image(images: ImageSet, cache: bool) -> int:
    """How many cached crops each image has: 1 when images are cropped at load (centre)."""
    return CACHED_CROPS if images.crop_size is not None and cache else 1


def _drawn_place(images: ImageSet, i: int, seed: int, stream: int, position: int) -> int:
    g = torch.Generator().manual_seed(_mix(seed, stream, position, _DRAW))
    return int(torch.randint(0, _places(images.pixels[i], _shape(images, i)), (1,), generator=g))


def _cached_place(images: ImageSet, i: int, c: int, seed: int, stream: int) -> int:
    n = _places(images.pixels[i], _shape(images, i))
    g = torch.Generator().manual_seed(_mix(seed, stream, i, _CACHED))
    return int(torch.randperm(n, generator=g)[c % n])


def drawn(images: ImageSet, i: int, seed: int, stream: int, position: int) -> torch.Tensor:
    """Image i as drawn at `position` of stream `stream`: a new random crop per draw."""
    if images.crop_size is None:
        return images.pixels[i]
    place = _drawn_place(images, i, seed, stream, position)
    return _crop(images.pixels[i], _shape(images, i), place)


def cached(images: ImageSet, i: int, c: int, seed: int, stream: int) -> torch.Tensor:
    """Cached crop c of image i: CACHED_CROPS distinct places where the image has as many."""
    if images.crop_size is None:
        return images.pixels[i]
    return _crop(images.pixels[i], _shape(images, i), _cached_place(images, i, c, seed, stream))


def mask_of(images: ImageSet, i: int) -> torch.Tensor | None:
    """Image i's loss mask as loaded (uint8 [1, H, W], cropped and resized as its pixels), or
    None."""
    return images.masks[i] if images.masks is not None else None


def drawn_mask(
    images: ImageSet, i: int, seed: int, stream: int, position: int
) -> torch.Tensor | None:
    """Image i's mask cropped where `drawn` crops its pixels (None: no mask)."""
    mask = mask_of(images, i)
    if mask is None or images.crop_size is None:
        return mask
    return _crop(mask, _shape(images, i), _drawn_place(images, i, seed, stream, position))


def cached_mask(images: ImageSet, i: int, c: int, seed: int, stream: int) -> torch.Tensor | None:
    """Image i's mask cropped where `cached` crops its pixels for cached crop c."""
    mask = mask_of(images, i)
    if mask is None or images.crop_size is None:
        return mask
    return _crop(mask, _shape(images, i), _cached_place(images, i, c, seed, stream))


def drawn_corner(
    images: ImageSet, i: int, seed: int, stream: int, position: int
) -> tuple[int, int]:
    """(top, left) in the resized image of the crop `drawn` takes."""
    if images.crop_size is None:
        return _centre_corner(images, i)
    place = _drawn_place(images, i, seed, stream, position)
    return _corner(images.pixels[i], _shape(images, i), place)


def cached_corner(images: ImageSet, i: int, c: int, seed: int, stream: int) -> tuple[int, int]:
    """(top, left) in the resized image of the crop `cached` takes."""
    if images.crop_size is None:
        return _centre_corner(images, i)
    place = _cached_place(images, i, c, seed, stream)
    return _corner(images.pixels[i], _shape(images, i), place)


def _centre_corner(images: ImageSet, i: int) -> tuple[int, int]:
    (h, w), (ch, cw) = images.resized_sizes[i], images.pixels[i].shape[-2:]
    return (h - ch) // 2, (w - cw) // 2


def geometry(
    images: ImageSet, i: int, corner: tuple[int, int], flip: bool = False
) -> SampleGeometry:
    """Where image i's training view came from (SDXL's time ids): its size as read, the crop's
    top-left in the resized image (of the mirrored image when the view is flipped), the size
    trained at."""
    from engine.families.base import SampleGeometry

    target = _shape(images, i) if images.crop_size else tuple(images.pixels[i].shape[-2:])
    top, left = corner
    if flip:
        left = images.resized_sizes[i][1] - left - target[1]
    return SampleGeometry(images.original_sizes[i], (top, left), target)


def cached_choice(seed: int, stream: int, position: int, count: int) -> int:
    """Which of an image's `count` cached crops the draw at `position` uses."""
    if count == 1:
        return 0
    return _mix(seed, stream, position, _CHOICE) % count
