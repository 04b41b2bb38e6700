"""engine.doctor: each problem code is raised on a folder built for it, and only there."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image, ImageDraw

from engine.doctor import (
    PROBLEM_LABELS,
    PROBLEM_SEVERITY,
    DatasetReport,
    check_folder,
    dhash,
    folder_summary,
    hamming,
    severity,
)

try:
    from tests.imagefactory import concept_image, make_concept_images, make_messy_folder
except ImportError:  # tests/ itself is on sys.path (pytest's default import mode, no package)
    from imagefactory import concept_image, make_concept_images, make_messy_folder

CODES = ["unreadable", "tiny", "small", "duplicate", "odd_aspect", "alpha", "exif_rotated"]


def _by_name(report: DatasetReport) -> dict:
    return {i.name: i for i in report.images}


def test_codes_labels_and_severities():
    assert set(PROBLEM_LABELS) == set(CODES) | {"grayscale"}
    assert PROBLEM_SEVERITY == {
        "unreadable": "error",
        "tiny": "warning",
        "duplicate": "warning",
        "odd_aspect": "warning",
        "small": "info",
        "alpha": "info",
        "exif_rotated": "info",
        "grayscale": "info",
    }
    assert severity("duplicate") == "warning"
    assert all(PROBLEM_LABELS[c] for c in PROBLEM_LABELS)


def test_clean_folder_has_no_warnings(tmp_path):
    make_concept_images(tmp_path, n=5, size=64)
    report = check_folder(tmp_path, resolution=64)
    assert report.count == 5 and report.unusable_count == 0
    assert report.problems == {}
    assert not report.has_errors and not report.has_warnings
    assert all(i.problems == [] and i.messages == [] for i in report.images)
    assert report.summary_lines() == ["5 images · sizes 64 px · aspect 1.00"]
    assert report.other_files == []


def test_duplicates_exact_and_near(tmp_path):
    base = concept_image(0, 128)
    base.save(tmp_path / "a.png")
    base.save(tmp_path / "b.png")  # same pixels, another name
    base.resize((96, 96), Image.Resampling.LANCZOS).save(tmp_path / "c.png")  # near-duplicate
    concept_image(1, 128).save(tmp_path / "d.png")  # another photo of the concept
    big = concept_image(2, 1024)
    big.save(tmp_path / "e.jpg", quality=92)
    shutil.copy(tmp_path / "e.jpg", tmp_path / "f.jpg")  # identical big JPEG (reduced decode)

    report = check_folder(tmp_path, resolution=64)
    info = _by_name(report)
    assert info["a.png"].problems == []
    assert info["d.png"].problems == []
    assert info["e.jpg"].problems == []

    assert info["b.png"].problems == ["duplicate"]
    assert info["b.png"].duplicate_of == tmp_path / "a.png"
    assert info["b.png"].messages == ["duplicate of a.png (identical pixels)"]

    assert info["c.png"].problems == ["duplicate"]
    assert info["c.png"].duplicate_of == tmp_path / "a.png"
    assert info["c.png"].message_for("duplicate").startswith("duplicate of a.png (near-identical")

    assert info["f.jpg"].messages == ["duplicate of e.jpg (identical pixels)"]
    assert report.problems["duplicate"] == [tmp_path / n for n in ("b.png", "c.png", "f.jpg")]
    assert report.has_warnings and not report.has_errors
    # `check` prints these lines: each duplicate names the file it repeats
    assert "warning: 3 duplicate (b.png of a.png, c.png of a.png, f.jpg of e.jpg)" in (
        report.summary_lines()
    )
    assert info["b.png"].label("duplicate") == "duplicate of a.png"


def test_dhash_near_and_far():
    a = concept_image(0, 128)
    assert hamming(dhash(a), dhash(a.resize((80, 80)))) <= 4
    assert hamming(dhash(a), dhash(concept_image(1, 128))) > 4
    assert 0 <= dhash(a) < 2**64


def test_sizes_and_aspect(tmp_path):
    Image.new("RGB", (300, 100), (200, 30, 30)).save(tmp_path / "wide.png")
    Image.new("RGB", (20, 20), (30, 200, 30)).save(tmp_path / "tiny.png")
    Image.new("RGB", (300, 300), (30, 30, 200)).save(tmp_path / "small.png")
    Image.new("RGB", (512, 640), (200, 200, 30)).save(tmp_path / "fine.png")
    Image.new("RGB", (200, 100), (30, 200, 200)).save(tmp_path / "two_to_one.png")

    report = check_folder(tmp_path, resolution=512)
    info = _by_name(report)
    assert info["wide.png"].problems == ["tiny", "odd_aspect"]  # shorter side 100 < 256
    assert "33%" in info["wide.png"].message_for("odd_aspect")
    assert info["tiny.png"].problems == ["tiny"]
    assert info["small.png"].problems == ["small"]  # 256 <= 300 < 512: upscaled, not tiny
    assert info["fine.png"].problems == []
    # flat images all have dHash 0: only the colour guard keeps them from being "duplicates"
    assert "duplicate" not in report.problems
    assert "odd_aspect" not in info["two_to_one.png"].problems  # exactly 2.0 is fine
    assert (info["fine.png"].width, info["fine.png"].height, info["fine.png"].mode) == (
        512,
        640,
        "RGB",
    )
    assert report.problems["tiny"] == [
        tmp_path / n for n in ("tiny.png", "two_to_one.png", "wide.png")
    ]

    # a lower resolution makes the same images fine; never below 64 px though
    low = _by_name(check_folder(tmp_path, resolution=64))
    assert low["small.png"].problems == []
    assert low["tiny.png"].problems == ["tiny"]
    assert low["wide.png"].problems == ["odd_aspect"]

    lines = report.summary_lines()
    assert lines[0] == "5 images · sizes 20–512 px (median 100) · aspect 0.80–3.00"
    assert "warning: 3 too small (tiny.png, two_to_one.png, wide.png)" in lines
    assert "warning: 1 extreme aspect ratio (wide.png)" in lines
    assert "info: 1 below training resolution (upscaled) (small.png)" in lines
    assert report.short_side_stats == (20, 100, 512)
    assert report.width_stats == (20, 300, 512)
    assert report.height_stats == (20, 100, 640)


def test_alpha_only_when_something_is_transparent(tmp_path):
    im = concept_image(0, 64).convert("RGBA")
    ImageDraw.Draw(im).rectangle((0, 0, 10, 10), fill=(0, 0, 0, 0))
    im.save(tmp_path / "cutout.png")
    concept_image(1, 64).convert("RGBA").save(tmp_path / "opaque.png")
    info = _by_name(check_folder(tmp_path, resolution=64))
    assert info["cutout.png"].problems == ["alpha"]
    assert info["cutout.png"].messages == ["has transparency: composited on white in training"]
    assert info["opaque.png"].problems == []


def test_grayscale(tmp_path):
    concept_image(0, 64).convert("L").convert("RGB").save(tmp_path / "bw_as_rgb.jpg")
    concept_image(1, 64).convert("L").save(tmp_path / "bw.png")
    concept_image(2, 64).save(tmp_path / "colour.jpg")
    info = _by_name(check_folder(tmp_path, resolution=64))
    assert info["bw_as_rgb.jpg"].problems == ["grayscale"]
    assert info["bw.png"].problems == ["grayscale"]
    assert info["bw.png"].mode == "L"
    assert info["colour.jpg"].problems == []


def test_messy_folder(tmp_path):
    expected = make_messy_folder(tmp_path, size=64)
    report = check_folder(tmp_path, resolution=64)
    info = _by_name(report)
    assert report.count == len(expected["usable"]) == 8
    assert report.unusable_count == 3
    assert sorted(i.name for i in report.usable) == expected["usable"]
    assert [p.name for p in report.problems["unreadable"]] == sorted(expected["unusable"])
    for name, reason in expected["unusable"].items():
        assert info[name].problems == ["unreadable"]
        assert reason in info[name].error
        assert reason in info[name].messages[0]
        assert info[name].width is None and info[name].severity == "error"

    rotated = info[expected["rotated"]]
    assert rotated.problems == ["tiny", "exif_rotated"]  # 48 px shorter side
    assert (rotated.width, rotated.height) == expected["rotated_size_after"]
    assert "EXIF orientation 6" in rotated.message_for("exif_rotated")
    assert info["rgba.png"].problems == ["alpha"]
    assert info["grey16.png"].problems == ["grayscale"]
    assert info["grey16.png"].mode in ("I;16", "I")
    assert info["cmyk.jpg"].mode == "CMYK" and info["cmyk.jpg"].problems == []
    assert info["palette.png"].problems == []
    for name in ("good1.png", "good2.jpg", "good3.png"):
        assert info[name].problems == []
    caption_image, caption = expected["caption"]
    assert info[caption_image].caption == caption
    assert report.captioned_count == 1
    assert [p.name for p in report.other_files] == ["README.md", "good1.txt"]

    lines = report.summary_lines()
    assert lines[0] == (
        "11 images (3 unusable) · sizes 48–64 px (median 64) · aspect 0.75–1.00 · 1 caption"
    )
    assert lines[1:] == [
        "error: 3 unreadable (skipped) (corrupt.jpg, empty.png, notes.jpg)",
        "warning: 1 too small (rotated.jpg)",
        "info: 1 transparent (composited on white) (rgba.png)",
        "info: 1 EXIF-rotated (applied) (rotated.jpg)",
        "info: 1 grayscale (grey16.png)",
        "masks for train.masked_loss: 1 (1 alpha channel)",
    ]
    assert report.severity_counts() == {"error": 3, "warning": 1, "info": 2}


def test_default_resolution_flags_small_images(tmp_path):
    make_concept_images(tmp_path, n=5, size=64)
    report = check_folder(tmp_path)  # 512: 64 px images are tiny
    assert report.resolution == 512
    assert len(report.problems["tiny"]) == 5
    lines = report.summary_lines()
    assert "warning: 5 too small (concept_00.png, concept_01.png, concept_02.png, +2 more)" in lines


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    report = check_folder(tmp_path)
    assert report.count == 0 and report.images == []
    assert report.summary_lines() == ["no images (1 other file)"]
    assert report.short_side_stats is None and report.aspect_stats is None
    with pytest.raises(FileNotFoundError):
        check_folder(tmp_path / "missing")
    assert "cannot read the folder" in folder_summary(tmp_path / "missing")


def test_progress_callback(tmp_path):
    make_concept_images(tmp_path, n=3, size=32)
    seen = []
    check_folder(
        tmp_path, resolution=64, on_progress=lambda done, total: seen.append((done, total))
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_folder_summary(tmp_path):
    folder = tmp_path / "my-dog"
    make_messy_folder(folder, size=64)
    assert folder_summary(folder, resolution=64) == (
        "my-dog: 11 images (3 unusable) · sizes 48–64 px (median 64) · aspect 0.75–1.00"
        " · 1 caption · 3 unreadable, 1 tiny, 1 alpha, 1 exif_rotated, 1 grayscale"
    )
