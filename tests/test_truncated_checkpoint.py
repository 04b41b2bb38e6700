"""A crash mid-write on a filesystem that does not rename atomically: the newest checkpoint's
files are cut short. `--resume latest` takes the newest whole one, says which it skipped and
why, and resumes exactly where that one was taken (docs/reliability.md, "Checkpoints")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from enginehelpers import losses, of_type, train_in_process

from engine.ckpt_check import _size_text as size_text
from engine.ckpt_check import incomplete_reason
from engine.runs import update_run_json


def cut(path: Path, keep: float = 0.5) -> int:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return len(data)


@pytest.fixture(scope="module")
def trained(tiny_dir, tmp_path_factory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("truncated")
    code, run_dir, events = train_in_process(
        tmp,
        train={"max_train_steps": 5, "checkpointing_steps": 2, "checkpoints_total_limit": None},
    )
    assert code == 0
    assert [p.name for p in sorted((run_dir / "checkpoints").iterdir())] == [
        "step-000002",
        "step-000004",
    ]
    return run_dir, events


def test_whole_checkpoints_pass_and_every_cut_file_is_named(trained, tmp_path):
    import shutil

    run_dir, _ = trained
    good = run_dir / "checkpoints" / "step-000002"
    assert incomplete_reason(good) is None
    for name in ("unet.safetensors", "optimizer.pt", "scheduler.pt", "state.json"):
        copy = tmp_path / name.replace(".", "-")
        shutil.copytree(good, copy)
        size = cut(copy / name, 0.6)
        reason = incomplete_reason(copy)
        assert reason is not None and name in reason, (name, size, reason)


@pytest.mark.slow
def test_resume_latest_skips_a_cut_checkpoint_and_says_why(trained, tmp_path):
    import shutil

    source, first_events = trained
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    (run_dir / "events.jsonl").write_text("")  # this test reads only the resumed engine's events
    full = cut(run_dir / "checkpoints" / "step-000004" / "unet.safetensors")
    update_run_json(run_dir, status="running")  # as the killed engine left it

    code, _, events = train_in_process(tmp_path, resume="latest", run_dir=run_dir)
    assert code == 0
    warnings = [e["message"] for e in of_type(events, "log") if e.get("level") == "warning"]
    assert [m for m in warnings if m.startswith("skipped checkpoint")] == [
        f"skipped checkpoint step-000004: unet.safetensors is cut short ({size_text(full // 2)} "
        f"of {size_text(full)})"
    ]
    started = of_type(events, "run_started")
    assert started[0]["resumed_from_step"] == 2
    assert of_type(events, "finished")[-1]["status"] == "completed"
    resumed, original = losses(events), losses(first_events)
    assert sorted(resumed) == [3, 4, 5]
    for step in (3, 4, 5):  # resumed from step 2's state exactly
        assert resumed[step] == pytest.approx(original[step], rel=1e-5)
    state = json.loads((run_dir / "checkpoints" / "step-000004" / "state.json").read_text())
    assert state["step"] == 4 and incomplete_reason(run_dir / "checkpoints" / "step-000004") is None
