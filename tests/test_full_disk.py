"""A real full disk: the run's output folder is a small tmpfs, filled up while the engine trains,
so the next checkpoint write meets ENOSPC from the kernel (not injected). The run says what
happened, no partial folder is left, and the newest whole checkpoint resumes once there is room
(docs/reliability.md, "Full disk"). Skipped where tmpfs cannot be mounted (not root, or a
container without CAP_SYS_ADMIN)."""

from __future__ import annotations

import time

import pytest
from diskhelpers import fill, small_disk
from enginehelpers import of_type, prepare, train_in_process

from engine.ckpt_check import incomplete_reason
from engine.events import read_events
from engine.runs import run_info

SLACK = 256 << 10  # left free after filling: enough for events, not for a checkpoint


@pytest.fixture
def tmpfs(tmp_path):
    # 96 MB: the resume then writes another checkpoint (12 MB) and final/ beside step 5, with
    # the engine's disk reserve; 64 MB once held four more with 0.5 MB to spare, before the reserve
    with small_disk(tmp_path / "small-disk", size="96m") as where:
        yield where


@pytest.mark.slow
def test_a_disk_that_fills_during_training_fails_in_one_line_and_resumes(tiny_dir, tmp_path, tmpfs):
    from engine.launch import spawn_engine

    run = prepare(
        tmp_path,
        train={
            "output_dir": str(tmpfs),
            # 15 steps: the checkpoint of step 10 meets the full disk (the last step writes
            # final/, not a checkpoint); the resume from 5 writes step 10 again, then final/
            "max_train_steps": 15,
            "checkpointing_steps": 5,
            "checkpoints_total_limit": None,
            "validation_steps": 1000,
        },
        evaluation={"num_images": 1, "num_inference_steps": 1},  # the last samples: not the subject
    )
    assert run.parent == tmpfs
    proc = spawn_engine(run, 1, None, None)
    filler = None
    try:
        deadline = time.monotonic() + 240
        while not of_type(read_events(run / "events.jsonl"), "checkpoint"):
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.02)
        filler = fill(tmpfs, SLACK)  # the next checkpoint (step 10) cannot fit
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = read_events(run / "events.jsonl")
    errors = of_type(events, "error")
    assert code == 1, errors
    assert [e["kind"] for e in errors] == ["disk"]
    assert errors[0]["message"].startswith("disk full while writing the checkpoint")
    assert "the last good checkpoint is step-000005" in errors[0]["message"]
    assert of_type(events, "finished")[-1]["status"] == "failed"
    assert run_info(run).state == "failed"
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["step-000005"]  # no .tmp-step-000010 left behind
    assert incomplete_reason(run / "checkpoints" / "step-000005") is None

    filler.unlink()  # room again: the newest whole checkpoint resumes and the run completes
    # (in this process: the engine that met the full disk was the real process above)
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 0, of_type(events, "error")
    assert of_type(events, "run_started")[-1]["resumed_from_step"] == 5
    assert of_type(events, "checkpoint")[-1]["step"] == 10  # the write the full disk refused
    assert of_type(events, "finished")[-1]["status"] == "completed"
