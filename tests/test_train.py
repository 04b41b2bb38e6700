"""Issue 2: the engine trains end to end, headless and offline, on the tiny model."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from tests.enginehelpers import DEMO, ROOT, cli, losses, of_type, train_in_process, write_config

try:
    from tests.imagefactory import make_messy_folder
except ImportError:  # pragma: no cover
    from imagefactory import make_messy_folder


def test_demo_config_trains_headless(tiny_dir, tmp_path):
    out = cli("train", str(DEMO), "--output-dir", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    from engine.events import read_events

    events = read_events(run_dir / "events.jsonl")
    assert events[0]["type"] == "run_started"
    assert events[0]["total_steps"] == 20 and events[0]["world_size"] == 1
    assert events[0]["config"]["train"]["model"] == "builtin:tiny"
    steps = of_type(events, "step")
    assert [e["step"] for e in steps] == list(range(1, 21))
    for e in steps:
        assert math.isfinite(e["loss"]) and math.isfinite(e["lr"]) and e["lr"] > 0
        assert math.isfinite(e["it_s"]) and e["it_s"] > 0
        assert e["mem"]["peak"] > 0 and e["mem"]["allocated"] > 0
    samples = of_type(events, "sample")
    assert {e["step"] for e in samples} == {10, 20}
    for e in samples:
        assert e["paths"] and all((run_dir / p).is_file() for p in e["paths"])
    finished = events[-1]
    assert finished["type"] == "finished" and finished["status"] == "completed"
    assert finished["step"] == 20 and finished["outputs"]["final"] == "final"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "run.json").is_file()
    assert "completed at step 20" in out.stderr

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(run_dir / "final")
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        "a photo of sks shape",
        num_inference_steps=2,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.size == (32, 32)


def test_recipe_learns_on_a_fixed_batch(tiny_dir):
    from engine.data import load_folder, normalize, tokenize
    from engine.models import load_components
    from engine.recipe import add_noise, dreambooth_loss, encode_latents, prediction_target

    c = load_components(str(tiny_dir / "model"))
    images = load_folder(tiny_dir / "images", "a photo of sks shape", 32, True, False)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = encode_latents(c.vae, normalize(torch.stack(images.pixels[:2])), gen)
        embeds = c.text_encoder(tokenize(c.tokenizer, images.prompts[:2]))[0]
    noise = torch.randn(latents.shape, generator=gen)
    t = torch.tensor([300, 700])
    noisy = add_noise(c.noise_scheduler, latents, noise, t)
    target = prediction_target(c.noise_scheduler, latents, noise, t)
    opt = torch.optim.AdamW(c.unet.parameters(), lr=1e-3)
    history = []
    for _ in range(25):
        loss = dreambooth_loss(c.unet(noisy, t, embeds).sample, target, t).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    assert history[-1] < 0.5 * history[0], history


def test_same_seed_same_losses(tiny_dir, tmp_path):
    settings = {
        "max_train_steps": 4,
        "validation_steps": 100,
        "checkpointing_steps": 100,
        "random_flip": True,
        "center_crop": False,
    }
    code1, _, ev1 = train_in_process(tmp_path / "a", train=settings)
    code2, _, ev2 = train_in_process(tmp_path / "b", train=settings)
    assert code1 == code2 == 0
    assert losses(ev1) == losses(ev2) and len(losses(ev1)) == 4
    code3, _, ev3 = train_in_process(tmp_path / "c", train={**settings, "seed": 7})
    assert code3 == 0 and losses(ev3) != losses(ev1)


def test_adamw8bit_and_gradient_accumulation_on_cpu(tiny_dir, tmp_path):
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 3,
            "optimizer": "adamw8bit",
            "gradient_accumulation_steps": 2,
            "train_batch_size": 2,
            "validation_steps": 100,
            "checkpointing_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    steps = of_type(events, "step")
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(math.isfinite(e["loss"]) for e in steps)
    assert steps[0]["samples_s"] == pytest.approx(steps[0]["it_s"] * 4)
    assert (run_dir / "final" / "model_index.json").exists()


def test_messy_folder_trains_on_what_is_usable(tiny_dir, tmp_path):
    folder = tmp_path / "messy"
    expected = make_messy_folder(folder)
    code, _, events = train_in_process(
        tmp_path,
        train={
            "instance_data": str(folder),
            "max_train_steps": 2,
            "validation_steps": 100,
            "checkpointing_steps": 100,
            "captions": True,
        },
    )
    assert code == 0, of_type(events, "error")
    warnings = " | ".join(e["message"] for e in of_type(events, "log") if e["level"] == "warning")
    for name in expected["unusable"]:
        assert name in warnings
    for name in expected["usable"]:
        assert name not in warnings
    info = [e["message"] for e in of_type(events, "log") if "instance images" in e["message"]]
    assert info and info[0].startswith(f"{len(expected['usable'])} instance images")


def test_tutorial_format_trains(tiny_dir, tmp_path):
    out = cli(
        "train",
        str(ROOT / "sample_configs" / "tutorial-format.yaml"),
        "--output-dir",
        str(tmp_path / "runs"),
        "--max-train-steps",
        "2",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "feature_extractor" in out.stderr  # reported as unused
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "final" / "model_index.json").exists()


BAD_CONFIGS = {
    "unknown key": ("train:\n  learnig_rate: 1\n", "did you mean 'learning_rate'"),
    "wrong type": ("train:\n  max_train_steps: abc\n", "train.max_train_steps"),
    "out of range": ("train:\n  learning_rate: -1\n", "train.learning_rate"),
    "bad enum": ("train:\n  method: qlora\n", "full, lora"),
    "yaml syntax": ("train:\n  resolution: [32\n", "line"),
    "missing required": (None, "train.instance_prompt"),
}


def _bad_config(tmp_path: Path, body: str | None) -> Path:
    base = (
        "train:\n  model: builtin:tiny\n  instance_data: builtin:tiny\n"
        "  instance_prompt: a photo of sks shape\n"
    )
    path = tmp_path / "bad.yaml"
    if body is None:
        path.write_text(base.replace("  instance_prompt: a photo of sks shape\n", ""))
    else:
        extra = body.split("\n", 1)[1]
        path.write_text(base + extra)
    return path


def _one_clear_line(out) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    return errors[0]


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(tmp_path, kind):
    body, expect = BAD_CONFIGS[kind]
    path = _bad_config(tmp_path, body)
    line = _one_clear_line(cli("train", str(path), "--output-dir", str(tmp_path / "runs")))
    assert "bad.yaml" in line and expect in line


def test_bad_paths_exit_2_with_one_line(tiny_dir, tmp_path):
    missing_cfg = cli("train", str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in _one_clear_line(missing_cfg)

    cfg = write_config(tmp_path, train={"instance_data": str(tmp_path / "no-such-folder")})
    assert "no-such-folder" in _one_clear_line(cli("train", str(cfg)))

    cfg = write_config(tmp_path, train={"model": str(tmp_path / "no-model")})
    assert "no-model" in _one_clear_line(cli("train", str(cfg)))

    not_a_pipeline = tmp_path / "empty-model"
    not_a_pipeline.mkdir()
    cfg = write_config(tmp_path, train={"model": str(not_a_pipeline)})
    assert "empty-model" in _one_clear_line(cli("check", str(cfg)))

    empty = tmp_path / "empty-folder"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    cfg = write_config(tmp_path, train={"instance_data": str(empty)})
    line = _one_clear_line(cli("train", str(cfg)))
    assert "empty-folder" in line and "no usable image" in line


def test_check_validates_without_training(tiny_dir, tmp_path):
    cfg = write_config(tmp_path, train={"instance_data": str(tiny_dir / "images")})
    out = cli("check", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "6 images" in out.stdout and "config OK" in out.stdout
    assert not (tmp_path / "runs").exists()


def test_second_engine_on_same_run_is_refused(tiny_dir, tmp_path):
    from engine.runs import RunLock
    from tests.enginehelpers import prepare

    run_dir = prepare(tmp_path)
    with RunLock(run_dir):
        out = cli("run", str(run_dir))
    assert out.returncode == 2
    assert "already in use" in out.stderr and "pid" in out.stderr
    shutil.rmtree(run_dir)
