"""SDXL trained end to end on the tiny SDXL (builtin:tiny-sdxl), on the CPU (issue 11): LoRA and
full fine-tune through the SDXL model family; events, samples and checkpoints; final/ loads in
diffusers' StableDiffusionXLPipeline and remakes the last validation sample exactly; a resume
from a checkpoint repeats the losses; each view's time ids are its geometry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.families import SDXL
from tests.enginehelpers import (
    losses,
    of_type,
    prepare,
    remade,
    resume_from,
    train_in_process,
)
from tests.test_run_outputs import generated, pixels

TRAIN = {
    "model": "builtin:tiny-sdxl",
    "max_train_steps": 3,
    "validation_steps": 3,  # samples at the end only
    "checkpointing_steps": 2,
    "learning_rate": 1e-3,
    "center_crop": False,  # random crops and flips: time ids differ per view
    "random_flip": True,
}
EVALUATION = {"num_images": 2, "num_inference_steps": 2, "seed": 3, "scheduler": "euler_a"}


def _run(tmp: Path, **train):
    code, run_dir, events = train_in_process(tmp, train={**TRAIN, **train}, evaluation=EVALUATION)
    assert code == 0, of_type(events, "error")
    return run_dir, events


@pytest.fixture(scope="module")
def lora_run(tiny_sdxl_dir, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sdxl-lora"), method="lora", lora_rank=4, lora_alpha=8)


@pytest.fixture(scope="module")
def full_run(tiny_sdxl_dir, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sdxl-full"), method="full", cache_latents=False)


def _last_samples(run_dir: Path, events: list[dict]) -> list[np.ndarray]:
    (event,) = [e for e in of_type(events, "sample") if e["step"] == 3]
    return [np.asarray(Image.open(run_dir / p).convert("RGB")) for p in event["paths"]]


def _remade(pipe, run_dir: Path) -> list[np.ndarray]:
    """The last samples made again as the run made them (engine.render, the run's settings)."""
    return remade(pipe, EVALUATION, "a photo of sks shape")


def _assert_same(made: list[np.ndarray], watched: list[np.ndarray]) -> None:
    assert len(made) == len(watched) == 2
    for a, b in zip(made, watched, strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(watched[0], watched[1])


def test_sdxl_lora_trains_samples_and_saves_a_lora_the_pipeline_loads(lora_run, tiny_sdxl_dir):
    from diffusers import StableDiffusionXLPipeline

    run_dir, events = lora_run
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert sorted(losses(events)) == [1, 2, 3]
    assert all(np.isfinite(v) for v in losses(events).values())
    assert [e["step"] for e in of_type(events, "sample")] == [3]  # one prompt, two images
    assert (run_dir / "checkpoints" / "step-000002").is_dir()
    pipe = StableDiffusionXLPipeline.from_pretrained(
        tiny_sdxl_dir / "model", **SDXL.pipeline_extras
    )
    pipe.load_lora_weights(run_dir / "final", weight_name="pytorch_lora_weights.safetensors")
    _assert_same(_remade(pipe, run_dir), _last_samples(run_dir, events))


def test_sdxl_lora_generate_run_equals_the_last_sample(lora_run, tmp_path):
    run_dir, events = lora_run
    made = generated(tmp_path / "gen", run_dir, "--run", str(run_dir))
    _assert_same([pixels(p) for p in made], _last_samples(run_dir, events))


def test_sdxl_lora_kohya_export_gives_the_runs_images(lora_run, tiny_sdxl_dir, tmp_path, capsys):
    """The UNet-only LoRA (attention targets) in the kohya layout (test_sdxl_kohya_export)."""
    from tests.test_sdxl_kohya_export import export_kohya_round_trip

    weights = export_kohya_round_trip(
        lora_run[0], tiny_sdxl_dir, tmp_path / "x.safetensors", capsys
    )
    assert not any(k.startswith("lora_te") for k in weights)  # no text encoder trained


def test_sdxl_full_fine_tune_final_loads_and_remakes_the_last_sample(full_run, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    run_dir, events = full_run
    assert events[-1]["status"] == "completed"
    index = json.loads((run_dir / "final" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    pipe = StableDiffusionXLPipeline.from_pretrained(run_dir / "final", **SDXL.pipeline_extras)
    assert pipe.vae.dtype == torch.float32
    _assert_same(_remade(pipe, run_dir), _last_samples(run_dir, events))
    made = generated(tmp_path / "gen", run_dir, "--run", str(run_dir))
    _assert_same([pixels(p) for p in made], _last_samples(run_dir, events))


def test_sdxl_resumed_from_a_checkpoint_repeats_the_losses(lora_run):
    run_dir, events = lora_run
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3]
    for step, value in resumed.items():
        assert value == straight[step], step


def test_sdxl_time_ids_are_each_views_geometry(tiny_sdxl_dir, tmp_path):
    """A prepared trainer on images of several shapes: micro-batch k's time ids are, row by
    row, the original size, crop corner (mirrored when flipped) and target size of its views."""
    from engine.config import load_config
    from engine.runs import CONFIG_FILE
    from engine.train import Trainer

    folder = tmp_path / "shapes"
    folder.mkdir()
    for n, (w, h) in enumerate([(48, 32), (32, 64), (40, 40)]):
        Image.new("RGB", (w, h), (40 * n, 90, 200)).save(folder / f"{n}.png")
    run_dir = prepare(
        tmp_path,
        train={**TRAIN, "instance_data": str(folder), "train_batch_size": 3, "validation_steps": 9},
    )
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / CONFIG_FILE)
    trainer.setup()
    trainer.prepare()
    batches = trainer.batches
    seen = set()
    # resized so the shorter side is 32: (32, 48) -> crops along the width, (64, 32) -> along
    # the height (taller: 64), (40, 40) -> 32 x 32, one place
    corners = {(32, 48): (range(1), range(17)), (64, 32): (range(33), range(1)), (40, 40): None}
    for k in range(3):
        _, cond, _, _ = batches.micro_batch(k)
        assert cond.added["text_embeds"].shape == (3, 32)
        for row in cond.added["time_ids"].tolist():
            original, corner, target = tuple(row[:2]), tuple(row[2:4]), row[4:]
            assert target == [32, 32] and original in corners
            tops, lefts = corners[original] or (range(1), range(1))
            assert corner[0] in tops and corner[1] in lefts
            seen.add(tuple(row))
    assert len(seen) > 3  # random crops and flips move the corner


QUIET_SDXL = {**TRAIN, "center_crop": True, "validation_steps": 100, "checkpointing_steps": 100}


def test_sdxl_cached_and_uncached_training_give_the_same_losses(tiny_sdxl_dir, tmp_path):
    """Cached latents and embeddings (pooled and time ids included) train as encoding every step."""
    settings = {**QUIET_SDXL, "max_train_steps": 3, "train_batch_size": 2}
    c1, _, cached = train_in_process(tmp_path / "c", train={**settings, "cache_latents": True})
    c2, _, plain = train_in_process(tmp_path / "u", train={**settings, "cache_latents": False})
    assert c1 == c2 == 0
    a, b = losses(cached), losses(plain)
    assert a.keys() == b.keys() == {1, 2, 3}
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-4, abs=1e-6)


def test_sdxl_prior_preservation_makes_class_images_with_the_sdxl_pipeline(tiny_sdxl_dir, tmp_path):
    class_dir = tmp_path / "class"
    code, _, events = train_in_process(
        tmp_path,
        train={
            **QUIET_SDXL,
            "max_train_steps": 2,
            "prior_preservation": True,
            "class_data": str(class_dir),
            "class_prompt": "a photo of shape",
            "num_class_images": 2,
            "sample_batch_size": 2,
        },
    )
    assert code == 0, of_type(events, "error")
    made = sorted(class_dir.glob("*.png"))
    assert len(made) == 2 and Image.open(made[0]).size == (32, 32)
    for e in of_type(events, "step"):
        assert e["loss_prior"] > 0 and e["loss_instance"] > 0
