"""`check` on an image folder where nothing can be trained on: one line that says why, naming
the unreadable files when there are some (not "add .jpg images" beside a .jpg)."""

from __future__ import annotations

from enginehelpers import cli, write_config


def test_check_names_the_unreadable_images_of_a_folder_with_none_usable(tiny_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat [1].jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "notes.txt").write_text("not an image", encoding="utf-8")
    cfg = write_config(tmp_path, train={"model": "builtin:tiny", "instance_data": str(photos)})
    out = cli("check", str(cfg))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {photos}: no usable image: 1 unreadable (cat [1].jpg); add readable .jpg, "
        ".jpeg, .png, .webp or .bmp images (see train.instance_data)"
    ]
    (photos / "cat [1].jpg").unlink()  # no image file at all
    out = cli("check", str(cfg))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: {photos}: no usable image; add .jpg, .jpeg, .png, .webp or .bmp images "
        "(see train.instance_data)"
    ]
