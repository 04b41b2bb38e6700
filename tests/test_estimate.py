"""engine.estimate: peak GPU memory and time before training, checked against the H200 peaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import estimate as est
from engine import fit
from engine.config import load_config
from tests.enginehelpers import DEMO, write_config

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
#: The SD1.5 architecture's parameters (benchmarks/RESULTS.md: sd15_arch.py's model).
SD15 = {
    "unet": est.Counts(est.SD15_UNET_PARAMS, {"attention": (est.SD15_LORA_R4_PARAMS // 4, 0)}),
    "text_encoder": est.Counts(123_060_480),
    "vae": est.Counts(83_653_863),
}
#: How close the hold-out predictions must be to the measured peaks.
TOLERANCE = 0.05


def measured(name: str) -> dict:
    return json.loads((RESULTS / f"h200-{name}.json").read_text())


def bench_cfg(name: str, **train):
    """The config bench_train.py ran for results/h200-NAME.json (same keys), with overrides."""
    c = measured(name)["config"]
    keys = {
        "method": c["method"],
        "lora_rank": c["lora_rank"],
        "resolution": c["resolution"],
        "train_batch_size": c["batch_size"],
        "mixed_precision": c["mixed_precision"],
        "optimizer": c["optimizer"],
        "gradient_checkpointing": c["gradient_checkpointing"],
        "cache_latents": True,
        "prior_preservation": False,
    }
    return load_config(DEMO, {"train": {**keys, **train}})


def test_calibration_constants_are_the_measured_figures():
    lora = measured("lora_r4")
    assert est.CALIBRATION_PEAK == lora["engine"]["peak_mem"]
    assert lora["config"]["resolution"] ** 2 == est.CALIBRATION_PIXELS
    for key, name in (("full", "full_adamw"), ("full_ckpt", "full_adamw8bit_ckpt"), ("lora", "lora_r4")):  # fmt: skip
        assert est.H200_STEP_S[key] == pytest.approx(measured(name)["engine"]["step_ms"] / 1000)


def test_calibration_point_is_reproduced():
    e = est.estimate(bench_cfg("lora_r4"), SD15)
    assert e.peak == pytest.approx(est.CALIBRATION_PEAK, rel=1e-6)


@pytest.mark.parametrize("name", ["full_adamw", "full_adamw8bit_ckpt"])
def test_held_out_h200_peaks_are_predicted_within_tolerance(name):
    """Calibrated on the LoRA run alone; these two peaks were not used."""
    peak = measured(name)["engine"]["peak_mem"]
    predicted = est.estimate(bench_cfg(name), SD15).peak
    assert abs(predicted - peak) / peak < TOLERANCE, (predicted / 2**30, peak / 2**30)


@pytest.mark.parametrize(
    "targets,dora", [("attention", False), ("attention+ff", False), ("all", True)]
)
def test_header_counts_equal_the_loaded_models_and_the_adapters_the_engine_adds(
    tiny_dir, targets, dora
):
    """Counts read from the safetensors headers match the loaded modules' parameters, and the
    LoRA counts match what engine.families.lora adds (UNet and text encoder)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    from engine.families.lora import LoraSpec, add_lora_adapters

    model = tiny_dir / "model"
    counts = est.read_counts(model)
    unet = UNet2DConditionModel.from_pretrained(model / "unet")
    te = CLIPTextModel.from_pretrained(model / "text_encoder")
    assert counts["unet"].params == sum(p.numel() for p in unet.parameters())
    assert counts["text_encoder"].params == sum(p.numel() for p in te.parameters())
    unet.requires_grad_(False)
    te.requires_grad_(False)
    add_lora_adapters(unet, LoraSpec(3, 3, use_dora=dora, targets=targets), [te])
    for module, name in ((unet, "unet"), (te, "text_encoder")):
        adapters = sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert adapters == counts[name].lora_params(targets, 3, dora) > 0


def test_parts_add_up_to_the_peak():
    e = est.estimate(bench_cfg("full_adamw"), SD15)
    assert e.peak == e.weights + e.optimizer + max(e.gradients, e.activations)


