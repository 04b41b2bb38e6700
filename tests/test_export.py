"""`export`: kohya LoRA, original-layout single file and fused LoRA, each loaded back by the
consumer diffusers offers (load_lora_weights, from_single_file) and compared image for image
with the run's own model on the same seed; bad input is one line, exit 2, nothing replaced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine import cli
from engine.export.single_file import LayoutError, to_original, verify
from engine.generate import load_pipeline
from tests.enginehelpers import of_type, train_in_process

SHORT = {"max_train_steps": 2, "validation_steps": 100, "learning_rate": 1e-3}
# LoRA runs train with lora_alpha != lora_rank: an export that loses the alpha changes the images
LORA = {**SHORT, "method": "lora", "lora_rank": 4, "lora_alpha": 8, "checkpointing_steps": 100}
# fusing computes W + s*B@A once instead of W@x + s*B@(A@x): equal up to float rounding
FUSE_TOLERANCE = 1e-4  # on images in [0, 1]


def _train(root: Path, **train) -> Path:
    code, run_dir, events = train_in_process(root, train=train)
    assert code == 0, of_type(events, "error")
    return run_dir


@pytest.fixture(scope="module")
def runs(tiny_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-runs")
    return {
        "unet": _train(root / "unet", **LORA),
        "unet+te": _train(root / "te", **LORA, train_text_encoder=True),
        "full": _train(root / "full", **SHORT, method="full", checkpointing_steps=1),
    }


def images(pipe) -> np.ndarray:
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator().manual_seed(0)
    return pipe(
        "a photo of sks shape", num_inference_steps=3, generator=gen, output_type="np"
    ).images


def base_pipe(tiny_dir):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(tiny_dir / "model", safety_checker=None)


def export(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["unet", "unet+te"])
def test_kohya_export_gives_the_runs_images_through_load_lora_weights(
    kind, runs, tiny_dir, tmp_path, capsys
):
    out = tmp_path / "concept.safetensors"
    code, _, err = export(
        capsys, str(runs[kind]), "--format", "kohya", "--dtype", "fp32", "--output", str(out)
    )
    assert code == 0, err
    weights = load_file(out)
    modules = {k.split(".")[0] for k in weights}
    assert all(m.startswith(("lora_unet_", "lora_te_text_model_")) for m in modules), modules
    assert any(m.startswith("lora_te_") for m in modules) == (kind == "unet+te")
    assert all(weights[f"{m}.alpha"].item() == 8 for m in modules)  # the trained alpha, not rank
    assert all(weights[f"{m}.lora_down.weight"].shape[0] == 4 for m in modules)

    own = images(load_pipeline(run_dir=runs[kind], device="cpu", dtype="fp32"))
    pipe = base_pipe(tiny_dir)
    plain = images(pipe)
    pipe.load_lora_weights(str(tmp_path), weight_name=out.name)
    if kind == "unet+te":
        assert any("lora_A" in n for n, _ in pipe.text_encoder.named_modules())
    assert np.abs(own - plain).max() > 1e-3  # the LoRA changes the images: the test can fail
    assert np.array_equal(images(pipe), own)  # pixel equality


def test_single_file_export_gives_final_images_through_from_single_file(runs, tmp_path, capsys):
    from diffusers import StableDiffusionPipeline

    final = runs["full"] / "final"
    out = tmp_path / "model.safetensors"
    code, _, err = export(
        capsys,
        str(runs["full"]),
        "--format",
        "single-file",
        "--dtype",
        "fp32",
        "--output",
        str(out),
    )
    assert code == 0, err
    keys = load_file(out).keys()
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.")
    assert all(k.startswith(prefixes) for k in keys)
    text = [k for k in keys if k.startswith("cond_stage_model.")]
    assert text and all(k.startswith("cond_stage_model.transformer.text_model.") for k in text)
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys  # original names
    # the tiny model's sizes are not SD 1.5's: its config comes from final/ (config=)
    loaded = StableDiffusionPipeline.from_single_file(
        str(out), config=str(final), local_files_only=True, safety_checker=None
    )
    own = StableDiffusionPipeline.from_pretrained(final, safety_checker=None)
    assert np.array_equal(images(loaded), images(own))


def test_single_file_check_refuses_a_layout_diffusers_reads_differently(tiny_dir):
    pipe = base_pipe(tiny_dir)
    parts = (pipe.unet, pipe.vae, pipe.text_encoder)
    original = to_original(*parts, torch.float32)
    verify(original, *parts)  # the right layout passes
    a, b = "model.diffusion_model.out.0.weight", "model.diffusion_model.out.0.bias"
    original[a], original[b] = original[b], original[a]  # two tensors under swapped names
    with pytest.raises(LayoutError):
        verify(original, *parts)
    del original["first_stage_model.encoder.mid.attn_1.q.weight"]
    with pytest.raises(LayoutError):
        verify(original, *parts)


@pytest.mark.parametrize("fmt", ["diffusers", "single-file"])
def test_fused_lora_gives_base_plus_lora_images(fmt, runs, tiny_dir, tmp_path, capsys):
    from diffusers import StableDiffusionPipeline

    run = runs["unet+te"]
    out = tmp_path / ("fused" if fmt == "diffusers" else "fused.safetensors")
    code, _, err = export(
        capsys, str(run), "--format", fmt, "--fuse", "--dtype", "fp32", "--output", str(out)
    )
    assert code == 0, err
    if fmt == "diffusers":
        fused = StableDiffusionPipeline.from_pretrained(out, safety_checker=None)
    else:
        fused = StableDiffusionPipeline.from_single_file(
            str(out), config=str(tiny_dir / "model"), local_files_only=True, safety_checker=None
        )
    assert not any("lora" in n for n, _ in fused.unet.named_modules())
    with_lora = images(load_pipeline(run_dir=run, device="cpu", dtype="fp32"))
    plain = images(base_pipe(tiny_dir))
    got = images(fused)
    assert np.abs(with_lora - plain).max() > 1e-3
    assert np.abs(got - with_lora).max() <= FUSE_TOLERANCE


def test_bad_input_is_one_line_exit_2_and_nothing_is_replaced(runs, tmp_path, capsys):
    lora, full = str(runs["unet"]), str(runs["full"])
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"keep me")
    cases = [
        ([str(tmp_path / "nope"), "--format", "kohya"], "does not exist"),
        ([full, "--format", "kohya"], "is a full fine-tune, not a LoRA"),
        ([lora, "--format", "single-file"], "needs --fuse"),
        ([full, "--format", "single-file", "--checkpoint", "99"], "no checkpoint at step 99"),
        ([lora, "--format", "kohya", "--checkpoint", "latest"], "has no checkpoints"),
        ([lora, "--format", "kohya", "--output", str(taken)], "exists; remove it"),
    ]
    for argv, message in cases:
        code, out, err = export(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert taken.read_bytes() == b"keep me"


def test_sdxl_run_is_refused_in_one_line(runs, tmp_path, capsys):
    run = tmp_path / "sdxl-run"
    shutil.copytree(runs["full"], run)
    index = run / "final" / "model_index.json"
    index.write_text(
        json.dumps({**json.loads(index.read_text()), "_class_name": "StableDiffusionXLPipeline"})
    )
    code, _, err = export(capsys, str(run), "--format", "single-file")
    assert code == 2 and "SDXL" in err and "not there yet" in err, err
    assert not (run / "exports").exists()


def test_single_file_names_fit_the_sd15_architecture():
    """The full-size SD 1.5 layout (3 resnets per up block, 4 levels, attention-free outer
    blocks), on the meta device: diffusers' forward converters put every original name back on
    its diffusers weight."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    from benchmarks.sd15_arch import unet_config, vae_config
    from engine.export.single_file import unet_key, vae_key

    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_config())
        vae = AutoencoderKL(**vae_config())
    weights = unet.state_dict()
    original = {"model.diffusion_model." + unet_key(k, unet.config): v for k, v in weights.items()}
    assert (
        "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight"
        in original
    )
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in original  # attention-free
    back = convert_ldm_unet_checkpoint(original, unet.config)
    assert back.keys() == weights.keys()
    assert all(back[k] is v for k, v in weights.items())
    weights = vae.state_dict()
    original = {"first_stage_model." + vae_key(k, vae.config): v for k, v in weights.items()}
    assert "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight" in original  # 256->128
    assert "first_stage_model.decoder.up.3.upsample.conv.weight" in original
    back = convert_ldm_vae_checkpoint(original, vae.config)
    assert back.keys() == weights.keys()
    assert all(back[k] is v for k, v in weights.items())
