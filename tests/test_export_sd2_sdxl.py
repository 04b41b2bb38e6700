"""`export --format single-file` and `--fuse` for SD 2.x and SDXL (issue 12): the original layout
of each (SD 2.x's OpenCLIP text encoder under `cond_stage_model.model.*`; SDXL's two encoders under
`conditioner.embedders.{0,1}.*` and its added conditioning under `label_emb`), read back by
diffusers' `from_single_file` and compared image for image with the run's own model.

The SD 2.x model is the tiny model in SD 2.x's architecture (engine.tiny.build_sd2). The SDXL one
is the tiny SDXL with a second encoder wider than the first (48, not 32), as SDXL's are (768 and
1280): diffusers' from_single_file tells the two encoders apart by their width, and the tiny
SDXL's equal widths make it read the first encoder's weights into the second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from engine.generate import load_pipeline
from tests.enginehelpers import of_type, train_in_process
from tests.test_export import FUSE_TOLERANCE, LORA, SHORT, export, images

SD2_KEYS = (
    "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
    "cond_stage_model.model.positional_embedding",
    "cond_stage_model.model.ln_final.weight",
)
SDXL_KEYS = (
    "conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight",
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
    "conditioner.embedders.1.model.text_projection",
    "model.diffusion_model.label_emb.0.0.weight",  # the added (text_time) conditioning
)
# the run's own end-of-run sample: one image, one step (these tests make their own images)
EVALUATION = {"num_images": 1, "num_inference_steps": 1}
PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.", "conditioner.")


def _train(root: Path, **train) -> Path:
    code, run_dir, events = train_in_process(root, train=train, evaluation=EVALUATION)
    assert code == 0, of_type(events, "error")
    return run_dir


@pytest.fixture(scope="module")
def sd2_model(tiny_dir, tmp_path_factory) -> Path:
    from engine.tiny import build_sd2

    return build_sd2(tmp_path_factory.mktemp("sd2") / "model")


@pytest.fixture(scope="module")
def sdxl_model(tiny_sdxl_dir, tmp_path_factory) -> Path:
    from engine.tiny_sdxl import build_pipeline, tiny_configs

    def wider_second_encoder(tokenizer) -> dict:
        cfg = tiny_configs(tokenizer)
        width = cfg["text_encoder"]["hidden_size"] + 48
        cfg["text_encoder_2"] = {**cfg["text_encoder_2"], "hidden_size": 48}
        cfg["unet"] = {**cfg["unet"], "cross_attention_dim": width}
        return cfg

    folder = tmp_path_factory.mktemp("sdxl") / "model"
    build_pipeline(folder, wider_second_encoder)
    return folder


@pytest.fixture(scope="module")
def sd2_full(sd2_model, tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("sd2-full"), **SHORT, model=str(sd2_model))


@pytest.fixture(scope="module")
def sdxl_full(sdxl_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sdxl-full")
    return _train(root, **SHORT, model=str(sdxl_model), train_text_encoder=True)


@pytest.fixture(scope="module")
def sd2_lora(sd2_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sd2-lora")
    return _train(root, **LORA, model=str(sd2_model), train_text_encoder=True)


@pytest.fixture(scope="module")
def sdxl_lora(sdxl_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sdxl-lora")
    return _train(root, **LORA, model=str(sdxl_model), train_text_encoder=True)


def pipeline_class(family: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline


def single_file(family: str, path: Path, config: Path):
    """diffusers' reader of the original layout; the tiny models' sizes are not detectable, so
    their config comes from a diffusers folder of the same architecture (config=)."""
    extras = {} if family == "sdxl" else {"safety_checker": None}
    return pipeline_class(family).from_single_file(
        str(path), config=str(config), local_files_only=True, **extras
    )


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_single_file_export_gives_final_images_through_from_single_file(
    family, request, tmp_path, capsys
):
    run = request.getfixturevalue(f"{family}_full")
    out = tmp_path / "model.safetensors"
    argv = [str(run), "--format", "single-file", "--dtype", "fp32", "--output", str(out)]
    code, _, err = export(capsys, *argv)
    assert code == 0, err
    keys = load_file(out).keys()
    assert all(k.startswith(PREFIXES) for k in keys)
    assert all(k in keys for k in (SD2_KEYS if family == "sd2" else SDXL_KEYS))
    if family == "sd2":  # OpenCLIP names only: no OpenAI-CLIP or q/k/v-split names left
        assert not any(k.startswith("cond_stage_model.transformer.") for k in keys)
    assert not any("q_proj" in k for k in keys if ".model." in k)
    loaded = single_file(family, out, run / "final")
    own = pipeline_class(family).from_pretrained(run / "final")
    assert np.array_equal(images(loaded), images(own))  # pixel equality


# SD 2.x's fused diffusers folder is SD 1.x's code path (tests/test_export.py): not again here
@pytest.mark.parametrize(
    ("family", "fmt"), [("sd2", "single-file"), ("sdxl", "single-file"), ("sdxl", "diffusers")]
)
def test_fused_lora_gives_base_plus_lora_images(family, fmt, request, tmp_path, capsys):
    run = request.getfixturevalue(f"{family}_lora")
    base = request.getfixturevalue(f"{family}_model")
    out = tmp_path / ("fused" if fmt == "diffusers" else "fused.safetensors")
    argv = [str(run), "--format", fmt, "--fuse", "--dtype", "fp32", "--output", str(out)]
    code, _, err = export(capsys, *argv)
    assert code == 0, err
    if fmt == "diffusers":
        fused = pipeline_class(family).from_pretrained(out)
    else:
        fused = single_file(family, out, base)
    assert not any("lora" in n for n, _ in fused.unet.named_modules())
    with_lora = images(load_pipeline(run_dir=run, device="cpu", dtype="fp32"))
    plain = images(pipeline_class(family).from_pretrained(base))
    got = images(fused)
    assert np.abs(with_lora - plain).max() > 1e-3  # the LoRA changes the images
    assert np.abs(got - with_lora).max() <= FUSE_TOLERANCE


def test_sd2_lora_as_kohya_gives_the_runs_images_and_says_v2(sd2_lora, sd2_model, tmp_path, capsys):
    """SD 2.x's LoRA (UNet and OpenCLIP text encoder) in the kohya layout: `lora_te_` as for
    SD 1.x, `ss_v2` in the metadata (A1111/Forge list it for SD 2.x checkpoints by that), and
    load_lora_weights on it gives the run's own images."""
    out = tmp_path / "x.safetensors"
    argv = [str(sd2_lora), "--format", "kohya", "--dtype", "fp32", "--output", str(out)]
    code, _, err = export(capsys, *argv)
    assert code == 0, err
    modules = {k.split(".")[0] for k in load_file(out)}
    assert any(m.startswith("lora_te_text_model_") for m in modules)
    assert any(m.startswith("lora_unet_down_blocks_") for m in modules)  # diffusers' names
    with safe_open(str(out), framework="pt") as fh:
        assert fh.metadata()["ss_v2"] == "True"
    own = images(load_pipeline(run_dir=sd2_lora, device="cpu", dtype="fp32"))
    pipe = pipeline_class("sd2").from_pretrained(sd2_model)
    plain = images(pipe)
    pipe.load_lora_weights(str(tmp_path), weight_name=out.name)
    assert np.abs(own - plain).max() > 1e-3  # the LoRA changes the images
    assert np.array_equal(images(pipe), own)  # pixel equality


