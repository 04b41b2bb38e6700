"""Generate: images, their metadata, the grid and the events, on the built-in tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from fakeruns import add_full_checkpoint, make_full_run, make_lora_run
from PIL import Image

from engine import cli
from engine.events import read_events
from engine.generate import (
    GenerateError,
    default_output_dir,
    generate,
    load_pipeline,
    png_metadata,
    resolve_options,
)
from engine.tiny import ensure_tiny

TRICKY = "a [bold red]\"sks\" dog's [x] – 'ü' {braces} \\n"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipe():
    ensure_tiny()
    return load_pipeline("builtin:tiny", device="cpu")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"full": make_full_run(root), "lora": make_lora_run(root)}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def opts_for(tmp: Path, **kw):
    base = {
        "model": "builtin:tiny",
        "prompts": ["a photo of sks shape"],
        "num_images": 1,
        "num_inference_steps": 2,
        "output_dir": tmp,
    }
    return resolve_options(**{**base, **kw})


def test_outputs_metadata_sidecar_grid_and_events(tmp_path, pipe):
    out = tmp_path / "out"
    opts = opts_for(
        out,
        prompts=[TRICKY, "a photo of sks shape"],
        num_images=2,
        seed=7,
        negative_prompt="blurry [x]",
        guidance_scale=5.0,
        scheduler="euler_a",
    )
    seen_at_log = []

    def log(line: str) -> None:  # called after each image: its PNG and its event exist
        if not line.startswith("["):
            return
        samples = [e for e in read_events(out / "events.jsonl") if e["type"] == "sample"]
        seen_at_log.append([(out / s["paths"][0]).exists() for s in samples])

    paths = generate(opts, pipe=pipe, log=log)

    images, grid = paths[:-1], paths[-1]
    assert grid == out / "grid.png"
    assert [p.name[:4] for p in images] == ["000-", "001-", "002-", "003-"]
    assert [p.name.rsplit("-s", 1)[1] for p in images] == ["7.png", "8.png", "9.png", "10.png"]
    assert images[2].name == "002-a-photo-of-sks-shape-s9.png"
    prompts = [TRICKY, TRICKY, "a photo of sks shape", "a photo of sks shape"]
    for i, (path, prompt) in enumerate(zip(images, prompts, strict=True)):
        meta = png_metadata(path)
        assert meta["prompt"] == prompt  # brackets, quotes, unicode: unchanged
        assert meta["negative_prompt"] == "blurry [x]"
        assert meta["seed"] == str(7 + i)
        assert meta["steps"] == "2"
        assert meta["guidance_scale"] == "5.0"
        assert meta["scheduler"] == "euler_a"
        assert meta["model"] == "builtin:tiny"
        sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        assert sidecar["prompt"] == prompt
        assert sidecar["seed"] == 7 + i and sidecar["steps"] == 2
        assert sidecar["guidance_scale"] == 5.0 and sidecar["scheduler"] == "euler_a"
        assert sidecar["negative_prompt"] == "blurry [x]" and sidecar["model"] == "builtin:tiny"
        assert {k: str(v) if not isinstance(v, str) else v for k, v in sidecar.items()} == {
            "file": path.name,
            **meta,
        }
    with Image.open(grid) as g:  # 2 x 2 cells of 32 px with 2 px padding
        assert g.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)

    events = read_events(out / "events.jsonl")
    assert events[0]["type"] == "run_started" and events[0]["total_steps"] == 4
    samples = [e for e in events if e["type"] == "sample"]
    assert [s["paths"] for s in samples] == [[p.name] for p in images]
    assert [s["seed"] for s in samples] == [7, 8, 9, 10]
    assert all(s["step"] is None for s in samples) and samples[0]["prompt"] == TRICKY
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert events[-1]["outputs"]["grid"] == "grid.png"
    assert seen_at_log == [[True] * n for n in range(1, 5)]


def test_same_seed_same_image_whatever_the_batch(tmp_path, pipe):
    a = generate(opts_for(tmp_path / "a", seed=3, num_images=2, batch_size=2), pipe=pipe)
    b = generate(opts_for(tmp_path / "b", seed=3, num_images=2, batch_size=1), pipe=pipe)
    c = generate(opts_for(tmp_path / "c", seed=4), pipe=pipe)  # image 1 of a, alone
    assert a[0].read_bytes() == b[0].read_bytes()  # same settings: identical files
    assert np.array_equal(pixels(a[1]), pixels(c[0]))
    assert not np.array_equal(pixels(a[0]), pixels(a[1]))  # different seed, different image


def test_never_overwrites(tmp_path, pipe):
    first = generate(opts_for(tmp_path, seed=1), pipe=pipe)
    before = first[0].read_bytes()
    second = generate(opts_for(tmp_path, seed=1), pipe=pipe)
    assert second[0].name == first[0].name.replace(".png", "-2.png")
    assert second[-1].name == "grid-2.png"
    assert first[0].read_bytes() == before
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    assert default_output_dir(tmp_path / "images", now).name == "20240506-070809"
    assert default_output_dir(tmp_path / "images", now).name == "20240506-070809-2"


def test_run_defaults_come_from_its_evaluation_section(tmp_path, runs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opts = resolve_options(run_dir=runs["full"])
    assert (opts.prompts, opts.num_images, opts.seed) == (["a photo of sks shape"], 2, 5)
    assert (opts.scheduler, opts.num_inference_steps, opts.height) == ("ddim", 3, 32)
    paths = generate(opts)
    # a run's images stay with it (the app's rule too): RUN_DIR/generated/<yyyymmdd-hhmmss>/
    assert paths[0].parent.parent == runs["full"] / "generated"
    assert not (tmp_path / "images").exists()
    meta = png_metadata(paths[1])
    assert meta["seed"] == "6" and meta["scheduler"] == "ddim"
    assert meta["model"] == str(runs["full"] / "final") and meta["run"] == str(runs["full"])
    assert "lora" not in meta and "checkpoint" not in meta


def test_lora_run_and_lora_flag(tmp_path, runs, pipe, capsys):
    lora_file = runs["lora"] / "final" / "pytorch_lora_weights.safetensors"
    common = ["--prompt", "a photo of sks shape", "--seed", "5", "--num-inference-steps", "3"]
    common += ["--scheduler", "ddim", "--num-images", "1"]
    code = cli.main(
        [
            "generate",
            "--model",
            "builtin:tiny",
            "--lora",
            str(lora_file),
            *common,
            "--output-dir",
            str(tmp_path / "flag"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    code = cli.main(
        ["generate", "--run", str(runs["lora"]), *common, "--output-dir", str(tmp_path / "run")]
    )
    assert code == 0, capsys.readouterr().err
    base = generate(
        opts_for(tmp_path / "base", seed=5, num_inference_steps=3, scheduler="ddim"), pipe=pipe
    )
    flag = tmp_path / "flag" / base[0].name
    run = tmp_path / "run" / base[0].name
    assert png_metadata(flag)["lora"] == str(lora_file)
    assert png_metadata(run)["lora"] == str(lora_file)
    assert np.array_equal(pixels(flag), pixels(run))
    assert not np.array_equal(pixels(flag), pixels(base[0]))  # the LoRA changes the image


def test_checkpoint_of_a_full_run(tmp_path, runs):
    add_full_checkpoint(runs["full"], 2)
    common = {"num_images": 1, "num_inference_steps": 2}
    final = generate(resolve_options(run_dir=runs["full"], output_dir=tmp_path / "f", **common))
    ckpt = generate(
        resolve_options(run_dir=runs["full"], checkpoint=2, output_dir=tmp_path / "c", **common)
    )
    meta = png_metadata(ckpt[0])
    assert meta["checkpoint"] == "2" and meta["model"] == "builtin:tiny"
    assert not np.array_equal(pixels(final[0]), pixels(ckpt[0]))
    latest = resolve_options(
        run_dir=runs["full"], checkpoint="latest", output_dir=tmp_path / "l", **common
    )
    assert generate(latest)[0].name == ckpt[0].name
    with pytest.raises(GenerateError, match="no checkpoint at step 7; it has 2") as err:
        generate(resolve_options(run_dir=runs["full"], checkpoint=7, output_dir=tmp_path / "x"))
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "builtin:tiny"], "error: no prompt; give --prompt TEXT"),
        (["--model", "builtin:tiny", "--prompt", "x", "--height", "30"], "multiple of 8"),
        (["--model", "./no/such/model", "--prompt", "x"], "does not exist"),
        (["--run", "./no/such/run"], "no/such/run' does not exist"),
        (["--model", "builtin:tiny", "--checkpoint", "3", "--prompt", "x"], "needs --run"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert cli.main(["generate", *argv, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "device, message",
    [
        ("bogus", "--device 'bogus' is not a device; use cpu, cuda, cuda:N or mps"),
        ("cuda", "--device cuda: this machine has no CUDA GPU"),
        ("cuda:1", "--device cuda:1: this machine has no CUDA GPU"),
    ],
)
def test_a_device_the_machine_lacks_is_one_line_and_exit_2(device, message, capsys, tmp_path):
    """`--device cuda` on a CPU box said "AssertionError: Torch not compiled with CUDA enabled"
    (exit 1), a typo torch's list of every device type."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    argv = ["--model", "builtin:tiny", "--prompt", "x", "--device", device]
    assert cli.main(["generate", *argv, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


def test_show_prints_each_image(tmp_path, pipe, capsys):
    generate(opts_for(tmp_path, show=True, prompts=["[red]x[/red]"]), pipe=pipe)
    out = capsys.readouterr().out
    assert "[red]x[/red] (seed 0)" in out  # the caption, not Rich markup
    assert any(ch in out for ch in "░▒▓█▀▄")  # the picture, as text cells (not a terminal)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    return {**env, "HF_HOME": str(tmp_path / "hf-home"), **extra}


def test_offline_hub_model_fails_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "generate",
            "--model",
            "someone/not-cached-model",
            "--prompt",
            "x",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        env=_env(tmp_path, HF_HUB_OFFLINE="1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: cannot download 'someone/not-cached-model' from the Hugging Face Hub "
        "(offline / no network); use a local diffusers folder or check the connection"
    ]
    events = read_events(tmp_path / "out" / "events.jsonl")
    assert events[-2]["type"] == "error" and events[-2]["kind"] == "network"
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "failed"


def test_cli_modules_do_not_import_torch():
    code = (
        "import sys, engine.cli_generate, engine.cli_hub, engine.cli;"
        "engine.cli.build_parser();"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'datasets') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_help_says_where_a_runs_images_go(capsys, monkeypatch):
    """`generate --run`'s images go to RUN_DIR/generated/<stamp>; the help named only
    evaluation.output_dir (where a model without a run writes)."""
    monkeypatch.setenv("COLUMNS", "300")  # argparse wraps at hyphens too
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "RUN_DIR/generated/<yyyymmdd-hhmmss>" in help_text
    assert "<evaluation.output_dir>/<yyyymmdd-hhmmss>" in help_text
