"""Issue 9, item 8: resume after an edit. A change the checkpoint cannot follow is refused in one
line naming the key and both values (exit 2, nothing written); a change it can follow is applied
and logged; `--resume latest` takes only a run of the same model and instance data."""

from __future__ import annotations

import shutil
import time

import pytest

from engine.config import load_config
from engine.events import read_events
from engine.launch import prepare_run
from engine.runs import update_run_json
from tests.enginehelpers import cli, of_type, train_in_process, write_config

RUN = {"max_train_steps": 3, "checkpointing_steps": 1, "validation_steps": 100}


@pytest.fixture
def failed_run(tiny_dir, tmp_path, monkeypatch):
    """A run that failed at step 2 (injected NaN) with the checkpoint of step 1."""
    monkeypatch.setattr("engine.faults.FAULTS", {"nan": {2}})
    code, run_dir, _ = train_in_process(tmp_path, train=RUN)
    assert code == 1
    monkeypatch.setattr("engine.faults.FAULTS", {})
    return run_dir


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("key,value", [("method", "lora"), ("lora_rank", 8), ("resolution", 64)])
def test_a_change_the_checkpoint_cannot_follow_is_refused_in_one_line(
    failed_run, tmp_path, key, value
):
    edited = write_config(tmp_path, "edited.yaml", train={**RUN, key: value})
    before = _snapshot(failed_run)
    out = cli("train", str(edited), "--resume", "latest")
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    old = getattr(load_config(failed_run / "config.yaml").train, key)
    assert f"train.{key}" in errors[0] and repr(value) in errors[0] and repr(old) in errors[0]
    assert _snapshot(failed_run) == before  # nothing written


def test_the_engine_refuses_a_run_config_edited_by_hand(failed_run):
    path = failed_run / "config.yaml"
    path.write_text(path.read_text().replace("method: full", "method: lora"))
    code, _, events = train_in_process(failed_run.parent, resume="latest", run_dir=failed_run)
    assert code == 2
    error = of_type(events, "error")[-1]
    assert error["kind"] == "config" and "train.method" in error["message"]
    assert "'lora'" in error["message"] and "'full'" in error["message"]


def test_resume_latest_takes_the_run_of_the_same_model_and_data_and_applies_followable_edits(
    failed_run, tiny_dir, tmp_path
):
    # one engine for both: `--resume latest` of an edited config must pick failed_run over a
    # newer unfinished run of other instance data, then apply and log the followable edits
    other_images = tmp_path / "other-images"
    shutil.copytree(tiny_dir / "images", other_images)
    other = load_config(failed_run / "config.yaml")
    other.train.instance_data = str(other_images)
    newer = prepare_run(other)  # a newer unfinished run of other data
    update_run_json(newer, status="stopped", started=time.time() + 60)

    edited = write_config(
        tmp_path, "edited.yaml", train={**RUN, "max_train_steps": 4}, evaluation={"num_images": 1}
    )
    out = cli("train", str(edited), "--resume", "latest")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resume: train.max_train_steps: 3 -> 4" in out.stderr
    assert "resume: evaluation.num_images: 2 -> 1" in out.stderr
    events = read_events(failed_run / "events.jsonl")
    logs = [e["message"] for e in of_type(events, "log")]
    assert "changed since the last attempt: train.max_train_steps: 3 -> 4" in logs
    assert events[-1]["status"] == "completed" and events[-1]["step"] == 4
    last_sample = of_type(events, "sample")[-1]
    assert len(last_sample["paths"]) == 1  # the new evaluation.num_images
    assert not (newer / "events.jsonl").exists()

    out = cli("train", str(write_config(tmp_path / "x", "x.yaml", train={
        **RUN, "output_dir": str(tmp_path / "runs"), "model": str(tiny_dir / "model")
    })), "--resume", "latest")  # fmt: skip
    assert out.returncode == 2
    assert "no unfinished run of this model and instance data" in out.stderr
