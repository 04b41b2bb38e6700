"""SDXL with `train_text_encoder: true` (issue 11): both text encoders (text_encoder and
text_encoder_2) trained, by LoRA and by full fine-tune, on the tiny SDXL on the CPU. The LoRA
file carries both encoders' adapters (and their metadata) for `load_lora_weights`; final/ of a
full run holds both trained encoders; each remakes the last validation sample exactly, as does
`generate --run`; checkpoints hold both encoders and a resume repeats the uninterrupted run's
losses and final weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from engine.families import SDXL
from tests.enginehelpers import losses, of_type, resume_from, train_in_process
from tests.test_run_outputs import generated, pixels
from tests.test_sdxl_train import EVALUATION, TRAIN, _assert_same, _remade

ENCODERS = ("text_encoder", "text_encoder_2")
STEPS = {"max_train_steps": 4, "validation_steps": 4, "checkpointing_steps": 2}


def _run(tmp: Path, **train):
    code, run_dir, events = train_in_process(
        tmp, train={**TRAIN, **STEPS, "train_text_encoder": True, **train}, evaluation=EVALUATION
    )
    assert code == 0, of_type(events, "error")
    assert events[-1]["status"] == "completed"
    return run_dir, events


@pytest.fixture(scope="module")
def lora_te_run(tiny_sdxl_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdxl-lora-te")
    return _run(tmp, method="lora", lora_rank=4, lora_alpha=8, gradient_checkpointing=True)


@pytest.fixture(scope="module")
def full_te_run(tiny_sdxl_dir, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("sdxl-full-te"), method="full", cache_latents=False)


def _base_pipe(tiny_sdxl_dir: Path):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(
        tiny_sdxl_dir / "model", **SDXL.pipeline_extras
    )


def _encoded(pipe) -> dict[str, torch.Tensor]:
    """Each encoder's conditioning for one prompt (penultimate states; the second's pooled)."""
    parts = pipe.tokenizer, pipe.tokenizer_2
    out = {}
    with torch.no_grad():
        for name, tokenizer in zip(ENCODERS, parts, strict=True):
            ids = tokenizer(
                ["a photo of sks shape"],
                padding="max_length",
                max_length=tokenizer.model_max_length,
                return_tensors="pt",
            ).input_ids
            result = getattr(pipe, name)(ids, output_hidden_states=True)
            out[name] = result.hidden_states[-2]
            if name == "text_encoder_2":
                out["pooled"] = result[0]
    return out


def _assert_changed(trained: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> None:
    for key in trained:
        assert not torch.allclose(trained[key], base[key], atol=1e-6), f"{key} did not change"


def test_sdxl_lora_of_both_encoders_loads_in_diffusers_and_remakes_the_last_sample(
    lora_te_run, tiny_sdxl_dir
):
    run_dir, events = lora_te_run
    lora = run_dir / "final" / "pytorch_lora_weights.safetensors"
    with safe_open(str(lora), "pt") as fh:
        keys = list(fh.keys())
        meta = json.loads(fh.metadata()["lora_adapter_metadata"])
    for name in ENCODERS:
        ups = [k for k in keys if k.startswith(f"{name}.") and ("lora_B" in k or ".up." in k)]
        assert ups, f"no {name} adapters in {sorted(keys)[:4]}"
        assert meta[f"{name}.r"] == 4 and meta[f"{name}.lora_alpha"] == 8
    assert meta["unet.r"] == 4
    pipe = _base_pipe(tiny_sdxl_dir)
    base = _encoded(pipe)
    pipe.load_lora_weights(run_dir / "final", weight_name=lora.name)
    # the adapters of both encoders trained (lora_B starts at zero) and applied on loading
    _assert_changed(_encoded(pipe), base)
    _assert_same(_remade(pipe, run_dir), _last_samples_at(run_dir, events))


def _last_samples_at(run_dir: Path, events: list[dict]) -> list[np.ndarray]:
    """The validation images of the last step (the run's end: step 4)."""
    (event,) = [e for e in of_type(events, "sample") if e["step"] == STEPS["max_train_steps"]]
    return [np.asarray(Image.open(run_dir / p).convert("RGB")) for p in event["paths"]]


def test_sdxl_lora_of_both_encoders_generate_run_equals_the_last_sample(lora_te_run, tmp_path):
    run_dir, events = lora_te_run
    made = generated(tmp_path / "gen", run_dir, "--run", str(run_dir))
    _assert_same([pixels(p) for p in made], _last_samples_at(run_dir, events))


def test_sdxl_full_with_both_encoders_final_loads_and_remakes_the_last_sample(
    full_te_run, tiny_sdxl_dir, tmp_path
):
    from diffusers import StableDiffusionXLPipeline

    run_dir, events = full_te_run
    pipe = StableDiffusionXLPipeline.from_pretrained(run_dir / "final", **SDXL.pipeline_extras)
    base_pipe = _base_pipe(tiny_sdxl_dir)
    _assert_changed(_encoded(pipe), _encoded(base_pipe))
    for name in ENCODERS:
        trained = load_file(run_dir / "final" / name / "model.safetensors")
        base = load_file(tiny_sdxl_dir / "model" / name / "model.safetensors")
        assert trained.keys() == base.keys()
        moved = {k for k in trained if not torch.equal(trained[k], base[k])}
        # SDXL reads the first encoder's penultimate layer: its last layer and final norm get
        # no gradient and stay; every other weight of both encoders moved
        last = f"encoder.layers.{getattr(pipe, name).config.num_hidden_layers - 1}."
        unread = {k for k in trained if name == "text_encoder" and k.startswith((last, "final"))}
        assert moved == trained.keys() - unread, f"{name}: {sorted(trained.keys() - moved)}"
    _assert_same(_remade(pipe, run_dir), _last_samples_at(run_dir, events))
    made = generated(tmp_path / "gen", run_dir, "--run", str(run_dir))
    _assert_same([pixels(p) for p in made], _last_samples_at(run_dir, events))


@pytest.mark.parametrize("name", ["lora_te_run", "full_te_run"])
def test_sdxl_checkpoints_hold_both_encoders_and_a_resume_repeats_the_run(name, request, tmp_path):
    """Resumed from step 2 (a copy of the run): steps 3 and 4 repeat the uninterrupted losses
    (step 4 needs both encoders' optimizer state) and final/ is the same, bit for bit."""
    source, events = request.getfixturevalue(name)
    ckpt = source / "checkpoints" / "step-000002"
    for encoder in ENCODERS:
        assert (ckpt / f"{encoder}.safetensors").is_file(), sorted(p.name for p in ckpt.iterdir())
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3, 4]
    for step, value in resumed.items():
        assert value == straight[step], step
    for file in sorted((source / "final").rglob("*.safetensors")):
        want, got = load_file(file), load_file(run_dir / file.relative_to(source))
        assert want.keys() == got.keys()
        for key in want:
            assert torch.equal(want[key], got[key]), (file.name, key)
