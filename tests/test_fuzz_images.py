"""Fuzzed image files: every one opens as RGB or is refused with a short reason, never more.

Hypothesis (derandomized) builds files of every mode and format a photo folder meets, with EXIF
rotations, animation and transparency, then truncates, corrupts or misnames some. Hand-made
decompression bombs (a tiny file that declares 20000x20000) are refused before decoding: the
process's peak memory is measured (docs/reliability.md, "Image files").
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.doctor import check_folder
from engine.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    REASON_CORRUPT,
    REASON_EMPTY,
    REASON_NOT_IMAGE,
    REASON_TOO_LARGE,
    ImageLoadError,
    load_image,
)

ROOT = Path(__file__).resolve().parent.parent
REASONS = (REASON_EMPTY, REASON_NOT_IMAGE, REASON_CORRUPT, REASON_TOO_LARGE)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODES = ["1", "L", "P", "PA", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "I;16", "I", "F"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}
FORMATS["TIFF"] = ".tif"  # not an image extension: it reaches the loader only misnamed


@st.composite
def image_files(draw) -> tuple[str, bytes]:
    """(file name, bytes): a real encoded image, maybe animated, rotated, cut or corrupted."""
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rgb = Image.frombytes("RGB", (w, h), draw(st.binary(min_size=w * h * 3, max_size=w * h * 3)))
    mode = draw(st.sampled_from(MODES))
    try:
        im = rgb.convert(mode)
    except ValueError:
        im = rgb.convert("P").convert(mode) if mode == "PA" else rgb
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    kwargs: dict = {}
    if im.mode == "P" and draw(st.booleans()):
        kwargs["transparency"] = draw(st.integers(0, 255))
    if draw(st.booleans()) and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 10))  # orientation: 1-8 valid, the rest not
        kwargs["exif"] = exif.tobytes()
    if draw(st.booleans()) and fmt in ("PNG", "GIF", "WEBP", "TIFF"):
        kwargs["save_all"] = True
        kwargs["append_images"] = [im.transpose(Image.Transpose.ROTATE_180)] * draw(
            st.integers(1, 3)
        )
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt, **kwargs)
    except (OSError, ValueError, KeyError, TypeError):  # this mode cannot be saved this way
        buf = io.BytesIO()
        rgb.save(buf, format=fmt)
    data = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "append", "garbage"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        data = bytes(data)
    elif damage == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    elif damage == "garbage":
        data = draw(st.binary(max_size=256))
    right = FORMATS[fmt]
    ext = draw(st.sampled_from([right, right, *IMAGE_EXTENSIONS, ".JPG"]))
    return f"fuzz{ext}", data


def assert_rgb_or_reason(path: Path, **kwargs) -> None:
    try:
        loaded = load_image(path, **kwargs)
    except ImageLoadError as exc:
        assert exc.reason in REASONS or exc.reason.startswith("unreadable: "), exc.reason
        assert str(exc) == f"{path.name}: {exc.reason}"
        return
    assert loaded.image.mode == "RGB"
    assert loaded.image.width >= 1 and loaded.image.height >= 1
    assert loaded.width * loaded.height <= MAX_PIXELS


@pytest.mark.slow
@FUZZ
@given(image_files())
def test_fuzzed_image_files_open_as_rgb_or_give_a_reason(case):
    name, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        assert_rgb_or_reason(path)
        assert_rgb_or_reason(path, reduce_to=16)  # the doctor's reduced JPEG decode
        report = check_folder(Path(tmp), resolution=32)
        listed = path.suffix.lower() in IMAGE_EXTENSIONS  # others are listed, not decoded
        assert (len(report.images), len(report.other_files)) == ((1, 0) if listed else (0, 1))


# -------------------------------------------------------------------------- decompression bombs
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, mode_byte: int = 0) -> bytes:
    """A PNG that declares width x height (8-bit, grey or RGB) with one row of real data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode_byte, 0, 0, 0)
    row = b"\x00" + b"\x00" * width * (3 if mode_byte == 2 else 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row))
        + _chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to declare width x height."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, format="GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


BOMBS = {
    "png-20000x20000.png": png_header_only(20000, 20000),
    "png-rgb-12000x12000.png": png_header_only(12000, 12000, 2),  # Pillow alone decodes this
    "png-1x200000000.png": png_header_only(1, 200_000_000),
    "jpeg-20000x20000.jpg": jpeg_declaring(20000, 20000),
    "jpeg-65500x65500.jpg": jpeg_declaring(65500, 65500),
    "gif-65535x65535.png": gif_declaring(65535, 65535),  # misnamed too
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_decompression_bomb_is_refused_as_too_large(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BOMBS[name])
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.reason == REASON_TOO_LARGE


_MEASURE = """
import resource, sys, warnings
from pathlib import Path
warnings.simplefilter("error")  # a warning printed in the middle of a check is a defect too
from engine.images import ImageLoadError, load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in sorted(Path(sys.argv[1]).iterdir()):
    try:
        load_image(path)
        print(path.name, "ok")
    except ImageLoadError as exc:
        print(path.name, exc.reason)
print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.slow
def test_bombs_are_refused_before_decoding_in_bounded_memory(tmp_path):
    for name, data in BOMBS.items():
        (tmp_path / name).write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:-1] == [f"{name} {REASON_TOO_LARGE}" for name in sorted(BOMBS)]
    grew_kib = int(lines[-1].split()[1])
    assert grew_kib < 32 * 1024  # the largest declared image would take 12 GB


def test_one_by_one_cmyk_and_16_bit_images_load(tmp_path):
    cases = {
        "one.png": Image.new("RGB", (1, 1), "blue"),
        "cmyk.jpg": Image.new("CMYK", (8, 8), (255, 0, 0, 0)),
        "grey16.png": Image.new("I;16", (8, 8), 65535),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
    assert load_image(tmp_path / "one.png").image.getpixel((0, 0)) == (0, 0, 255)
    assert load_image(tmp_path / "cmyk.jpg").image.getpixel((4, 4))[0] < 40  # cyan: no red
    assert load_image(tmp_path / "grey16.png").image.getpixel((4, 4)) == (255, 255, 255)
