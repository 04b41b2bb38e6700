"""Builds image folders for tests: clean concept images and a deliberately messy folder.

Shared by the image, doctor, data and training tests. Pillow and the standard library only.
"""

from __future__ import annotations

import array
import io
import random
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

BACKGROUND = (235, 235, 225)  # a plain, light background
SHAPE = (200, 40, 40)  # the "concept": a red disc with a yellow spot
SPOT = (250, 210, 40)


def draw_concept(
    size: tuple[int, int] | int,
    *,
    center: tuple[float, float] = (0.5, 0.5),
    radius: float = 0.3,
    stretch: tuple[float, float] = (1.0, 1.0),
    background: tuple[int, int, int] = BACKGROUND,
) -> Image.Image:
    """One concept image: the red disc with a yellow spot, centre and radius as fractions."""
    w, h = (size, size) if isinstance(size, int) else size
    im = Image.new("RGB", (w, h), background)
    d = ImageDraw.Draw(im)
    r = radius * min(w, h)
    rx, ry = r * stretch[0], r * stretch[1]
    cx, cy = center[0] * w, center[1] * h
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=SHAPE)
    s = r * 0.35
    sx, sy = cx + r * 0.3, cy - r * 0.3
    d.ellipse((sx - s, sy - s, sx + s, sy + s), fill=SPOT)
    return im


def concept_image(index: int, size: int = 64, seed: int = 0) -> Image.Image:
    """The ``index``-th concept image of a seeded series: positions and sizes spread out.

    Each run of 9 visits 9 well-separated positions; later runs squash the shape (as if seen
    from another side), so no two images of a series of up to 27 are near-duplicates by dHash.
    """
    rng = random.Random(seed * 1000 + index)
    # spread the positions over a 3x3 grid (visiting far-apart cells in turn) and cycle the
    # radius with another period, so no two images of a series are near-duplicates
    cells = [(0, 0), (2, 2), (2, 0), (0, 2), (1, 1), (1, 0), (1, 2), (0, 1), (2, 1)]
    gx, gy = cells[index % len(cells)]
    cx = 0.3 + 0.2 * gx + rng.uniform(-0.04, 0.04)
    cy = 0.3 + 0.2 * gy + rng.uniform(-0.04, 0.04)
    radius = (0.17, 0.27, 0.21, 0.24)[index % 4] + rng.uniform(-0.015, 0.015)
    stretch = ((1.0, 1.0), (1.35, 0.6), (0.6, 1.35))[(index // len(cells)) % 3]
    return draw_concept(size, center=(cx, cy), radius=radius, stretch=stretch)


def make_concept_images(folder: Path, n: int = 5, size: int = 64, seed: int = 0) -> list[Path]:
    """Write ``n`` PNGs ``concept_00.png`` ... of the same shape at different positions/sizes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"concept_{i:02d}.png"
        concept_image(i, size, seed).save(path)
        paths.append(path)
    return paths


def gradient_16bit(width: int, height: int) -> Image.Image:
    """An "I;16" image whose value grows left to right from 0 to 65535."""
    row = [round(x * 65535 / max(width - 1, 1)) for x in range(width)]
    data = array.array("H", row * height)
    if sys.byteorder == "big":
        data.byteswap()  # I;16 is little-endian
    return Image.frombytes("I;16", (width, height), data.tobytes())


def png_16bit_rgb(width: int, height: int) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one): red rises left to right, blue
    falls."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = []
    for _y in range(height):
        row = bytearray(b"\x00")  # filter type 0
        for x in range(width):
            v = round(x * 65535 / max(width - 1, 1))
            row += struct.pack(">HHH", v, 0, 65535 - v)
        rows.append(bytes(row))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def truncated_jpeg(image: Image.Image) -> bytes:
    """JPEG bytes cut in the middle of the scan data: the header parses, decoding fails."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    sos = data.find(b"\xff\xda")
    assert sos > 0
    return data[: sos + (len(data) - sos) // 2]


def make_messy_folder(folder: Path, size: int = 64) -> dict:
    """A folder with good images, broken ones and odd formats, as users' folders are.

    Returns {"usable": [names], "unusable": {name: reason substring}, "caption": (image name,
    text), "rotated": name, "rotated_size_after": (w, h)}, plus "modes": {name: mode Pillow
    opens it with} for the odd-format ones.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    # good images of the concept
    concept_image(0, size).save(folder / "good1.png")
    concept_image(1, size).save(folder / "good2.jpg", quality=95)
    concept_image(2, size).save(folder / "good3.png")
    caption = ("good1.png", "a photo of sks disc on a table")
    (folder / "good1.txt").write_text(caption[1] + "\n", encoding="utf-8")

    # odd but usable formats
    cmyk = concept_image(3, size).convert("CMYK")
    cmyk.save(folder / "cmyk.jpg", quality=95)
    gradient_16bit(size, size).save(folder / "grey16.png")

    rgba = concept_image(4, size).convert("RGBA")
    clear = Image.new("RGBA", (size // 2, size), (0, 0, 0, 0))
    rgba.paste(clear, (size // 2, 0))  # right half fully transparent (black underneath)
    rgba.save(folder / "rgba.png")

    concept_image(5, size).quantize(colors=16).save(folder / "palette.png")

    # stored landscape, EXIF orientation 6 (rotate 90 deg clockwise to display): portrait
    stored_w, stored_h = size, size * 3 // 4
    rotated = draw_concept((stored_w, stored_h), center=(0.3, 0.6), radius=0.25)
    ImageDraw.Draw(rotated).rectangle((0, 0, stored_w - 1, max(stored_h // 8, 2)), fill=(0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(folder / "rotated.jpg", quality=95, exif=exif.tobytes())

    # unusable
    (folder / "corrupt.jpg").write_bytes(truncated_jpeg(concept_image(1, max(size, 64), seed=2)))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("these are my notes, not a picture\n", encoding="utf-8")

    # other files, ignored by image listing
    (folder / "README.md").write_text("# my concept\n", encoding="utf-8")

    return {
        "usable": sorted(
            [
                "good1.png",
                "good2.jpg",
                "good3.png",
                "cmyk.jpg",
                "grey16.png",
                "rgba.png",
                "palette.png",
                "rotated.jpg",
            ]
        ),
        "unusable": {
            "corrupt.jpg": "truncated or corrupt",
            "empty.png": "empty file",
            "notes.jpg": "not an image",
        },
        "caption": caption,
        "rotated": "rotated.jpg",
        "rotated_size_after": (stored_h, stored_w),
        "modes": {
            "cmyk.jpg": "CMYK",
            "grey16.png": "I;16",
            "rgba.png": "RGBA",
            "palette.png": "P",
        },
    }
