"""The engine killed by the kernel (a real SIGKILL, as the out-of-memory killer sends) while it
makes class images, while it saves a checkpoint and while it saves final/: the run shows
`crashed` with its last step and the host-memory hint, never `live`, and `--resume latest` goes
on from what is whole: class images already made are reused, a half-saved checkpoint or final/
(a temp folder the kill left) is removed with a line saying so (docs/reliability.md, "Killed").

The saves of the tiny model take milliseconds, so the kill would race them: the engine's
`hang@STEP` fault (engine.faults) holds the save halfway, its first files written, until the
kill comes. The kill itself is real."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from enginehelpers import of_type, prepare, train_in_process

from engine.class_images import TEMP_PREFIX
from engine.events import read_events
from engine.images import scan_images
from engine.runs import CRASH_HINT, lock_owner, run_info

# slow: three engines per test; the timeout is for a loaded machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
FEW_SAMPLES = {"num_images": 1, "num_inference_steps": 1}  # the last samples: one small image


def kill_when(proc, run: Path, ready, what: str, timeout: float = 300) -> None:
    """SIGKILL the run's engine (the lock's owner) once `ready()` holds."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"the engine ended before {what}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s"
            time.sleep(0.01)
        assert lock_owner(run) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_crashed_at(run: Path, step: int) -> None:
    info = run_info(run)
    assert (info.state, info.live, info.step) == ("crashed", False, step)
    assert info.crash_note == f"{run.name}: crashed at step {step}: {CRASH_HINT}"


def session(events: list[dict]) -> list[dict]:
    """The events of the last engine session."""
    return events[events.index(of_type(events, "run_started")[-1]) :]


def pngs(folder: Path) -> dict[str, bytes]:
    """The class images whole under their own names (not the temp files being written)."""
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.suffix == ".png" and not p.name.startswith(TEMP_PREFIX)
    }


def test_killed_while_making_class_images_is_crashed_and_resume_reuses_the_whole_ones(
    tiny_dir, tmp_path
):
    from engine.launch import spawn_engine

    classes = tmp_path / "class-images"
    wanted = 8
    run = prepare(
        tmp_path,
        train={
            "max_train_steps": 2,
            "checkpointing_steps": 100,
            "validation_steps": 100,
            "prior_preservation": True,
            "class_data": str(classes),
            "num_class_images": wanted,
            "sample_batch_size": 1,
        },
        evaluation=FEW_SAMPLES,
    )
    proc = spawn_engine(run, 1, None, None)
    kill_when(proc, run, lambda: classes.is_dir() and len(pngs(classes)) >= 2, "two class images")
    made = pngs(classes)
    assert 2 <= len(made) < wanted, "the kill came after the generation: nothing tested"
    assert_crashed_at(run, 0)

    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 0, of_type(events, "error")
    after = session(events)
    phases = [e.get("detail") for e in of_type(after, "phase")]
    assert f"{wanted - len(made)} of {wanted} to make" in phases  # the whole ones reused
    now = pngs(classes)
    assert {n: now[n] for n in made} == made
    assert not any(n.startswith(TEMP_PREFIX) for n in os.listdir(classes))  # a cut one removed
    scan = scan_images(classes)
    assert len(scan.good) == wanted and scan.skipped == []
    assert of_type(after, "finished")[-1]["status"] == "completed"
    assert run_info(run).state == "completed"


def test_killed_while_saving_a_checkpoint_and_then_final_resumes_from_the_whole_ones(
    tiny_dir, tmp_path
):
    from engine.launch import spawn_engine

    run = prepare(
        tmp_path,
        train={
            "max_train_steps": 6,
            "checkpointing_steps": 2,
            "checkpoints_total_limit": 2,  # a limit in force while a save is cut short
            "validation_steps": 100,
        },
        evaluation=FEW_SAMPLES,
    )
    half = run / "checkpoints" / ".tmp-step-000004"

    # 1. killed halfway through writing the checkpoint of step 4 (its UNet weights written)
    proc = spawn_engine(run, 1, None, None, env={"DREAMBOOTH_TUI_FAULTS": "hang@4"})
    kill_when(proc, run, (half / "unet.safetensors").is_file, "checkpoint save at step 4")
    assert_crashed_at(run, 4)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        ".tmp-step-000004",
        "step-000002",
    ]

    # 2. `--resume latest` (as the app starts it): from step 2, the half checkpoint removed with
    # a line; then killed while writing final/ at the last step
    proc = spawn_engine(run, 1, "latest", None, env={"DREAMBOOTH_TUI_FAULTS": "hang@6"})
    kill_when(proc, run, (run / ".tmp-final" / "model_index.json").is_file, "final/ save")
    assert_crashed_at(run, 6)
    second = session(read_events(run / "events.jsonl"))
    assert second[0]["resumed_from_step"] == 2
    logs = [e["message"] for e in of_type(second, "log")]
    assert "removed the temp folders of an interrupted save: checkpoints/.tmp-step-000004" in logs
    assert "resumed from step-000002 (step 2)" in logs
    assert not (run / "final").exists()

    # 3. `--resume latest` again: from step 4 (whole now), the half final/ removed, completes
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 0, of_type(events, "error")
    third = session(events)
    assert third[0]["resumed_from_step"] == 4
    logs = [e["message"] for e in of_type(third, "log")]
    assert "removed the temp folders of an interrupted save: .tmp-final" in logs
    assert [e["step"] for e in of_type(third, "step")] == [5, 6]
    assert of_type(third, "finished")[-1]["status"] == "completed"
    assert (run / "final" / "model_index.json").is_file()
    assert not (run / ".tmp-final").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-000002",
        "step-000004",
    ]
    assert run_info(run).state == "completed"
