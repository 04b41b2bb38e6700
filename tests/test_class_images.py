"""Issue 9 item 3: class images come from a pipeline of their own (the base model, on the
device, in the weight dtype, freed before training), never overwrite the user's files, and a
run uses exactly num_class_images of the folder."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref

import torch

from engine import class_images
from engine.events import read_events
from engine.tiny import concept_image
from tests.enginehelpers import ROOT, of_type, train_in_process, write_config

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}
CLASS_PROMPT = "a photo of shape"


def _prior(class_dir, **extra):
    return {
        **QUIET,
        "max_train_steps": 1,
        "prior_preservation": True,
        "class_data": str(class_dir),
        "class_prompt": CLASS_PROMPT,
        **extra,
    }


def test_generated_class_images_never_overwrite_the_users_files(tiny_dir, tmp_path):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    # the names the engine used to give its own images ("class-00001.png" was next in line)
    concept_image(7, 32).save(class_dir / "class-00001.png")
    (class_dir / ".tmp-class-00004-123.png").write_bytes(b"half a png")  # a killed generation
    (class_dir / "notes.txt").write_text("mine")
    before = (class_dir / "class-00001.png").read_bytes()
    code, _, events = train_in_process(
        tmp_path, train=_prior(class_dir, num_class_images=3, sample_batch_size=2)
    )
    assert code == 0, of_type(events, "error")
    assert (class_dir / "class-00001.png").read_bytes() == before
    assert (class_dir / "notes.txt").read_text() == "mine"
    names = sorted(p.name for p in class_dir.iterdir())
    assert len(names) == 4 and not any(n.startswith(".tmp-class-") for n in names), names
    made = [n for n in names if n not in ("class-00001.png", "notes.txt")]
    assert [n[:12] for n in made] == ["class-00001-", "class-00002-"], made
    from PIL import Image

    for n in made:
        with Image.open(class_dir / n) as im:
            assert im.size == (32, 32)


def test_a_run_uses_num_class_images_of_a_fuller_folder(tiny_dir, tmp_path, monkeypatch):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    for i, name in enumerate(["d.png", "b.png", "e.png", "a.png", "c.png"]):
        concept_image(20 + i, 32).save(class_dir / name)
    loaded = []
    import engine.training.batches as train

    real_load = train.load_images

    def spying_load(value, prompt, *args, **kwargs):
        images = real_load(value, prompt, *args, **kwargs)
        loaded.append((prompt, images.names))
        return images

    monkeypatch.setattr(train, "load_images", spying_load)
    code, _, events = train_in_process(tmp_path, train=_prior(class_dir, num_class_images=3))
    assert code == 0, of_type(events, "error")
    assert "generating_class_images" not in [e["name"] for e in of_type(events, "phase")]
    assert (CLASS_PROMPT, ["a.png", "b.png", "c.png"]) in loaded
    assert any("3 class images" in e["message"] for e in of_type(events, "log"))
    assert len(list(class_dir.iterdir())) == 5


def test_class_images_come_from_their_own_pipeline_on_the_device_in_the_weight_dtype(
    tiny_dir, tmp_path, monkeypatch
):
    """bf16 mixed precision, method full: the training UNet stays fp32 on the CPU until the
    optimizer is built, so a pipeline sharing it (the old code) is mixed fp32/bf16; the class
    pipeline must be all bf16, on the accelerator device, and gone before training."""
    from diffusers import StableDiffusionPipeline

    import engine.train as train

    calls = []
    real_call = StableDiffusionPipeline.__call__

    def spying_call(self, prompt=None, *args, **kwargs):
        if prompt == [CLASS_PROMPT] * len(prompt or []):
            modules = {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder}
            calls.append(
                {
                    name: {(p.device.type, p.dtype) for p in m.parameters()}
                    for name, m in modules.items()
                }
                | {"refs": [weakref.ref(self), weakref.ref(self.unet)]}
            )
        return real_call(self, prompt, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", spying_call)
    alive_at_training = []
    real_build = train.Trainer.build_optimizer

    def checking_build(trainer):
        gc.collect()
        alive_at_training.extend(r() is not None for c in calls for r in c["refs"])
        expected_device.append(trainer.device.type)
        return real_build(trainer)

    expected_device: list[str] = []
    monkeypatch.setattr(train.Trainer, "build_optimizer", checking_build)
    class_dir = tmp_path / "class"
    code, _, events = train_in_process(
        tmp_path,
        train=_prior(
            class_dir,
            num_class_images=2,
            sample_batch_size=2,
            method="full",
            mixed_precision="bf16",
        ),
    )
    assert code == 0, of_type(events, "error")
    assert len(calls) == 1
    for name in ("unet", "vae", "text_encoder"):
        assert calls[0][name] == {(expected_device[0], torch.bfloat16)}, (name, calls[0][name])
    assert alive_at_training == [False, False]  # pipeline and its UNet freed before training
    assert len(list(class_dir.glob("class-*.png"))) == 2


def test_write_new_image_never_replaces_a_file(tmp_path):
    img = concept_image(1, 16)
    first = class_images.write_new_image(tmp_path, "class-00000", img)
    first_bytes = first.read_bytes()
    second = class_images.write_new_image(tmp_path, "class-00000", img)  # same content, name
    assert second != first and second.name.endswith("-1.png")
    assert first.read_bytes() == first_bytes == second.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])


def test_two_processes_share_the_class_image_generation(tiny_dir, tmp_path):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    concept_image(3, 32).save(class_dir / "mine.png")
    before = (class_dir / "mine.png").read_bytes()
    cfg = write_config(
        tmp_path,
        train=_prior(class_dir, max_train_steps=2, num_class_images=4, sample_batch_size=1),
    )
    out = subprocess.run(
        [sys.executable, "-m", "engine", "train", str(cfg), "--num-processes", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=280,
        env={**os.environ, "MASTER_PORT": "29531"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    events = read_events(run_dir / "events.jsonl")
    assert of_type(events, "run_started")[0]["world_size"] == 2
    # 3 missing: rank 0 makes images 0 and 2, rank 1 makes image 1
    assert any(
        e["message"] == "class images 4/4 (made per process: 2, 1)" for e in of_type(events, "log")
    ), [e["message"] for e in of_type(events, "log")]
    assert (class_dir / "mine.png").read_bytes() == before
    made = sorted(p.name[:11] for p in class_dir.glob("class-*.png"))
    assert made == ["class-00001", "class-00002", "class-00003"]
    assert events[-1]["status"] == "completed"