def test_sdxl_lora_of_a_local_base_exports_as_kohya(sdxl_lora, tmp_path, capsys):
    """A local-folder SDXL base (its UNet config read from there); the images of the kohya
    round trip: tests/test_sdxl_kohya_export.py. The export reads the file back through diffusers'
    kohya reader before writing it."""
    out = tmp_path / "x.safetensors"
    code, _, err = export(capsys, str(sdxl_lora), "--format", "kohya", "--output", str(out))
    assert code == 0, err
    modules = {k.split(".")[0] for k in load_file(out)}
    for prefix in ("lora_unet_input_blocks_", "lora_te1_text_model_", "lora_te2_text_model_"):
        assert any(m.startswith(prefix) for m in modules), prefix


def test_sd2_text_encoder_is_verified_through_open_clip_converter(sd2_model):
    """A q/k/v order swapped inside the fused in_proj is caught before anything is written."""
    from engine.export.single_file import LayoutError, to_original, verify

    pipe = pipeline_class("sd2").from_pretrained(sd2_model)
    original = to_original(pipe, torch.float32)
    verify(original, pipe)
    key = SD2_KEYS[0]
    q, k, v = original[key].chunk(3)
    original[key] = torch.cat([k, q, v])
    with pytest.raises(LayoutError, match="text encoder"):
        verify(original, pipe)


