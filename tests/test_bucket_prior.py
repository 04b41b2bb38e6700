"""Prior preservation with aspect-ratio buckets (issue 11), on the tiny model (CPU): class
images are made at the instance images' bucket sizes in proportion, every UNet batch holds
instance and class rows of one bucket's shape, a resumed run repeats the losses, and the class
folder is keyed by the images' shapes (a run with other buckets makes its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.buckets import bucket_list, bucket_of
from engine.class_buckets import plan_buckets, shares
from tests.enginehelpers import losses, of_type, resume_from, train_in_process, unet_training_shapes
from tests.imagefactory import concept_image

# the tiny VAE halves each side: bucket sides are multiples of 16, at 64 px 48x80, 64x64, 80x48
RESOLUTION, STEP = 64, 16
BUCKETS = bucket_list(RESOLUTION, STEP)
SHAPES = [(64, 64), (96, 64), (64, 96), (100, 60), (60, 100), (70, 70)]  # (width, height)
TRAIN = {
    "resolution": RESOLUTION,
    "aspect_buckets": True,
    "train_batch_size": 2,
    "max_train_steps": 3,
    "checkpointing_steps": 2,
    "validation_steps": 9,
    "learning_rate": 1e-3,
    "prior_preservation": True,
    "class_prompt": "a photo of shape",
    "num_class_images": 4,
    "sample_batch_size": 2,
}


def _folder(folder: Path, shapes: list[tuple[int, int]], first: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, size in enumerate(shapes, first):
        concept_image(n, 128).resize(size).save(folder / f"{n}.png")
    return folder


# the fixture trains (class images made first) and one test resumes: minutes on a loaded box
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def prior_run(tiny_dir, tmp_path_factory):
    """A bucketed run with prior preservation (class folder: one square image of the user's)
    and the shapes of the latents the UNet trained on."""
    tmp = tmp_path_factory.mktemp("bucket-prior")
    class_dir = _folder(tmp / "class", [(70, 70)], first=50)
    with unet_training_shapes() as shapes:
        code, run_dir, events = train_in_process(
            tmp,
            train={
                **TRAIN,
                "instance_data": str(_folder(tmp / "mixed", SHAPES)),
                "class_data": str(class_dir),
            },
        )
    assert code == 0, of_type(events, "error")
    return run_dir, events, shapes, class_dir


def test_class_images_are_made_at_the_instance_buckets_sizes_in_proportion(prior_run):
    _, events, _, class_dir = prior_run
    instance_buckets = [bucket_of(w, h, BUCKETS) for w, h in SHAPES]
    wanted = shares(instance_buckets, TRAIN["num_class_images"])
    assert wanted == {(48, 80): 2, (64, 64): 1, (80, 48): 1}
    sizes: dict[tuple[int, int], int] = {}
    for path in class_dir.iterdir():
        with Image.open(path) as im:
            sizes[im.size] = sizes.get(im.size, 0) + 1
    # the user's square 70x70 image serves the square bucket; the rest were made at bucket sizes
    assert sizes.pop((70, 70)) == 1
    made = {b: n - (1 if b == (64, 64) else 0) for b, n in wanted.items()}
    assert sizes == {b: n for b, n in made.items() if n}
    assert any(e["name"] == "generating_class_images" for e in of_type(events, "phase"))


def test_every_unet_batch_is_one_bucket_with_instance_and_class_rows(prior_run):
    _, events, shapes, _ = prior_run
    latent_shapes = {(h // 2, w // 2) for w, h in BUCKETS}
    assert len(shapes) == TRAIN["max_train_steps"]
    for shape in shapes:
        assert shape[0] == 2 * TRAIN["train_batch_size"]  # instance rows, then class rows
        assert shape[-2:] in latent_shapes
    assert len({s[-2:] for s in shapes}) >= 2  # several buckets
    steps = of_type(events, "step")
    assert all(e["loss_prior"] > 0 and e["loss_instance"] > 0 for e in steps)


def test_bucketed_prior_run_resumed_from_a_checkpoint_repeats_the_losses(prior_run):
    run_dir, events, _, _ = prior_run
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3]
    for step, value in resumed.items():
        assert value == straight[step], step


def test_class_folder_is_keyed_by_shape_other_buckets_make_their_own(tmp_path):
    # a folder made for wide buckets; the instance images now use the square and tall ones
    class_dir = _folder(tmp_path / "class", [(80, 48), (80, 48), (64, 64)])
    plan = plan_buckets(class_dir, [(64, 64), (48, 80), (48, 80), (48, 80)], 4, BUCKETS)
    assert plan.wanted == {(48, 80): 3, (64, 64): 1}
    assert [p.name for p in plan.existing[(64, 64)]] == ["2.png"]
    assert plan.existing[(48, 80)] == [] and plan.unused == 2  # the wide ones are not cropped
    jobs = plan.jobs(seed=0, resolution=RESOLUTION)
    assert [(j.width, j.height) for j in jobs] == [(48, 80)] * 3
    assert len({j.seed for j in jobs}) == 3 and jobs[0].stem == "class-48x80-00000"
    assert [p.name for p in plan.used()] == ["2.png"]  # the made ones join once written


def test_shares_follow_the_instance_buckets_and_give_every_bucket_one():
    wide, square, tall = BUCKETS[2], BUCKETS[1], BUCKETS[0]
    assert shares([square] * 8 + [tall] * 2, 10) == {tall: 2, square: 8}
    assert shares([square] * 9 + [wide], 4) == {square: 3, wide: 1}  # the one taken from the most
    assert shares([square] * 98 + [tall, wide], 10) == {tall: 1, square: 8, wide: 1}
    assert shares([square, tall, wide], 2) == {tall: 1, square: 1, wide: 1}  # one each
