"""The re-created reference step (bench_train's second row) is written from diffusers' script, not
from the engine's code, and computes the same loss as the engine's step on the same inputs (full
fine-tune and LoRA, before and after one update): the engine's recipe matches the script's.
`bench_train --model tiny` writes the documented JSON. (Timing fairness is the real scripts'
comparison, tests/test_bench_real.py.)"""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import bench_train as bt


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model gains nothing from more threads; on a busy machine they cost seconds."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _sides(tmp_path, *extra: str):
    args = bt.parse_args(["--model", "tiny", "--resolution", "32", *extra])
    model_dir, images = bt.model_and_images(args)
    cfg = bt.make_config(args, model_dir, images, tmp_path / "runs")
    engine = bt.engine_trainer(cfg, tmp_path / "run")
    ref = bt.ReferenceStep(cfg, engine.device, model_dir, images)
    return engine, ref


def _trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    module = getattr(module, "module", module)
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


def _loss(side, k: int) -> float:
    with torch.no_grad():
        return side.compute_loss(k).total.item()


def test_reference_step_uses_none_of_the_engines_recipe_or_data_code(
    tiny_dir, tmp_path, monkeypatch
):
    """Poison the engine's recipe, data and image functions: the reference still computes."""
    import engine.data
    import engine.images
    import engine.recipe

    _, ref = _sides(tmp_path)

    def poisoned(*a, **k):
        raise AssertionError("the reference called the engine's own code")

    for module in (engine.recipe, engine.data, engine.images):
        for name in dir(module):
            obj = getattr(module, name)
            if (
                callable(obj)
                and getattr(obj, "__module__", None) == module.__name__
                and name != "step_seed"  # the shared choice of random numbers
            ):
                monkeypatch.setattr(module, name, poisoned)
    assert _loss(ref, 0) > 0
    assert ref.train_step(1) > 0


@pytest.mark.parametrize("method", ["full", "lora"])
def test_reference_step_computes_the_engines_loss(tiny_dir, tmp_path, method):
    engine, ref = _sides(tmp_path, "--method", method)
    e_params, r_params = _trainable(engine.unet), _trainable(ref.unet)
    assert e_params.keys() == r_params.keys() and e_params
    if method == "lora":  # the adapters' random init: give the reference the engine's
        with torch.no_grad():
            for name, p in r_params.items():
                p.copy_(e_params[name])
    # Same weights, same micro-batches: the engine encodes from its cache, the reference
    # decodes, encodes the image with the VAE and the prompt with the text encoder.
    for k in range(3):
        assert _loss(ref, k) == pytest.approx(_loss(engine, k), rel=1e-5, abs=1e-7)
    # One whole update each (same optimizer, learning rate and clipping): the same loss, and the
    # same loss afterwards too.
    e_loss, _, _, _ = engine.train_step(1)
    r_loss = ref.train_step(1)
    assert r_loss == pytest.approx(e_loss, rel=1e-5)
    # Adam's first step moves each weight by about lr; where a gradient is near Adam's eps (the
    # biases just before a GroupNorm) rounding can change that by a fraction of lr, no more.
    lr = engine.cfg.train.learning_rate
    for name, p in e_params.items():
        torch.testing.assert_close(r_params[name], p, rtol=0, atol=lr / 2, msg=name)
    assert _loss(ref, 1) == pytest.approx(_loss(engine, 1), rel=1e-4, abs=1e-7)


def test_bench_train_tiny_writes_the_documented_json(tiny_dir, tmp_path):
    out = tmp_path / "bench.json"
    code = bt.main(
        ["--model", "tiny", "--steps", "2", "--warmup", "1", "--mem-steps", "1", "--threads", "1"]
        + ["--json", str(out)]
    )
    assert code == 0
    data = json.loads(out.read_text())
    for side in ("engine", "reference"):
        s = data[side]
        assert s["steps_per_s"] > 0 and s["step_ms"] > 0
        assert s["steps_per_s"] == pytest.approx(1000 / s["step_ms"])
        assert s["peak_mem"] > 0
    assert data["ratio"] == pytest.approx(
        data["engine"]["steps_per_s"] / data["reference"]["steps_per_s"]
    )
    assert data["config"]["model"] == "tiny" and data["config"]["resolution"] == 32
    assert data["device"]["device"] == "cpu" and data["device"]["torch"] == torch.__version__
    assert data["device"]["cpu"] and "load_avg" in data["device"]
    assert data["device"]["threads"] == 1
    assert 0 <= data["engine"]["event_fraction"] < 1
    assert data["flops"]["unet_fwd_bwd"] > 0


def test_bench_tui_scale_redraw_and_fake_runs(tmp_path):
    from benchmarks import tui_scale
    from tui.runs_index import RunsIndex

    r = tui_scale.redraw(steps=2000, repeats=2)
    assert r["steps"] == 2000 and set(r["loss"]) == {"median_ms", "min_ms", "max_ms"}
    assert 0 < r["loss"]["min_ms"] <= r["loss"]["median_ms"] <= r["loss"]["max_ms"]
    runs = tui_scale.make_runs(tmp_path, 3, steps=50)
    listed = RunsIndex().list(runs)
    assert [i.step for i in listed] == [50, 50, 50] and {i.state for i in listed} == {"completed"}


def test_bench_train_tiny_sdxl_times_the_engine_alone_and_says_why(tiny_sdxl_dir, tmp_path):
    """An SDXL model (tiny-sdxl; sdxl-arch on a GPU): the engine row with SDXL's added
    conditioning in the FLOP count; no reference row (the re-created step is SD's script)."""
    out = tmp_path / "bench.json"
    code = bt.main(
        ["--model", "tiny-sdxl", "--method", "lora", "--steps", "2", "--warmup", "1"]
        + ["--mem-steps", "1", "--threads", "1", "--json", str(out)]
    )
    assert code == 0
    data = json.loads(out.read_text())
    e = data["engine"]
    assert e["steps_per_s"] == pytest.approx(1000 / e["step_ms"]) and e["peak_mem"] > 0
    assert data["reference"] is None and data["ratio"] is None and data["mem_ratio"] is None
    assert (
        "SD 1.x/2.x" in data["reference_skipped"]
        and "Stable Diffusion XL" in data["reference_skipped"]
    )
    assert data["config"]["model"] == "tiny-sdxl" and data["device"]["device"] == "cpu"
    assert data["flops"]["unet_fwd_bwd"] > 0
    assert len(data["losses"]["engine"]) == 2 and data["losses"]["reference"] == []