def _full_size(family: str):
    """SD 2.x's or SDXL's full-size modules on the meta device (no memory, no weights)."""
    from types import SimpleNamespace

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from benchmarks import sd15_arch, sdxl_arch

    ids = SimpleNamespace(bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    with torch.device("meta"):
        if family == "sdxl":
            cfg = sdxl_arch.configs(ids)
            return SimpleNamespace(
                unet=UNet2DConditionModel(**cfg["unet"]),
                vae=AutoencoderKL(**cfg["vae"]),
                text_encoder=CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"])),
                text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"])),
            )
        # stable-diffusion-2-1: OpenCLIP ViT-H's first 23 layers, 1024-wide cross-attention
        unet = {**sd15_arch.unet_config(), "cross_attention_dim": 1024}
        unet.update(attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
        text = {**sd15_arch.text_config(ids), "hidden_act": "gelu", "hidden_size": 1024}
        text.update(intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16)
        return SimpleNamespace(
            unet=UNet2DConditionModel(**unet),
            vae=AutoencoderKL(**sd15_arch.vae_config()),
            text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
            text_encoder_2=None,
        )


@pytest.mark.parametrize(("family", "model_type"), [("sd2", "v2"), ("sdxl", "xl_base")])
def test_names_fit_the_full_size_architecture_and_diffusers_detects_it(family, model_type):
    """On the full-size architectures (SD 2.x's 4 levels and 23-layer OpenCLIP-H; SDXL's 10-deep
    transformers and 32-layer bigG): diffusers' forward converters put every original name back
    on its diffusers weight with its shape, and diffusers infers the model type from the names
    alone (what from_single_file does without config=, as for a real SD 2.x or SDXL export)."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        infer_diffusers_model_type,
    )

    from engine.export.original_clip import clip_state, converted_back
    from engine.export.single_file import original_tensors

    pipe = _full_size(family)
    original = original_tensors(pipe)
    assert infer_diffusers_model_type(original) == model_type
    back = {
        "unet": (convert_ldm_unet_checkpoint(original, pipe.unet.config), pipe.unet.state_dict()),
        "vae": (convert_ldm_vae_checkpoint(original, pipe.vae.config), pipe.vae.state_dict()),
    }
    for name, (converted, module) in converted_back(original, pipe).items():
        back[name] = (converted, clip_state(module))
    assert len(back) == (4 if family == "sdxl" else 3)
    for name, (converted, expected) in back.items():
        assert converted.keys() == expected.keys(), name
        assert all(converted[k].shape == v.shape for k, v in expected.items()), name
    if family == "sdxl":  # SDXL's depth: transformer 9 of output block 2, bigG's layer 31
        assert "model.diffusion_model.output_blocks.2.1.transformer_blocks.9.attn2.to_k.weight" in (
            original
        )
        assert "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight" in (
            original
        )
