"""Aspect-ratio buckets in training (train.aspect_buckets, issue 11), on the tiny models (CPU):
a folder of mixed aspect ratios trains with every UNet batch one bucket's shape, a resumed run
repeats the losses, and SDXL's time ids carry each image's original size and bucket crop
(prior preservation with buckets: tests/test_bucket_prior.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.buckets import bucket_list, bucket_of, cover_and_crop
from tests.enginehelpers import (
    losses,
    of_type,
    prepare,
    resume_from,
    train_in_process,
    unet_training_shapes,
)
from tests.imagefactory import concept_image

# tiny VAE: downscale 2, so bucket sides are multiples of 16: at 64 px, 48x80, 64x64, 80x48
RESOLUTION, STEP = 64, 16
SHAPES = [(64, 64), (96, 64), (64, 96), (100, 60), (60, 100), (70, 70)]  # (width, height)
TRAIN = {
    "resolution": RESOLUTION,
    "aspect_buckets": True,
    "train_batch_size": 2,
    "max_train_steps": 4,
    "checkpointing_steps": 2,
    "validation_steps": 4,
    "learning_rate": 1e-3,
    "random_flip": True,
}
EVALUATION = {"num_images": 1, "num_inference_steps": 2}


def _folder(tmp: Path) -> Path:
    folder = tmp / "mixed"
    folder.mkdir(parents=True)
    for n, size in enumerate(SHAPES):
        concept_image(n, 128).resize(size).save(folder / f"{n}.png")
    return folder


_RUNS: dict[bool, tuple] = {}


@pytest.fixture(scope="module", params=[True, False], ids=["cached", "uncached"])
def bucket_run(request, tiny_dir, tmp_path_factory):
    """A bucketed run (latents cached per image at its bucket's shape, or encoded every step)
    and the shapes of the latents the UNet trained on."""
    tmp = tmp_path_factory.mktemp("buckets")
    with unet_training_shapes() as shapes:
        code, run_dir, events = train_in_process(
            tmp,
            train={**TRAIN, "instance_data": str(_folder(tmp)), "cache_latents": request.param},
            evaluation=EVALUATION,
        )
    assert code == 0, of_type(events, "error")
    _RUNS[request.param] = (run_dir, events, shapes)
    return run_dir, events, shapes


def test_mixed_aspect_ratios_train_with_one_bucket_shape_per_batch(bucket_run):
    _, events, shapes = bucket_run
    buckets = bucket_list(RESOLUTION, STEP)
    assert len(buckets) == 3
    expected = {bucket_of(w, h, buckets) for w, h in SHAPES}
    assert len(expected) == 3  # the folder spans all three buckets
    latent_shapes = {(h // 2, w // 2) for w, h in expected}  # the tiny VAE halves each side
    assert len(shapes) == TRAIN["max_train_steps"]
    for shape in shapes:
        assert shape[0] == TRAIN["train_batch_size"]
        assert shape[-2:] in latent_shapes  # one bucket's shape, not a square crop
    assert len({s[-2:] for s in shapes}) >= 2  # several buckets were trained on
    assert len(losses(events)) == TRAIN["max_train_steps"]


def test_bucketed_run_resumed_from_a_checkpoint_repeats_the_losses(bucket_run):
    run_dir, events, _ = bucket_run
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3, 4]
    for step, value in resumed.items():
        assert value == straight[step], step


def test_bucketed_cached_and_uncached_runs_give_the_same_losses(bucket_run):
    if len(_RUNS) < 2:
        pytest.skip("needs both the cached and the uncached run")
    cached, plain = losses(_RUNS[True][1]), losses(_RUNS[False][1])
    assert cached.keys() == plain.keys() == {1, 2, 3, 4}
    for step in cached:
        assert cached[step] == pytest.approx(plain[step], rel=1e-4, abs=1e-6)
    assert _RUNS[True][2] == _RUNS[False][2]  # the same batches, the same shapes


def test_sdxl_time_ids_carry_the_original_size_and_bucket_crop(tiny_sdxl_dir, tmp_path):
    from engine.config import load_config
    from engine.runs import CONFIG_FILE
    from engine.train import Trainer

    run_dir = prepare(
        tmp_path,
        train={
            **TRAIN,
            "model": "builtin:tiny-sdxl",
            "instance_data": str(_folder(tmp_path)),
            "random_flip": False,
            "validation_steps": 9,
        },
    )
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / CONFIG_FILE)
    trainer.setup()
    trainer.prepare()
    buckets = bucket_list(RESOLUTION, STEP)
    expected = {}
    for w, h in SHAPES:
        bucket = bucket_of(w, h, buckets)
        _, (left, top) = cover_and_crop(w, h, bucket)
        expected[(h, w)] = [h, w, top, left, bucket[1], bucket[0]]
    seen = set()
    for k in range(6):
        latents, cond, _, _ = trainer.batches.micro_batch(k)
        rows = cond.added["time_ids"].tolist()
        for row in rows:
            assert row == expected[tuple(row[:2])]
            assert latents.shape[-2:] == (row[4] // 2, row[5] // 2)
            seen.add(tuple(row[:2]))
    assert any(row[2] or row[3] for row in expected.values())  # some crops are off the corner
    assert len(seen) >= 3
