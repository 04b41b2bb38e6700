"""The GPU end-to-end driver (benchmarks/gpu_e2e.py): its configs are the sample configs with
only the model, data, length (and on a CPU precision) changed, each passes `check`, and it reads
the README's "fits" claims. The whole driver runs on a CPU with
`python -m benchmarks.gpu_e2e --tiny --json /tmp/e2e-cpu.json` (a few minutes; see RESULTS.md)."""

from __future__ import annotations

from enginehelpers import cli

from benchmarks.gpu_e2e import cases, fits_claims
from engine.config import load_config


def test_fits_claims_are_read_from_the_readme():
    claims = fits_claims()
    assert claims["sd15-lora.yaml"]["gib"] == 12 and "12 GB" in claims["sd15-lora.yaml"]["claim"]
    assert claims["sd15-full.yaml"]["gib"] == 24
    assert claims["demo.yaml"]["gib"] is None  # "a CPU"


def test_e2e_configs_are_the_samples_and_pass_check(tiny_dir, tmp_path):
    configs = cases(tmp_path, tiny_dir / "model", tiny_dir / "images", tiny=True)
    full = load_config(configs["full"]).train
    assert full.prior_preservation and full.gradient_checkpointing and full.method == "full"
    assert full.class_data == str(tmp_path / "class") and not (tmp_path / "class").exists()
    lora = load_config(configs["lora"]).train
    assert lora.method == "lora" and lora.train_text_encoder and lora.lora_rank == 8
    assert load_config(configs["fp16"]).train.max_train_steps == 6
    for cfg in configs.values():
        out = cli("check", str(cfg))
        assert out.returncode == 0, out.stderr
