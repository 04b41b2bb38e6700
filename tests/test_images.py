"""engine.images: every kind of file a user's folder holds opens as RGB or fails with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.images import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    caption_for,
    list_image_files,
    load_image,
    open_rgb,
    scan_images,
)

try:
    from tests.imagefactory import (
        concept_image,
        gradient_16bit,
        make_concept_images,
        make_messy_folder,
        png_16bit_rgb,
        truncated_jpeg,
    )
except ImportError:  # tests/ itself is on sys.path (pytest's default import mode, no package)
    from imagefactory import (
        concept_image,
        gradient_16bit,
        make_concept_images,
        make_messy_folder,
        png_16bit_rgb,
        truncated_jpeg,
    )

SIZE = 64


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("messy")
    expected = make_messy_folder(folder, size=SIZE)
    return folder, expected


def _row(im: Image.Image, y: int) -> list[tuple[int, int, int]]:
    return [im.getpixel((x, y)) for x in range(im.width)]


def test_list_image_files_filters_and_sorts(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JpEg", "d.webp", "e.bmp", "f.gif", "g.txt", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "._a.jpg").write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.png").write_bytes(b"x")
    names = [p.name for p in list_image_files(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.JpEg", "d.webp", "e.bmp"]
    assert ".jpg" in IMAGE_EXTENSIONS and ".gif" not in IMAGE_EXTENSIONS


def test_list_image_files_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_image_files(tmp_path / "nope")


def test_messy_usable_images_open_as_rgb(messy):
    folder, expected = messy
    for name in expected["usable"]:
        im = open_rgb(folder / name)
        assert im.mode == "RGB", name
        want = expected["rotated_size_after"] if name == expected["rotated"] else (SIZE, SIZE)
        assert im.size == want, name
        im.getpixel((0, 0))  # fully loaded: the file is closed, pixels still there


def test_messy_modes_are_what_the_factory_promises(messy):
    folder, expected = messy
    for name, mode in expected["modes"].items():
        with Image.open(folder / name) as im:
            # older Pillow opens 16-bit grey PNGs as "I"
            assert im.mode == mode or (mode == "I;16" and im.mode == "I"), name
        assert load_image(folder / name).mode == mode or mode == "I;16"


def test_exif_rotated_is_turned_upright(messy):
    folder, expected = messy
    name = expected["rotated"]
    with Image.open(folder / name) as raw:
        stored_w, stored_h = raw.size
    assert (stored_h, stored_w) == expected["rotated_size_after"]
    im = open_rgb(folder / name)
    w, h = im.size
    assert (w, h) == (stored_h, stored_w)
    # the blue band along the stored top edge is, after orientation 6, along the right edge
    right = im.getpixel((w - 2, h // 2))
    left = im.getpixel((1, h // 2))
    assert right[2] > 180 and right[0] < 80, right
    assert not (left[2] > 180 and left[0] < 80), left
    loaded = load_image(folder / name)
    assert loaded.orientation == 6
    assert (loaded.width, loaded.height) == (w, h)


def test_rgba_transparent_area_becomes_white(messy):
    folder, _ = messy
    im = open_rgb(folder / "rgba.png")
    # right half was alpha 0 over black: must come out white, not black
    for x in (SIZE // 2 + 1, SIZE - 2):
        for y in (1, SIZE // 2, SIZE - 2):
            assert im.getpixel((x, y)) == (255, 255, 255)
    assert im.getpixel((2, 2)) != (255, 255, 255)  # the opaque background is untouched
    assert load_image(folder / "rgba.png").has_alpha


def test_16bit_gradient_is_scaled_not_clipped(messy):
    folder, _ = messy
    im = open_rgb(folder / "grey16.png")
    row = [p[0] for p in _row(im, SIZE // 2)]
    assert all(p[0] == p[1] == p[2] for p in _row(im, SIZE // 2))
    assert row[0] < 10 and row[-1] > 245
    assert row == sorted(row)  # keeps its ordering
    assert len(set(row)) > SIZE // 2  # a ramp, not a couple of levels
    mid = row[SIZE // 2]
    assert 100 < mid < 160


def test_cmyk_becomes_rgb(messy):
    folder, _ = messy
    im = open_rgb(folder / "cmyk.jpg")
    assert im.mode == "RGB"
    ref = concept_image(3, SIZE)
    # the background keeps its light colour (CMYK JPEGs are easy to invert by mistake)
    got, want = im.getpixel((1, 1)), ref.getpixel((1, 1))
    assert all(abs(a - b) < 30 for a, b in zip(got, want, strict=True)), (got, want)


def test_palette_becomes_rgb(messy):
    folder, _ = messy
    im = open_rgb(folder / "palette.png")
    assert im.mode == "RGB"
    assert len(set(im.tobytes()[i : i + 3] for i in range(0, SIZE * SIZE * 3, 3))) > 2


@pytest.mark.parametrize("name", ["corrupt.jpg", "empty.png", "notes.jpg"])
def test_messy_unusable_raise_with_reason(messy, name):
    folder, expected = messy
    with pytest.raises(ImageLoadError) as info:
        open_rgb(folder / name)
    err = info.value
    assert expected["unusable"][name] in err.reason
    assert err.path == folder / name
    assert str(err) == f"{name}: {err.reason}"


def test_unusable_reasons_are_the_documented_phrases(messy):
    folder, expected = messy
    assert expected["unusable"] == {
        "corrupt.jpg": "truncated or corrupt",
        "empty.png": "empty file",
        "notes.jpg": "not an image",
    }
    reasons = {}
    for name in expected["unusable"]:
        with pytest.raises(ImageLoadError) as info:
            open_rgb(folder / name)
        reasons[name] = info.value.reason
    assert reasons == {
        "corrupt.jpg": "truncated or corrupt image data",
        "empty.png": "empty file",
        "notes.jpg": "not an image (cannot identify format)",
    }


def test_missing_file_is_unreadable_with_errno_text(tmp_path):
    with pytest.raises(ImageLoadError) as info:
        open_rgb(tmp_path / "gone.png")
    assert info.value.reason == f"unreadable: {os.strerror(2)}"


@pytest.mark.skipif(
    sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0),
    reason="root reads anything",
)
def test_permission_denied_is_unreadable(tmp_path):
    path = tmp_path / "locked.png"
    concept_image(0, 16).save(path)
    path.chmod(0)
    try:
        with pytest.raises(ImageLoadError) as info:
            open_rgb(path)
        assert info.value.reason.startswith("unreadable: ")
        assert "ermission" in info.value.reason
    finally:
        path.chmod(0o644)


def test_decompression_bomb_is_too_large(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64), "red").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64*64 > 2 * 100: an error
    with pytest.raises(ImageLoadError) as info:
        open_rgb(path)
    assert info.value.reason == "too large"


def test_scan_images_names_each_skipped_file(messy):
    folder, expected = messy
    result = scan_images(folder)
    assert sorted(p.name for p in result.good) == expected["usable"]
    skipped = {p.name: reason for p, reason in result.skipped}
    assert set(skipped) == set(expected["unusable"])
    for name, reason in skipped.items():
        assert expected["unusable"][name] in reason
    # captions, README.md are not images and are ignored silently
    assert not any(
        p.suffix in (".txt", ".md") for p in result.good + [p for p, _ in result.skipped]
    )


def test_caption_for(messy, tmp_path):
    folder, expected = messy
    name, text = expected["caption"]
    assert caption_for(folder / name) == text
    assert caption_for(folder / "good2.jpg") is None
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.txt").write_text("  \n\n", encoding="utf-8")
    assert caption_for(tmp_path / "a.png") is None  # empty caption
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "b.txt").write_bytes("\ufeffa café photo\n".encode())
    assert caption_for(tmp_path / "b.png") == "a café photo"  # BOM dropped


# -- modes beyond the messy folder ----------------------------------------------------------


def test_palette_with_transparency_composited_on_white(tmp_path):
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    im.paste(1, (0, 0, 4, 8))
    im.info["transparency"] = 0
    path = tmp_path / "p.png"
    im.save(path, transparency=0)
    out = open_rgb(path)
    assert out.getpixel((1, 1)) == (255, 0, 0)
    assert out.getpixel((6, 6)) == (255, 255, 255)


def test_la_and_partial_alpha(tmp_path):
    la = Image.new("LA", (4, 4), (0, 128))  # black at half opacity over white: mid grey
    path = tmp_path / "la.png"
    la.save(path)
    out = open_rgb(path)
    r, g, b = out.getpixel((0, 0))
    assert r == g == b and 120 <= r <= 135


def test_opaque_rgba_is_not_flagged_as_alpha(tmp_path):
    path = tmp_path / "opaque.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 255)).save(path)
    loaded = load_image(path)
    assert not loaded.has_alpha
    assert loaded.image.getpixel((0, 0)) == (10, 20, 30)


def test_bilevel(tmp_path):
    one = Image.new("1", (4, 4), 0)
    one.putpixel((3, 3), 1)
    one.save(tmp_path / "one.png")
    out = open_rgb(tmp_path / "one.png")
    assert out.getpixel((0, 0)) == (0, 0, 0)
    assert out.getpixel((3, 3)) == (255, 255, 255)


def test_float_greyscale_in_unit_range(tmp_path):
    f = Image.new("F", (3, 1))
    for x, v in enumerate((0.0, 0.5, 1.0)):
        f.putpixel((x, 0), v)
    f.save(tmp_path / "f.tiff")  # PNG cannot store float pixels; TIFF can
    (tmp_path / "f.tiff").rename(tmp_path / "f_as.bmp")  # the content decides, not the name
    out = open_rgb(tmp_path / "f_as.bmp")
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_int32_greyscale_16bit_range(tmp_path):
    i = Image.new("I", (3, 1))
    for x, v in enumerate((0, 32768, 65535)):
        i.putpixel((x, 0), v)
    i.save(tmp_path / "i.tiff")
    (tmp_path / "i.tiff").rename(tmp_path / "i.png")
    out = open_rgb(tmp_path / "i.png")
    assert [out.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_dark_16bit_stays_dark(tmp_path):
    im = gradient_16bit(16, 2).point(lambda v: v * 0.1)  # 0 .. 6553
    assert im.mode in ("I;16", "I")
    im.save(tmp_path / "dark.png")
    out = open_rgb(tmp_path / "dark.png")
    assert max(out.getpixel((x, 0))[0] for x in range(16)) <= 30


def test_16bit_rgb_png(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_16bit_rgb(16, 4))
    out = open_rgb(path)
    assert out.mode == "RGB" and out.size == (16, 4)
    assert out.getpixel((0, 0)) == (0, 0, 255)
    assert out.getpixel((15, 0)) == (255, 0, 0)


def test_animated_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    loaded = load_image(path)
    assert loaded.n_frames == 3
    assert loaded.image.getpixel((4, 4)) == (255, 0, 0)

    png = tmp_path / "anim.png"
    frames[0].save(png, save_all=True, append_images=frames[1:], duration=100)
    assert open_rgb(png).getpixel((4, 4)) == (255, 0, 0)


def test_wrong_extension_still_opens(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    concept_image(0, 16).save(path, format="PNG")
    assert open_rgb(path).size == (16, 16)


def test_reduced_decode_keeps_full_size_and_catches_truncation(tmp_path):
    big = concept_image(0, 1024)
    big.save(tmp_path / "big.jpg", quality=90)
    loaded = load_image(tmp_path / "big.jpg", reduce_to=256)
    assert loaded.reduced and (loaded.width, loaded.height) == (1024, 1024)
    assert min(loaded.image.size) >= 256 and loaded.image.size != (1024, 1024)
    assert open_rgb(tmp_path / "big.jpg").size == (1024, 1024)

    (tmp_path / "cut.jpg").write_bytes(truncated_jpeg(big))
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.jpg", reduce_to=256)


def test_concept_images(tmp_path):
    paths = make_concept_images(tmp_path / "c", n=5, size=48, seed=3)
    assert [p.name for p in paths] == [f"concept_{i:02d}.png" for i in range(5)]
    images = [open_rgb(p) for p in paths]
    assert all(im.size == (48, 48) for im in images)
    assert len({im.tobytes() for im in images}) == 5
    again = make_concept_images(tmp_path / "d", n=5, size=48, seed=3)
    assert [open_rgb(p).tobytes() for p in again] == [im.tobytes() for im in images]


def test_images_module_imports_no_heavy_packages():
    code = (
        "import sys, engine.images, engine.doctor\n"
        "bad = [m for m in ('torch', 'numpy', 'diffusers', 'transformers', 'textual') "
        "if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
