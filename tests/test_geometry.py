"""Each training view's geometry (engine.crops.geometry), which SDXL conditions on as its time
ids: the image's size as read, the crop's top-left in the resized image (mirrored with a flip),
the size trained at; for centre crops, random crops drawn per step, and cached random crops."""

from __future__ import annotations

import torch
from PIL import Image

from engine import crops
from engine.data import load_folder


def _folder(tmp_path, sizes):
    for n, (w, h) in enumerate(sizes):
        gen = torch.Generator().manual_seed(n)
        noise = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8)
        Image.fromarray(noise.numpy()).save(tmp_path / f"img-{n}.png")
    return tmp_path


def test_centre_crop_geometry(tmp_path):
    images = load_folder(_folder(tmp_path, [(48, 32), (20, 60)]), "p", 16, True, False)
    assert images.original_sizes == [(32, 48), (60, 20)]
    assert images.resized_sizes == [(16, 24), (48, 16)]
    wide = crops.geometry(images, 0, crops.drawn_corner(images, 0, 0, 0, 0))
    assert (wide.original_size, wide.crop_top_left, wide.target_size) == (
        (32, 48),
        (0, 4),
        (16, 16),
    )
    tall = crops.geometry(images, 1, crops.cached_corner(images, 1, 0, 0, 0))
    assert tall.crop_top_left == (16, 0) and tall.target_size == (16, 16)


def test_random_crop_corner_is_where_the_crop_was_taken(tmp_path):
    images = load_folder(_folder(tmp_path, [(40, 20)]), "p", 16, False, False)
    resized = images.pixels[0]
    assert tuple(resized.shape[-2:]) == images.resized_sizes[0] == (16, 32)
    corners = set()
    for position in range(12):
        top, left = crops.drawn_corner(images, 0, 7, 0, position)
        view = crops.drawn(images, 0, 7, 0, position)
        assert torch.equal(view, resized[:, top : top + 16, left : left + 16])
        corners.add((top, left))
        g = crops.geometry(images, 0, (top, left))
        assert g.crop_top_left == (top, left) and g.original_size == (20, 40)
        flipped = crops.geometry(images, 0, (top, left), flip=True)
        # the same pixels, mirrored: as if cropped from the mirrored image at 32 - left - 16
        assert flipped.crop_top_left == (top, 32 - left - 16)
    assert len(corners) > 1  # a new place per draw
    for c in range(crops.CACHED_CROPS):
        top, left = crops.cached_corner(images, 0, c, 7, 0)
        view = crops.cached(images, 0, c, 7, 0)
        assert torch.equal(view, resized[:, top : top + 16, left : left + 16])
