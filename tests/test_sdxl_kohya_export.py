"""`export --format kohya` of SDXL LoRA runs (issue 12): the UNet under SDXL's original (sgm)
names, as kohya's sd-scripts writes them and A1111/Forge and ComfyUI match them; the text encoders
as `lora_te1_` (CLIP-L) and `lora_te2_` (OpenCLIP bigG); the trained alpha per module. diffusers'
StableDiffusionXLPipeline.load_lora_weights (its kohya reader) reads the file and makes the run's
own images, pixel for pixel, with and without trained text encoders (the run without them:
test_sdxl_train's). The names fit the full-size SDXL UNet for every target set; a DoRA is refused
in one line; `train.export: [kohya]` writes the same file at the end of an SDXL run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine import cli
from engine.events import read_events
from engine.export.kohya import as_peft, to_kohya, verify
from engine.families import SDXL
from engine.families.lora import TARGETS
from engine.generate import load_pipeline
from tests.enginehelpers import of_type, train_in_process
from tests.test_export import images

# One step is enough: lora_B leaves zero, and every module's share changes the images.
ONE_STEP = {
    "model": "builtin:tiny-sdxl",
    "max_train_steps": 1,
    "validation_steps": 100,
    "checkpointing_steps": 100,
    "learning_rate": 1e-3,
    "method": "lora",
    "lora_rank": 4,
    "lora_alpha": 8,  # != rank: an export that loses the alpha changes the images
}


@pytest.fixture(scope="module")
def all_te_run(tiny_sdxl_dir, tmp_path_factory) -> Path:
    """Every target (attention, feed-forward, convolutions) and both text encoders trained."""
    train = {**ONE_STEP, "lora_targets": "all", "train_text_encoder": True, "export": ["kohya"]}
    root = tmp_path_factory.mktemp("sdxl-kohya")
    # the run's own end-of-run sample: one image, one step (these tests make their own images)
    evaluation = {"num_images": 1, "num_inference_steps": 1}
    code, run_dir, events = train_in_process(root, train=train, evaluation=evaluation)
    assert code == 0, of_type(events, "error")
    return run_dir


def export_kohya_round_trip(run_dir: Path, tiny_sdxl_dir: Path, out: Path, capsys) -> dict:
    """`export --format kohya --dtype fp32` of an SDXL LoRA run; diffusers' load_lora_weights on
    the file gives the run's own images exactly. Returns the file's tensors."""
    from diffusers import StableDiffusionXLPipeline

    argv = ["export", str(run_dir), "--format", "kohya", "--dtype", "fp32", "--output", str(out)]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    weights = load_file(out)
    modules = {k.split(".")[0] for k in weights}
    assert all(re.match(r"lora_(unet|te1|te2)_", m) for m in modules), sorted(modules)
    unet = {m for m in modules if m.startswith("lora_unet_")}
    assert unet and all(
        re.match(r"lora_unet_(input_blocks_\d+_\d+|middle_block_\d+|output_blocks_\d+_\d+)_", m)
        for m in unet
    ), sorted(unet)  # SDXL's original block names, not diffusers' down_blocks/up_blocks
    assert all(weights[f"{m}.alpha"].item() == 8 for m in modules)  # the trained alpha, not rank
    assert all(weights[f"{m}.lora_down.weight"].shape[0] == 4 for m in modules)
    with safe_open(str(out), framework="pt") as fh:
        # A1111/Forge list a LoRA for SDXL checkpoints by this (else it counts as SD 1.x)
        assert fh.metadata()["ss_base_model_version"].startswith("sdxl_")

    own = images(load_pipeline(run_dir=run_dir, device="cpu", dtype="fp32"))
    pipe = StableDiffusionXLPipeline.from_pretrained(
        tiny_sdxl_dir / "model", **SDXL.pipeline_extras
    )
    plain = images(pipe)
    pipe.load_lora_weights(str(out.parent), weight_name=out.name)
    for name, prefix in (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_")):
        adapted = any("lora_A" in n for n, _ in getattr(pipe, name).named_modules())
        assert adapted == any(m.startswith(prefix) for m in modules), name
    assert np.abs(own - plain).max() > 1e-3  # the LoRA changes the images: the test can fail
    assert np.array_equal(images(pipe), own)  # pixel equality (float images, before uint8)
    return weights


def test_sdxl_kohya_export_with_both_text_encoders_gives_the_runs_images(
    all_te_run, tiny_sdxl_dir, tmp_path, capsys
):
    weights = export_kohya_round_trip(all_te_run, tiny_sdxl_dir, tmp_path / "x.safetensors", capsys)
    modules = {k.split(".")[0] for k in weights}
    for name in (
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
        "lora_te1_text_model_encoder_layers_1_mlp_fc2",
        "lora_te2_text_model_encoder_layers_0_self_attn_out_proj",
        "lora_te2_text_model_encoder_layers_1_mlp_fc1",
        # every target kind of `all` under its original name
        "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k",
        "lora_unet_middle_block_1_transformer_blocks_0_ff_net_0_proj",
        "lora_unet_output_blocks_0_1_proj_out",
        "lora_unet_input_blocks_1_0_in_layers_2",
        "lora_unet_input_blocks_3_0_skip_connection",
        "lora_unet_middle_block_2_emb_layers_1",
        "lora_unet_input_blocks_2_0_op",
        "lora_unet_output_blocks_1_2_conv",
    ):
        assert name in modules, name


def test_sdxl_train_export_kohya_writes_the_same_file_at_the_end(all_te_run, tmp_path, capsys):
    finished = of_type(read_events(all_te_run / "events.jsonl"), "finished")[-1]
    (written,) = finished["outputs"]["exports"]
    assert written == f"exports/{all_te_run.name}-kohya-fp16.safetensors"
    out = tmp_path / "again.safetensors"
    assert cli.main(["export", str(all_te_run), "--format", "kohya", "--output", str(out)]) == 0
    got, again = load_file(all_te_run / written), load_file(out)
    assert got.keys() == again.keys()
    assert all(torch.equal(got[k], again[k]) for k in got)
    assert all(v.dtype == torch.float16 for v in got.values())


def test_sdxl_kohya_export_refuses_a_dora_in_one_line(all_te_run, tmp_path, capsys):
    run = tmp_path / "dora-run"
    shutil.copytree(all_te_run, run)
    config = run / "config.yaml"
    text = config.read_text()
    assert "use_dora: false" in text
    config.write_text(text.replace("use_dora: false", "use_dora: true"))
    out = tmp_path / "dora.safetensors"
    code = cli.main(["export", str(run), "--format", "kohya", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "DoRA" in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("targets", sorted(TARGETS))
def test_sdxl_kohya_names_fit_the_full_sdxl_architecture(targets):
    """The full-size SDXL UNet (3 levels, 2 resnets each, 10-block transformers), on the meta
    device: every module a target set adapts gets its kohya name, and diffusers' kohya reader
    (the sgm block map, then its converter) gives each one back to its own module."""
    from diffusers import UNet2DConditionModel

    from benchmarks.sdxl_arch import unet_config

    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_config())
    suffixes = TARGETS[targets][0]
    adapted = [
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
        and any(name == s or name.endswith("." + s) for s in suffixes)
    ]
    gen = torch.Generator().manual_seed(0)
    state = {}
    for name in adapted:  # tiny stand-in tensors: the names are under test, not the sizes
        state[f"unet.{name}.lora_A.weight"] = torch.randn(2, 3, generator=gen)
        state[f"unet.{name}.lora_B.weight"] = torch.randn(3, 2, generator=gen)
    kohya = to_kohya(state, {"unet": {"lora_alpha": 8}}, torch.float32, dict(unet.config))
    verify(kohya, as_peft(state), dict(unet.config))
    modules = {k.split(".")[0] for k in kohya}
    assert len(modules) == len(adapted)
    # names as kohya's sd-scripts writes them for SDXL
    assert "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_k" in modules
    assert "lora_unet_output_blocks_0_1_transformer_blocks_9_attn1_to_out_0" in modules
    if targets != "attention":
        assert "lora_unet_middle_block_1_transformer_blocks_9_ff_net_2" in modules
    if targets == "all":
        for name in (
            "lora_unet_input_blocks_3_0_op",
            "lora_unet_input_blocks_4_0_skip_connection",
            "lora_unet_output_blocks_8_0_out_layers_3",
            "lora_unet_output_blocks_2_2_conv",
            "lora_unet_output_blocks_5_2_conv",
            "lora_unet_middle_block_2_emb_layers_1",
        ):
            assert name in modules, name
