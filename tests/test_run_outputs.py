"""What a run leaves is what was trained and watched (issue 9, item 2).

The last validation sample of a run is the image `generate` makes with the same prompt, seed,
steps and sampler: from final/, from a checkpoint, and through `--lora` on the base model, for a
full fine-tune and for a LoRA whose alpha is not its rank. The comparisons are of pixel arrays
and exact: both paths render through engine.render (one image per forward pass, CPU generators)
with the same fp32 weights on the CPU, so there is no float noise to allow for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from engine import cli
from engine.events import read_events
from tests.enginehelpers import of_type, prepare

PROMPT = "a photo of sks shape"


def train_run(tmp: Path, train: dict, evaluation: dict):
    """A real run in this process, keeping the Trainer (its trained modules) for comparison."""
    from engine.train import Trainer

    run_dir = prepare(tmp, train=train, evaluation=evaluation)
    trainer = Trainer(run_dir, None, ["test"])
    code = trainer.run()
    events = read_events(run_dir / "events.jsonl")
    assert code == 0, of_type(events, "error")
    return trainer, run_dir, events


COMMON_TRAIN = {"max_train_steps": 4, "validation_steps": 2, "checkpointing_steps": 2}


@pytest.fixture(scope="module")
def full_run(tiny_dir, tmp_path_factory):
    return train_run(
        tmp_path_factory.mktemp("full"),
        {**COMMON_TRAIN, "learning_rate": 1e-3, "train_text_encoder": True},
        {"num_images": 2, "num_inference_steps": 3, "seed": 7, "scheduler": "euler_a"},
    )


@pytest.fixture(scope="module")
def lora_run(tiny_dir, tmp_path_factory):
    return train_run(
        tmp_path_factory.mktemp("lora"),
        {
            **COMMON_TRAIN,
            "method": "lora",
            "lora_rank": 4,
            "lora_alpha": 16,
            "train_text_encoder": True,
            "learning_rate": 1e-2,
        },
        {"num_images": 2, "num_inference_steps": 3, "seed": 3, "scheduler": "dpmpp_2m"},
    )


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def samples_of(run_dir: Path, events: list[dict], step: int) -> list[Path]:
    (event,) = [e for e in of_type(events, "sample") if e["step"] == step]
    assert event["prompt"] == PROMPT
    return [run_dir / p for p in event["paths"]]


def generated(out: Path, run_dir: Path, *source: str) -> list[Path]:
    """`generate` as a user types it, with the run's evaluation prompt, seed, steps, sampler."""
    cfg = json.loads(json.dumps(read_events(run_dir / "events.jsonl")[0]["config"]))
    ev = cfg["evaluation"]
    argv = ["generate", *source, "--prompt", PROMPT, "--seed", str(ev["seed"])]
    argv += ["--num-images", str(ev["num_images"]), "--scheduler", ev["scheduler"]]
    argv += ["--num-inference-steps", str(ev["num_inference_steps"]), "--output-dir", str(out)]
    assert cli.main(argv) == 0
    return sorted(p for p in out.glob("*.png") if p.name != "grid.png")


def assert_same_images(made: list[Path], watched: list[Path]) -> None:
    assert len(made) == len(watched) == 2
    for a, b in zip(made, watched, strict=True):
        assert np.array_equal(pixels(a), pixels(b)), (a, b)
    assert not np.array_equal(pixels(watched[0]), pixels(watched[1]))  # seeds 0 and 1 differ


def test_full_fine_tune_samples_equal_generate_from_final_and_checkpoint(full_run, tmp_path):
    _, run_dir, events = full_run
    assert max(e["step"] for e in of_type(events, "sample")) == 4
    last = samples_of(run_dir, events, 4)
    assert_same_images(generated(tmp_path / "final", run_dir, "--run", str(run_dir)), last)
    at_2 = samples_of(run_dir, events, 2)
    from_ckpt = generated(tmp_path / "ckpt", run_dir, "--run", str(run_dir), "--checkpoint", "2")
    assert_same_images(from_ckpt, at_2)
    assert not np.array_equal(pixels(at_2[0]), pixels(last[0]))  # training went on


def test_lora_alpha_not_rank_samples_equal_generate_final_checkpoint_and_lora_flag(
    lora_run, tmp_path
):
    _, run_dir, events = lora_run
    last = samples_of(run_dir, events, 4)
    assert_same_images(generated(tmp_path / "final", run_dir, "--run", str(run_dir)), last)
    lora = run_dir / "final" / "pytorch_lora_weights.safetensors"
    flag = generated(tmp_path / "flag", run_dir, "--model", "builtin:tiny", "--lora", str(lora))
    assert_same_images(flag, last)
    at_2 = samples_of(run_dir, events, 2)
    from_ckpt = generated(tmp_path / "ckpt", run_dir, "--run", str(run_dir), "--checkpoint", "2")
    assert_same_images(from_ckpt, at_2)


