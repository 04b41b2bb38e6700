"""SDXL killed for real (issue 11): the engine process of an SDXL run with both text encoders
trained gets SIGKILL mid-run (what the out-of-memory killer sends: no stop, no save), then
`train --resume latest` finishes it with the losses and the final weights of a run that was
never interrupted, bit for bit."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from engine.events import read_events
from tests.enginehelpers import cli, losses, of_type, train_in_process, write_config
from tests.test_train_features import _spawn_train, _wait_for

SETTINGS = {
    "model": "builtin:tiny-sdxl",
    "method": "full",
    "train_text_encoder": True,  # both encoders' weights and optimizer state must come back
    "max_train_steps": 6,
    "checkpointing_steps": 2,
    "validation_steps": 100,
    "learning_rate": 1e-3,
    "center_crop": False,  # random crops and flips: the RNG state must come back too
    "random_flip": True,
    "cache_latents": False,
}
EVALUATION = {"num_images": 1, "num_inference_steps": 1}  # one small sample at the end


def _final_weights(run_dir) -> dict[str, torch.Tensor]:
    out = {}
    for file in sorted((run_dir / "final").rglob("*.safetensors")):
        name = file.relative_to(run_dir / "final").parent.name
        out.update({f"{name}/{k}": v for k, v in load_file(file).items()})
    return out


@pytest.mark.timeout(900)  # three engine starts: minutes on a loaded machine
def test_sdxl_sigkill_mid_run_then_resume_latest_equals_an_uninterrupted_run(
    tiny_sdxl_dir, tmp_path
):
    cfg = write_config(tmp_path / "killed", train=SETTINGS, evaluation=EVALUATION)
    proc = _spawn_train(cfg)
    try:
        run_dir, _ = _wait_for(
            tmp_path / "killed" / "runs",
            lambda ev: any(e["type"] == "checkpoint" for e in ev),
            timeout=300,
        )
        engine_pid = json.loads((run_dir / "run.json").read_text())["pid"]
        os.kill(engine_pid, signal.SIGKILL)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = read_events(run_dir / "events.jsonl")
    assert before[-1]["type"] != "finished"  # killed: no goodbye, no stop checkpoint
    assert not (run_dir / "final").exists()
    killed_at = max(losses(before))
    assert killed_at < SETTINGS["max_train_steps"]

    out = cli("train", str(cfg), "--resume", "latest", timeout=400)
    assert out.returncode == 0, out.stderr[-2000:]
    events = read_events(run_dir / "events.jsonl")
    starts = of_type(events, "run_started")
    assert len(starts) == 2
    resumed_at = starts[1]["resumed_from_step"]
    assert resumed_at is not None and resumed_at % 2 == 0 and resumed_at <= killed_at
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"

    code, straight_dir, straight = train_in_process(
        tmp_path / "straight", train=SETTINGS, evaluation=EVALUATION
    )
    assert code == 0, of_type(straight, "error")
    resumed = losses(events[events.index(starts[1]) :])
    assert sorted(resumed) == list(range(resumed_at + 1, SETTINGS["max_train_steps"] + 1))
    expected = losses(straight)
    for step, value in resumed.items():
        assert value == expected[step], step
    want, got = _final_weights(straight_dir), _final_weights(run_dir)
    assert want.keys() == got.keys()
    assert {k.split("/")[0] for k in want} >= {"unet", "text_encoder", "text_encoder_2"}
    for key in want:
        assert torch.equal(want[key], got[key]), key
