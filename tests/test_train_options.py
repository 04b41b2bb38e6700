"""Training options on the tiny model: resolutions, precision, checkpointing, schedules, hub data."""

from __future__ import annotations

import math

import pytest

from tests.enginehelpers import of_type, train_in_process

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}


@pytest.mark.parametrize("resolution", [32, 64])
def test_trains_at_32_and_64_px(tiny_dir, tmp_path, resolution):
    code, run_dir, events = train_in_process(
        tmp_path,
        train={**QUIET, "max_train_steps": 2, "resolution": resolution, "validation_steps": 2},
    )
    assert code == 0, of_type(events, "error")
    from PIL import Image

    sample = of_type(events, "sample")[0]["paths"][0]
    assert Image.open(run_dir / sample).size == (resolution, resolution)


def test_bf16_mixed_precision_and_gradient_checkpointing(tiny_dir, tmp_path):
    code, _, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "max_train_steps": 2,
            "mixed_precision": "bf16",
            "gradient_checkpointing": True,
            "train_text_encoder": True,
        },
    )
    assert code == 0, of_type(events, "error")
    assert all(math.isfinite(e["loss"]) for e in of_type(events, "step"))


def test_fp16_on_a_cpu_is_a_config_error(tiny_dir, tmp_path):
    code, _, events = train_in_process(tmp_path, train={**QUIET, "mixed_precision": "fp16"})
    assert code == 2
    (error,) = of_type(events, "error")
    assert error["kind"] == "config" and "train.mixed_precision" in error["message"]
    assert "bf16" in error["hint"]


def test_warmup_and_scheduler_shape_the_learning_rate(tiny_dir, tmp_path):
    code, _, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "max_train_steps": 6,
            "lr_scheduler": "linear",
            "lr_warmup_steps": 3,
            "learning_rate": 1e-3,
        },
    )
    assert code == 0
    lrs = [e["lr"] for e in of_type(events, "step")]
    assert lrs[0] < lrs[1] < lrs[2] <= 1e-3  # warm-up
    assert lrs[3] > lrs[4] > lrs[5]  # linear decay


def test_grad_norm_is_clipped_and_reported(tiny_dir, tmp_path):
    """The step event reports the norm before clipping; the optimizer sees it clipped."""
    import torch
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    max_norm = 0.05
    seen: list[float] = []  # the total gradient norm each optimizer step gets

    def record(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    hook = register_optimizer_step_pre_hook(record)
    try:
        code, _, events = train_in_process(
            tmp_path, train={**QUIET, "max_train_steps": 3, "max_grad_norm": max_norm}
        )
    finally:
        hook.remove()
    assert code == 0, of_type(events, "error")
    reported = [e["grad_norm"] for e in of_type(events, "step")]
    assert len(seen) == len(reported) == 3
    for before, after in zip(reported, seen, strict=True):
        assert before > max_norm  # the update needed clipping ...
        assert after == pytest.approx(max_norm, rel=1e-3)  # ... and got it


def test_hub_dataset_finds_the_image_column_by_type(tiny_dir, tmp_path, monkeypatch):
    import datasets

    from engine.tiny import concept_image

    ds = datasets.Dataset.from_dict(
        {
            "caption": ["a photo of sks shape, red", "a photo of sks shape, blue"],
            "picture": [concept_image(0, 48).convert("RGBA"), concept_image(1, 40)],
        },
        features=datasets.Features(
            {"caption": datasets.Value("string"), "picture": datasets.Image()}
        ),
    )
    seen = {}

    def fake_load_dataset(repo_id, split=None, revision=None, **kw):
        seen["repo"] = repo_id
        return ds

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    from engine.data import load_images

    images = load_images("someone/sks-shapes", "a photo of sks shape", 32, True, True)
    assert seen["repo"] == "someone/sks-shapes"
    assert len(images) == 2 and images.pixels[0].shape == (3, 32, 32)
    assert images.prompts == ["a photo of sks shape, red", "a photo of sks shape, blue"]


def test_hub_dataset_offline_is_a_network_error(tiny_dir, tmp_path):
    code, _, events = train_in_process(
        tmp_path, train={**QUIET, "instance_data": "nobody/not-a-dataset"}
    )
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "network" and "nobody/not-a-dataset" in error["message"]


def test_missing_hub_model_offline_is_one_clear_error(tiny_dir, tmp_path):
    code, _, events = train_in_process(tmp_path, train={**QUIET, "model": "nobody/no-model"})
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "network" and "nobody/no-model" in error["message"]