def _lora_params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """LoRA A/B weights by layer, whatever the adapter is called (default, default_0...)."""
    out = {}
    for name, p in module.named_parameters():
        if ".lora_A." in name or ".lora_B." in name:
            layer, kind, _adapter, rest = name.rsplit(".", 3)
            out[f"{layer}.{kind}.{rest}"] = p.detach().cpu()
    return out


def _scalings(module: torch.nn.Module) -> set[float]:
    from peft.tuners.lora import LoraLayer

    return {s for m in module.modules() if isinstance(m, LoraLayer) for s in m.scaling.values()}


def test_lora_file_reloads_the_trained_weights_and_alpha(lora_run, tiny_dir):
    trainer, run_dir, events = lora_run
    lora = run_dir / "final" / "pytorch_lora_weights.safetensors"
    assert events[-1]["outputs"]["lora"] == "final/pytorch_lora_weights.safetensors"
    unet_bytes = (tiny_dir / "model" / "unet" / "diffusion_pytorch_model.safetensors").stat()
    assert lora.stat().st_size < unet_bytes.st_size / 5
    with safe_open(str(lora), "pt") as f:
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
    assert meta["unet.lora_alpha"] == 16 and meta["unet.r"] == 4
    assert meta["text_encoder.lora_alpha"] == 16 and meta["text_encoder.r"] == 4

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_dir / "model")
    pipe.load_lora_weights(run_dir / "final")
    trained_unet = trainer.accelerator.unwrap_model(trainer.unet)
    trained_te = trainer.accelerator.unwrap_model(trainer.text_encoder)
    for loaded, trained in ((pipe.unet, trained_unet), (pipe.text_encoder, trained_te)):
        got, want = _lora_params(loaded), _lora_params(trained)
        assert got.keys() == want.keys() and len(want) > 0
        for key in want:
            assert torch.equal(got[key], want[key]), key
        assert _scalings(loaded) == _scalings(trained) == {16 / 4}
    # trained, not the initial adapters: lora_B starts at zero and moved
    assert any(v.abs().max() > 0 for k, v in _lora_params(trained_unet).items() if "lora_B" in k)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    (file,) = folder.glob("*.safetensors")
    return load_file(str(file))


def _assert_trained_not_base(saved: dict, trained: torch.nn.Module, base: dict) -> None:
    state = {k: v.detach().cpu() for k, v in trained.state_dict().items()}
    assert saved.keys() == base.keys()
    for key, value in saved.items():
        assert torch.equal(value, state[key]), key
    changed = [k for k in saved if not torch.equal(saved[k], base[k])]
    assert len(changed) > len(saved) // 2, f"only {len(changed)} of {len(saved)} weights moved"


def test_final_model_holds_the_trained_unet_not_the_base(full_run, tiny_dir):
    trainer, run_dir, _ = full_run
    _assert_trained_not_base(
        _weights(run_dir / "final" / "unet"),
        trainer.accelerator.unwrap_model(trainer.unet),
        _weights(tiny_dir / "model" / "unet"),
    )


def test_text_encoder_training_changes_the_encoder_and_saves_it(full_run, tiny_dir):
    trainer, run_dir, _ = full_run
    base = _weights(tiny_dir / "model" / "text_encoder")
    trained = trainer.accelerator.unwrap_model(trainer.text_encoder)
    _assert_trained_not_base(_weights(run_dir / "final" / "text_encoder"), trained, base)
    ckpt = load_file(str(run_dir / "checkpoints" / "step-000002" / "text_encoder.safetensors"))
    assert sum(not torch.equal(v, base[k]) for k, v in ckpt.items()) > len(ckpt) // 2


@pytest.mark.parametrize("name", ["full_run", "lora_run"])
def test_final_is_written_before_the_last_samples(name, request):
    """Issue 9, item 4: the finished model first; the last samples cannot lose it."""
    _, run_dir, events = request.getfixturevalue(name)
    kinds = [(e["type"], e.get("name"), e.get("step")) for e in events]
    saving = kinds.index(("phase", "saving", None))
    last_samples = [i for i, k in enumerate(kinds) if k[0] == "sample" and k[2] == 4]
    assert last_samples and saving < min(last_samples)
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert (run_dir / "final").is_dir()
