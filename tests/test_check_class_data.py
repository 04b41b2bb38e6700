"""`check` on a prior-preservation config whose class folder does not exist yet (as in
sample_configs/sd15-full.yaml on a fresh machine): the first run creates and fills it, so check
says so instead of failing with a traceback."""

from __future__ import annotations

from enginehelpers import cli, write_config


def test_check_accepts_a_class_folder_the_first_run_creates(tiny_dir, tmp_path):
    class_dir = tmp_path / "class-shape"
    cfg = write_config(
        tmp_path,
        train={
            "instance_data": str(tiny_dir / "images"),
            "prior_preservation": True,
            "class_data": str(class_dir),
            "num_class_images": 3,
        },
    )
    out = cli("check", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert f"train.class_data: {class_dir} (not there yet" in out.stdout
    assert "generates 3 class images" in out.stdout and "config OK" in out.stdout
    assert not class_dir.exists()  # check creates nothing