def test_parts_change_as_they_should():
    full = est.estimate(bench_cfg("full_adamw"), SD15)
    lora = est.estimate(bench_cfg("lora_r4"), SD15)
    eight = est.estimate(bench_cfg("full_adamw", optimizer="adamw8bit"), SD15)
    prodigy = est.estimate(bench_cfg("full_adamw", optimizer="prodigy"), SD15)
    assert lora.peak < full.peak / 3
    assert eight.optimizer == full.optimizer // 4 and eight.peak < full.peak
    assert prodigy.optimizer == 2 * full.optimizer
    big = est.estimate(bench_cfg("lora_r4", resolution=768, train_batch_size=2), SD15)
    assert big.activations == pytest.approx(lora.activations * 2 * (768 / 512) ** 2, rel=1e-6)
    assert big.peak > lora.peak and big.step_basis != "measured"
    fp32 = est.estimate(bench_cfg("full_adamw", mixed_precision="no"), SD15)
    assert fp32.activations < full.activations  # no autocast copies of the weights
    uncached = est.estimate(bench_cfg("lora_r4", cache_latents=False), SD15)
    assert uncached.weights == lora.weights + (123_060_480 + 83_653_863) * 2


def test_check_prints_the_estimate_and_warns_when_it_does_not_fit(
    tiny_dir, tmp_path, monkeypatch, capsys
):
    from engine import cli

    cfg = write_config(tmp_path, train={"instance_data": str(tiny_dir / "images")})
    monkeypatch.setattr(fit, "this_gpu", lambda: fit.Gpu("NVIDIA H200", 1024))
    assert cli.main(["check", str(cfg)]) == 0
    out, err = capsys.readouterr()
    line = next(x for x in out.splitlines() if x.startswith("estimate: ~"))
    assert "MiB peak of 0.0 GiB (NVIDIA H200) · does not fit: try gradient_checkpointing" in line
    memory = next(x for x in out.splitlines() if x.startswith("  memory: weights"))
    assert "optimizer" in memory and "activations" in memory
    assert "s/step" in out and " steps" in line
    assert "warning: this run needs ~" in err and "NVIDIA H200's 0.0 GiB" in err

    monkeypatch.setattr(fit, "this_gpu", lambda: fit.Gpu("NVIDIA H200", 200 * 2**30))
    assert cli.main(["check", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert "(NVIDIA H200) · fits ·" in out and "warning: this run needs" not in err

    monkeypatch.setattr(fit, "this_gpu", lambda: None)
    assert cli.main(["check", str(cfg)]) == 0
    out, _ = capsys.readouterr()
    assert "no GPU here: fit not checked" in out and "steps on an H200" in out

    monkeypatch.setattr(fit, "this_gpu", lambda: fit.Gpu("NVIDIA A100", 80 * 2**30))
    assert cli.main(["check", str(cfg)]) == 0
    out, _ = capsys.readouterr()
    assert "no measurement exists for a NVIDIA A100" in out and "s/step" not in out
    assert "time: measured on an H200 only" in out


def test_time_is_measured_only_for_the_measured_setups():
    for name in ("full_adamw", "full_adamw8bit_ckpt", "lora_r4"):
        e = est.estimate(bench_cfg(name), SD15)
        assert e.step_basis == "measured"
        assert e.seconds_per_step == pytest.approx(measured(name)["engine"]["step_ms"] / 1000)
    for name, change in (
        ("lora_r4", {"lora_rank": 16}),
        ("full_adamw", {"optimizer": "prodigy"}),
        ("full_adamw", {"mixed_precision": "no"}),
        ("full_adamw8bit_ckpt", {"optimizer": "adamw"}),
    ):
        assert est.estimate(bench_cfg(name, **change), SD15).step_basis != "measured"


def test_small_models_are_shown_in_mib_not_as_zero_gib():
    tiny = {"unet": est.Counts(2_000_000), "vae": est.Counts(100_000)}
    e = est.estimate(bench_cfg("full_adamw"), tiny)
    unit, values = fit._sizes(e)
    assert unit == "MiB" and values[0] == f"{e.peak / 2**20:.0f}" != "0"
