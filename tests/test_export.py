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
from safetensors import safe_open
from safetensors.torch import load_file

from engine import cli
from engine.events import read_events
from engine.export.single_file import LayoutError, to_original, verify
from engine.generate import load_pipeline
from tests.enginehelpers import of_type, train_in_process, write_config

SHORT = {"max_train_steps": 2, "validation_steps": 100, "learning_rate": 1e-3}
# LoRA runs train with lora_alpha != lora_rank: an export that loses the alpha changes the images
LORA = {**SHORT, "method": "lora", "lora_rank": 4, "lora_alpha": 8, "checkpointing_steps": 100}
# fusing computes W + s*B@A once instead of W@x + s*B@(A@x): equal up to float rounding
FUSE_TOLERANCE = 1e-4  # on images in [0, 1]


def _train(root: Path, **train) -> Path:
    code, run_dir, events = train_in_process(root, train=train)
    assert code == 0, of_type(events, "error")
    return run_dir


# One module-scoped fixture per run: each test's setup trains at most one (the per-test timeout
# covers fixtures).
@pytest.fixture(scope="module")
def unet_run(tiny_dir, tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("export-unet"), **LORA)


@pytest.fixture(scope="module")
def te_run(tiny_dir, tmp_path_factory) -> Path:
    # train.export: both formats written when the run ends
    root = tmp_path_factory.mktemp("export-te")
    return _train(root, **LORA, train_text_encoder=True, export=["kohya", "single-file"])


@pytest.fixture(scope="module")
def full_run(tiny_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export-full")
    return _train(root, **SHORT, method="full", checkpointing_steps=1)


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
    kind, request, tiny_dir, tmp_path, capsys
):
    runs = {kind: request.getfixturevalue("unet_run" if kind == "unet" else "te_run")}
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
    with safe_open(str(out), framework="pt") as fh:  # A1111 takes it for SD 1.x: no version key
        assert {"ss_v2", "ss_base_model_version"}.isdisjoint(fh.metadata())

    own = images(load_pipeline(run_dir=runs[kind], device="cpu", dtype="fp32"))
    pipe = base_pipe(tiny_dir)
    plain = images(pipe)
    pipe.load_lora_weights(str(tmp_path), weight_name=out.name)
    if kind == "unet+te":
        assert any("lora_A" in n for n, _ in pipe.text_encoder.named_modules())
    assert np.abs(own - plain).max() > 1e-3  # the LoRA changes the images: the test can fail
    assert np.array_equal(images(pipe), own)  # pixel equality


def test_runs_outputs_are_readable_as_the_umask_allows_not_owner_only(full_run, te_run):
    """final/ (a full model and a LoRA), a checkpoint and the exports written at the end of a
    run: each file the mode a new file gets from the umask (safetensors alone writes 0600)."""
    import stat

    from engine.file_modes import current_umask

    want = 0o666 & ~current_umask()
    files = [
        *(full_run / "final").rglob("*.safetensors"),
        *(full_run / "checkpoints").rglob("*.safetensors"),
        te_run / "final" / "pytorch_lora_weights.safetensors",
        *(te_run / "exports").glob("*.safetensors"),
    ]
    assert len(files) >= 7
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {
        f.name: oct(want) for f in files
    }


def test_single_file_export_gives_final_images_through_from_single_file(full_run, tmp_path, capsys):
    from diffusers import StableDiffusionPipeline

    final = full_run / "final"
    out = tmp_path / "model.safetensors"
    code, _, err = export(
        capsys,
        str(full_run),
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
    original = to_original(pipe, torch.float32)
    verify(original, pipe)  # the right layout passes
    a, b = "model.diffusion_model.out.0.weight", "model.diffusion_model.out.0.bias"
    original[a], original[b] = original[b], original[a]  # two tensors under swapped names
    with pytest.raises(LayoutError):
        verify(original, pipe)
    del original["first_stage_model.encoder.mid.attn_1.q.weight"]
    with pytest.raises(LayoutError):
        verify(original, pipe)


@pytest.mark.parametrize("fmt", ["diffusers", "single-file"])
def test_fused_lora_gives_base_plus_lora_images(fmt, te_run, tiny_dir, tmp_path, capsys):
    from diffusers import StableDiffusionPipeline

    run = te_run
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


def test_bad_input_is_one_line_exit_2_and_nothing_is_replaced(unet_run, full_run, tmp_path, capsys):
    lora, full = str(unet_run), str(full_run)
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


def test_another_family_is_refused_in_one_line(full_run, tmp_path, capsys):
    run = tmp_path / "flux-run"
    shutil.copytree(full_run, run)
    index = run / "final" / "model_index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "_class_name": "FluxPipeline"}))
    code, _, err = export(capsys, str(run), "--format", "single-file")
    assert code == 2 and "Flux" in err and "not there yet" in err and err.count("\n") == 1, err
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


def test_train_export_writes_the_formats_when_the_run_ends(te_run, tmp_path, capsys):
    run = te_run
    finished = of_type(read_events(run / "events.jsonl"), "finished")[-1]
    name = run.name
    want = [
        f"exports/{name}-kohya-fp16.safetensors",
        f"exports/{name}-single-file-fused-fp16.safetensors",
    ]
    assert finished["outputs"]["exports"] == want
    # the same files `export` writes by hand
    for fmt, written in zip(["kohya", "single-file"], want, strict=True):
        out = tmp_path / f"{fmt}.safetensors"
        args = ["--fuse"] if fmt == "single-file" else []
        code, _, err = export(capsys, str(run), "--format", fmt, *args, "--output", str(out))
        assert code == 0, err
        got, again = load_file(run / written), load_file(out)
        assert got.keys() == again.keys()
        assert all(torch.equal(got[k], again[k]) for k in got)
        assert all(v.dtype == torch.float16 for v in got.values() if v.is_floating_point())


def test_train_export_kohya_of_a_full_run_is_refused_by_check(tiny_dir, tmp_path, capsys):
    config = write_config(tmp_path, train={"method": "full"})
    text = config.read_text()
    assert "  export: []" in text
    config.write_text(text.replace("  export: []", "  export: [kohya]"))
    code = cli.main(["check", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.export: kohya is a LoRA format and method is full" in err, err


def test_an_existing_folder_as_output_receives_the_file_under_its_default_name(
    unet_run, tmp_path, capsys
):
    """`--output DIR` for a file format wrote DIR.safetensors beside the folder; the file goes
    into it, named as in RUN_DIR/exports/."""
    folder = tmp_path / "loras"
    folder.mkdir()
    code, out, err = export(capsys, str(unet_run), "--format", "kohya", "--output", str(folder))
    assert code == 0, err
    expected = folder / f"{unet_run.name}-kohya-fp16.safetensors"
    assert out.strip().splitlines()[-1] == f"wrote {expected}"
    assert expected.is_file() and not (tmp_path / "loras.safetensors").exists()
