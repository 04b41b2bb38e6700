"""train.torch_compile compiles the UNet's repeated transformer blocks (not the whole UNet), keeps
torch's compile cache under the app's cache folder, and reports the compile as a phase."""

from __future__ import annotations

import pytest
import torch

from engine import compile as ec
from tests.enginehelpers import train_in_process


def test_compile_unet_compiles_each_repeated_block_in_place(tiny_dir, tmp_path, monkeypatch):
    from diffusers import UNet2DConditionModel

    monkeypatch.setenv("DREAMBOOTH_TUI_CACHE", str(tmp_path / "cache"))
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # unset, restored afterwards
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    unet = UNet2DConditionModel.from_pretrained(tiny_dir / "model", subfolder="unet")
    blocks = [m for m in unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks
    same, what = ec.compile_unet(unet)
    assert same is unet  # in place: the optimizer, accelerate and checkpoints see the same model
    assert ec.compiled_blocks(unet) == len(blocks) and "regional" in what
    assert all(getattr(b, "_compiled_call_impl", None) for b in blocks)
    assert ec.cache_dir() == tmp_path / "cache" / "torch-compile"
    assert (tmp_path / "cache" / "torch-compile").is_dir()
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(ec.cache_dir())


@pytest.mark.parametrize("method", ["full", "lora"])
def test_torch_compile_reports_the_compiling_phase_then_trains(
    tiny_dir, tmp_path, monkeypatch, method
):
    # backend "eager": dynamo traces each block with fullgraph=True exactly as with inductor
    # (a graph break fails), without inductor's minutes of code generation on this CPU
    monkeypatch.setattr(ec, "COMPILE_OPTIONS", {"fullgraph": True, "backend": "eager"})
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()
    code, run_dir, events = train_in_process(
        tmp_path,
        train={"torch_compile": True, "max_train_steps": 3, "method": method,
               "validation_steps": 1000, "checkpointing_steps": 1000},
    )  # fmt: skip
    assert code == 0, [e for e in events if e["type"] in ("error", "log")]
    phases = [e["name"] for e in events if e["type"] == "phase"]
    assert phases[-3:-1] == ["compiling", "training"]
    i_compiling = next(i for i, e in enumerate(events) if e.get("name") == "compiling")
    i_training = next(i for i, e in enumerate(events) if e.get("name") == "training")
    between = events[i_compiling + 1 : i_training]
    assert [e["step"] for e in between if e["type"] == "step"] == []  # reported before step 1
    logs = [e["message"] for e in between if e["type"] == "log"]
    assert len(logs) == 1 and logs[0].startswith("compiled ") and "regional" in logs[0]
    assert "s (the first step; cache" in logs[0]
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["loss"] == e["loss"] for e in steps)  # finite, not NaN
