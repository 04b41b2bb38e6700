"""engine.fit: the one estimate line `check` and the Config screen show, against this GPU."""

from __future__ import annotations

import os

import pytest

from engine import estimate as est
from engine import fit
from tests.test_estimate import SD15, bench_cfg, measured

H200 = fit.Gpu("NVIDIA H200", 150_106_050_560)  # NVML's total on the H200 of the benchmarks


@pytest.fixture
def sd15(monkeypatch):
    """The SD1.5 architecture's counts, as if its weight files were on this machine."""
    monkeypatch.setattr(fit, "model_counts", lambda model, revision=None: (SD15, ""))


def test_the_line_says_fits_tight_does_not_fit_or_no_gpu(sd15):
    cfg = bench_cfg("full_adamw")
    peak = fit.fit(cfg, None).estimate.peak
    line = fit.fit(cfg, H200)
    assert line.verdict == "fits"
    assert line.line.startswith("estimate: ~12.8 GiB peak of 139.8 GiB (NVIDIA H200) · fits · ~")
    assert line.line.endswith(f" for {cfg.train.max_train_steps} steps")
    tight = fit.fit(cfg, fit.Gpu("NVIDIA H200", int(peak * 1.02)))
    assert tight.verdict == "tight" and "may not fit (within the estimate's 5% error)" in tight.line
    small = fit.fit(cfg, fit.Gpu("NVIDIA L4", 8 * 2**30))
    assert small.verdict == "too big"
    assert "does not fit: try gradient_checkpointing: true / optimizer: adamw8bit / method: lora" in small.line  # fmt: skip
    assert small.line.endswith("· time: measured on an H200 only")
    none = fit.fit(cfg, None)
    assert none.verdict == "unchecked"
    assert "~12.8 GiB peak GPU memory · no GPU here: fit not checked · ~" in none.line
    assert none.line.endswith("steps on an H200")


def test_the_fixes_leave_out_what_the_run_already_uses(sd15):
    cfg = bench_cfg("full_adamw8bit_ckpt")  # 8-bit AdamW and checkpointing already
    line = fit.fit(cfg, fit.Gpu("NVIDIA L4", 4 * 2**30)).line
    assert "does not fit: try method: lora / a smaller train_batch_size or resolution" in line
    lines, warnings = fit.report(cfg, fit.Gpu("NVIDIA L4", 4 * 2**30))
    assert lines[0] == line
    assert warnings == [
        "this run needs ~8.0 GiB of GPU memory, more than the NVIDIA L4's 4.0 GiB: try (train "
        "keys) method: lora / a smaller train_batch_size or resolution"
    ]


def test_the_measured_checkpointing_peak_cannot_check_its_saving():
    """Why checkpointing's saving is not modelled: on the one measured run with it, the
    gradients set the peak, so any saving on the activations predicts the same peak."""
    e = est.estimate(bench_cfg("full_adamw8bit_ckpt"), SD15)
    assert e.gradients > e.activations
    for kept in (0.0, 0.5, 1.0):
        peak = e.weights + e.optimizer + max(e.gradients, int(e.activations * kept))
        assert peak == e.peak
    assert e.peak < measured("full_adamw8bit_ckpt")["engine"]["peak_mem"]  # so not a bound on it


def test_checkpointing_counts_activations_as_without_it_and_says_so(sd15):
    on = bench_cfg("lora_r4", gradient_checkpointing=True)
    with_it, without = est.estimate(on, SD15), est.estimate(bench_cfg("lora_r4"), SD15)
    assert with_it.activations == without.activations and with_it.activations_bound
    assert not without.activations_bound
    assert fit.fit(on, H200).line.endswith(
        " · activations: upper bound with gradient checkpointing"
    )
    assert "upper bound" not in fit.fit(bench_cfg("lora_r4"), H200).line


def test_a_model_that_cannot_be_read_is_said_in_one_line_never_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_CACHE", str(tmp_path / "cache"))  # nothing built there
    cfg = bench_cfg("lora_r4", model="no-such-user/no-such-model")
    assert fit.fit(cfg, H200).line == (
        "estimate: model not readable (not a local folder, nor a hub id in the Hub cache)"
    )
    builtin = bench_cfg("lora_r4", model="builtin:tiny-sdxl")
    assert fit.fit(builtin, H200).line == "estimate: none yet: builtin:tiny-sdxl is built at the first run"  # fmt: skip
    damaged = tmp_path / "model"
    for part in ("unet", "vae"):
        (damaged / part).mkdir(parents=True)
        (damaged / part / "diffusion_pytorch_model.safetensors").write_bytes(b"\xff" * 16)
    result = fit.fit(bench_cfg("lora_r4", model=str(damaged)), H200)
    assert result.verdict == "none" and result.line.startswith("estimate: model not readable (")


def test_counts_are_read_once_per_model_folder_until_it_changes(tiny_dir, monkeypatch):
    model = tiny_dir / "model"
    reads = []
    real = est.read_counts
    monkeypatch.setattr(est, "read_counts", lambda folder: reads.append(folder) or real(folder))
    monkeypatch.setattr(est, "_COUNTS", {})
    cfg = bench_cfg("lora_r4", model=str(model))
    first = fit.fit(cfg, H200).line
    assert fit.fit(bench_cfg("lora_r4", model=str(model), train_batch_size=2), H200).line != first
    assert len(reads) == 1
    unet = model / "unet"
    before = unet.stat()
    try:  # a file written into unet/ (a model replaced in place) changes the folder's mtime
        os.utime(unet, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        assert fit.fit(cfg, H200).line == first
        assert len(reads) == 2
    finally:
        os.utime(unet, ns=(before.st_atime_ns, before.st_mtime_ns))
