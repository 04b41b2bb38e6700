"""Issue 9 item 6: `center_crop: false` draws a new random crop each time an image is used,
seeded from its place in the data sequence, so a resumed run draws the same crops; with cached
latents several crops per image are cached and the warning says so."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import engine.training.batches as train
from engine import crops
from tests.enginehelpers import losses, of_type, train_in_process

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}
# random crops, each draw encoded, 4 steps with a checkpoint at 2 to resume from
DRAWS = {**QUIET, "center_crop": False, "cache_latents": False, "max_train_steps": 4}
DRAWS["checkpointing_steps"] = 2


@pytest.fixture
def wide_image(tmp_path):
    """One 64 x 32 image (the demo trains at 32 px): 33 crop places, all different."""
    folder = tmp_path / "one"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(folder / "wide.png")
    return folder


@pytest.fixture
def encoded(monkeypatch):
    """Every pixel batch the engine encodes with the VAE, in order."""
    seen = []
    real = train.latent_distribution

    def spy(vae, pixels):
        seen.append(pixels.detach().clone())
        return real(vae, pixels)

    monkeypatch.setattr(train, "latent_distribution", spy)
    return seen


def test_random_crops_differ_per_draw_and_a_resume_draws_the_same(
    tiny_dir, tmp_path, wide_image, encoded
):
    settings = {**DRAWS, "instance_data": str(wide_image)}
    code, run_dir, events = train_in_process(tmp_path, train=settings)
    assert code == 0, of_type(events, "error")
    assert len(encoded) == 4  # one image, batch 1: every step is a new epoch of that image
    first = list(encoded)
    assert all(px.shape == (1, 3, 32, 32) for px in first)
    for a, b in zip(first, first[1:], strict=False):
        assert not np.array_equal(a.numpy(), b.numpy())  # each epoch a new crop
    assert not any("cached for" in e["message"] for e in of_type(events, "log"))

    encoded.clear()
    code, _, resumed = train_in_process(
        tmp_path, resume=str(run_dir / "checkpoints" / "step-000002"), run_dir=run_dir
    )
    assert code == 0, of_type(resumed, "error")
    assert len(encoded) == 2  # steps 3 and 4, the same crops as the first time
    for a, b in zip(encoded, first[2:], strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    straight = losses(events)
    start = resumed.index(of_type(resumed, "run_started")[-1])
    again = losses(resumed[start:])
    assert again == {3: straight[3], 4: straight[4]}


def test_cached_latents_hold_several_crops_per_image_and_the_warning_says_so(
    tiny_dir, tmp_path, wide_image, encoded, monkeypatch
):
    used = []
    real_sample = train.sample_latents

    def spy(mean, std, scaling, gen):
        used.append(mean.detach().clone())
        return real_sample(mean, std, scaling, gen)

    monkeypatch.setattr(train, "sample_latents", spy)
    code, _, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "instance_data": str(wide_image),
            "center_crop": False,
            "cache_latents": True,
            "max_train_steps": 8,
        },
    )
    assert code == 0, of_type(events, "error")
    # the cache pass encoded CACHED_CROPS different crops of the one image
    assert len(encoded) == crops.CACHED_CROPS
    distinct = {px.numpy().tobytes() for px in encoded}
    assert len(distinct) == crops.CACHED_CROPS
    # training drew from more than one of them
    assert len(used) == 8
    assert len({m.numpy().tobytes() for m in used}) > 1
    warnings = [e["message"] for e in of_type(events, "log") if e["level"] == "warning"]
    assert crops.CACHE_WARNING in warnings
    assert f"cached for {crops.CACHED_CROPS} random crops" in crops.CACHE_WARNING


def test_center_crops_are_one_crop_per_image(tiny_dir, tmp_path, wide_image, encoded):
    code, _, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "instance_data": str(wide_image),
            "center_crop": True,
            "cache_latents": False,
            "max_train_steps": 2,
        },
    )
    assert code == 0, of_type(events, "error")
    assert len(encoded) == 2 and np.array_equal(encoded[0].numpy(), encoded[1].numpy())
    # the centre: columns 16..47 of the 64-pixel-wide image
    src = np.asarray(Image.open(wide_image / "wide.png"))[:, 16:48]
    expected = src.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
    assert np.allclose(encoded[0][0].numpy(), expected, atol=1e-6)


def test_random_crops_inside_a_bucket_differ_per_draw_and_a_resume_draws_the_same(
    tiny_dir, tmp_path, encoded
):
    # at 64 px the tiny model's buckets are 48x80, 64x64, 80x48: a 128x48 image goes to 80x48
    # at scale 1, leaving 49 places along its width
    folder = tmp_path / "wider"
    folder.mkdir()
    src = np.random.default_rng(1).integers(0, 256, (48, 128, 3), dtype=np.uint8)
    Image.fromarray(src).save(folder / "wider.png")
    settings = {**DRAWS, "instance_data": str(folder), "resolution": 64, "aspect_buckets": "on"}
    code, run_dir, events = train_in_process(tmp_path, train=settings)
    assert code == 0, of_type(events, "error")
    first = list(encoded)
    assert len(first) == 4 and all(px.shape == (1, 3, 48, 80) for px in first)
    lefts = []
    for px in first:  # each draw is a bucket-sized view of the image, somewhere along its width
        view = np.rint((px[0].numpy() + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0)
        found = [x for x in range(128 - 80 + 1) if np.array_equal(src[:, x : x + 80], view)]
        assert len(found) == 1
        lefts += found
    assert len(set(lefts)) > 1  # not always the centre

    encoded.clear()
    code, _, resumed = train_in_process(
        tmp_path, resume=str(run_dir / "checkpoints" / "step-000002"), run_dir=run_dir
    )
    assert code == 0, of_type(resumed, "error")
    assert len(encoded) == 2
    for a, b in zip(encoded, first[2:], strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
