"""Issue 9 item 11: a killed save leaves nothing behind; checkpoints_total_limit bounds the disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from engine import checkpoint as ckpt
from engine.events import read_events
from tests.enginehelpers import ROOT, of_type, train_in_process, write_config


def _checkpoint_folders(run_dir):
    root = run_dir / "checkpoints"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_checkpoints_total_limit_bounds_the_disk_while_saving(tiny_dir, tmp_path, monkeypatch):
    """While each checkpoint is written, the folders on disk (the one being written included)
    never exceed the limit, and a complete checkpoint exists once the first one is written."""
    seen: list[list[str]] = []
    real_save = ckpt.save_file

    def spying_save(tensors, filename, *args, **kwargs):
        (run_dir,) = (tmp_path / "runs").iterdir()
        seen.append(_checkpoint_folders(run_dir))
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", spying_save)
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 6,
            "checkpointing_steps": 1,
            "checkpoints_total_limit": 2,
            "validation_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    assert len(seen) == 5  # steps 1..5 (the last step writes final/, not a checkpoint)
    for i, folders in enumerate(seen):
        assert len(folders) <= 2, folders
        complete = [f for f in folders if f.startswith("step-")]
        if i > 0:
            assert complete, folders
    assert _checkpoint_folders(run_dir) == ["step-000004", "step-000005"]


def test_limit_one_keeps_a_complete_checkpoint_while_writing(tiny_dir, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real_save = ckpt.save_file

    def spying_save(tensors, filename, *args, **kwargs):
        (run_dir,) = (tmp_path / "runs").iterdir()
        seen.append(_checkpoint_folders(run_dir))
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", spying_save)
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 4,
            "checkpointing_steps": 1,
            "checkpoints_total_limit": 1,
            "validation_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    assert seen[1] == [".tmp-step-000002", "step-000001"]  # the old one goes only after
    assert _checkpoint_folders(run_dir) == ["step-000003"]


def test_remove_leftovers_takes_only_the_engines_temp_folders(tmp_path):
    run_dir = tmp_path / "run"
    for name in (
        "checkpoints/step-000002",
        "checkpoints/.tmp-step-000004",
        "checkpoints/.tmp-del-step-000001",
        "checkpoints/.tmp-notes",
        ".tmp-final",
        ".tmp-mine",
        "final",
        "samples/step-000002",
        "samples/.tmp-step-000004",  # a killed engine's samples, being written
        "samples/.tmp-mine",
    ):
        (run_dir / name).mkdir(parents=True)
        (run_dir / name / "f").write_text("x")
    removed = ckpt.remove_leftovers(run_dir)
    assert sorted(p.relative_to(run_dir).as_posix() for p in removed) == [
        ".tmp-final",
        "checkpoints/.tmp-del-step-000001",
        "checkpoints/.tmp-step-000004",
        "samples/.tmp-step-000004",
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".tmp-mine",
        "checkpoints",
        "final",
        "samples",
    ]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [".tmp-mine", "step-000002"]
    assert _checkpoint_folders(run_dir) == [".tmp-notes", "step-000002"]


def test_sigkill_in_the_middle_of_a_save_then_resume_cleans_up(tiny_dir, tmp_path):
    cfg = write_config(
        tmp_path,
        train={
            "max_train_steps": 6,
            "checkpointing_steps": 2,
            "checkpoints_total_limit": 2,
            "validation_steps": 100,
        },
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "train", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "DREAMBOOTH_TUI_FAULTS": "hang@4"},
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        partial = None
        while time.time() < deadline:
            found = list((tmp_path / "runs").glob("*/checkpoints/.tmp-step-000004/unet.*"))
            if found:
                partial = found[0].parent
                break
            time.sleep(0.1)
        assert partial is not None, "the save at step 4 never started"
        run_dir = partial.parent.parent
        engine_pid = json.loads((run_dir / "run.json").read_text())["pid"]
        os.kill(engine_pid, signal.SIGKILL)  # killed halfway through writing step 4
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _checkpoint_folders(run_dir) == [".tmp-step-000004", "step-000002"]

    out = subprocess.run(
        [sys.executable, "-m", "engine", "train", str(cfg), "--resume", "latest"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    events = read_events(run_dir / "events.jsonl")
    assert of_type(events, "run_started")[-1]["resumed_from_step"] == 2
    assert any(
        "checkpoints/.tmp-step-000004" in e["message"] and "interrupted save" in e["message"]
        for e in of_type(events, "log")
    )
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 6
    assert _checkpoint_folders(run_dir) == ["step-000002", "step-000004"]
