"""Issue 3: prior preservation, LoRA, caching, exact resume, stop = save, failures, multi-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.events import read_events
from engine.progress import fmt_duration
from engine.runs import run_info
from tests.enginehelpers import ROOT, losses, of_type, train_in_process, write_config

QUIET = {"validation_steps": 100, "checkpointing_steps": 100}


def test_prior_preservation_generates_class_images_then_trains_both_losses(tiny_dir, tmp_path):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    from engine.tiny import concept_image

    concept_image(99, 32).save(class_dir / "given.png")  # one exists: 2 more to generate
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            **QUIET,
            "max_train_steps": 3,
            "prior_preservation": True,
            "class_data": str(class_dir),
            "class_prompt": "a photo of shape",
            "num_class_images": 3,
            "sample_batch_size": 2,
            "prior_loss_weight": 0.5,
        },
    )
    assert code == 0, of_type(events, "error")
    assert len(list(class_dir.glob("*.png"))) == 3
    phases = [e["name"] for e in of_type(events, "phase")]
    assert phases.index("generating_class_images") < phases.index("training")
    for e in of_type(events, "step"):
        assert e["loss_prior"] > 0 and e["loss_instance"] > 0
        assert e["loss"] == pytest.approx(e["loss_instance"] + 0.5 * e["loss_prior"], rel=1e-5)
    # a rerun reuses the class images
    code, _, events = train_in_process(
        tmp_path / "again",
        train={
            **QUIET,
            "max_train_steps": 1,
            "prior_preservation": True,
            "class_data": str(class_dir),
            "num_class_images": 3,
        },
    )
    assert code == 0 and "generating_class_images" not in [
        e["name"] for e in of_type(events, "phase")
    ]


def test_cached_and_uncached_training_give_the_same_losses(tiny_dir, tmp_path):
    settings = {**QUIET, "max_train_steps": 4, "random_flip": True, "train_batch_size": 2}
    c1, _, cached = train_in_process(tmp_path / "c", train={**settings, "cache_latents": True})
    c2, _, plain = train_in_process(tmp_path / "u", train={**settings, "cache_latents": False})
    assert c1 == c2 == 0
    a, b = losses(cached), losses(plain)
    assert a.keys() == b.keys() == {1, 2, 3, 4}
    for step in a:
        assert a[step] == pytest.approx(b[step], rel=1e-4, abs=1e-6)


def _spawn_train(cfg, *extra, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "train", str(cfg), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def _wait_for(run_root, predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for run_dir in run_root.glob("*"):
            events = read_events(run_dir / "events.jsonl")
            if predicate(events):
                return run_dir, events
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the engine")


def test_sigkill_after_checkpoint_then_resume_latest_is_exact(tiny_dir, tmp_path):
    settings = {
        "max_train_steps": 10,
        "checkpointing_steps": 3,
        "validation_steps": 100,
        "random_flip": True,
    }
    cfg = write_config(tmp_path / "killed", train=settings)
    proc = _spawn_train(cfg)
    run_dir, _ = _wait_for(
        tmp_path / "killed" / "runs", lambda ev: any(e["type"] == "checkpoint" for e in ev)
    )
    engine_pid = json.loads((run_dir / "run.json").read_text())["pid"]
    os.kill(engine_pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_events(run_dir / "events.jsonl")
    assert before[-1]["type"] != "finished"  # killed: no goodbye

    # resumed in this process (the kill above was the real engine's): exact only if the
    # checkpoint restores the state, as a fresh process gets nothing else either
    code, _, events = train_in_process(run_dir.parent, resume="latest", run_dir=run_dir)
    assert code == 0, of_type(events, "error")
    starts = of_type(events, "run_started")
    assert len(starts) == 2 and starts[1]["resumed_from_step"] == 3
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert events[-1]["step"] == 10

    _, _, straight = train_in_process(tmp_path / "straight", train=settings)
    resumed_losses = {
        e["step"]: e["loss"] for e in events[events.index(starts[1]) :] if e["type"] == "step"
    }
    assert sorted(resumed_losses) == list(range(4, 11))
    expected = losses(straight)
    for step, value in resumed_losses.items():
        assert value == expected[step], step


def test_sigterm_stops_with_a_checkpoint_and_resume_finishes(tiny_dir, tmp_path):
    cfg = write_config(
        tmp_path,
        train={"max_train_steps": 200, "checkpointing_steps": 1000, "validation_steps": 1000},
    )
    proc = _spawn_train(cfg)
    run_dir, _ = _wait_for(tmp_path / "runs", lambda ev: sum(e["type"] == "step" for e in ev) >= 2)
    os.kill(proc.pid, signal.SIGTERM)  # the CLI forwards it to the engine
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    events = read_events(run_dir / "events.jsonl")
    finished = events[-1]
    assert finished["type"] == "finished" and finished["status"] == "stopped"
    stopped_at = finished["step"]
    assert 2 <= stopped_at < 200
    ckpts = of_type(events, "checkpoint")
    assert ckpts and ckpts[-1]["step"] == stopped_at
    assert (run_dir / ckpts[-1]["path"] / "state.json").exists()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    first_session = finished["duration_s"]
    time.sleep(2.0)  # the gap between the stop and the resume is not part of the run's duration

    # `train CFG --resume latest --max-train-steps N` in this process: the CLI's edit of the run's
    # config, then the engine (the stop above was the real process's; the CLI's own resume with
    # --max-train-steps after a stop: tests/test_multiprocess.py)
    from engine.cli import apply_edits
    from engine.config import load_config

    more = load_config(cfg, {"train": {"max_train_steps": stopped_at + 2}})
    assert apply_edits(str(cfg), more, run_dir) == 0
    code, _, events = train_in_process(run_dir.parent, resume="latest", run_dir=run_dir)
    assert code == 0, of_type(events, "error")
    assert events[-1]["status"] == "completed" and events[-1]["step"] == stopped_at + 2
    # one duration (runs.run_duration): the engine's sessions summed, the same in the event,
    # run.json (the Runs screen) and `dreambooth-tui runs`
    info = run_info(run_dir)
    duration = events[-1]["duration_s"]
    assert info.duration == duration and duration > first_session
    assert duration < info.ended - info.started - 1.5
    listed = subprocess.run(
        [sys.executable, "-m", "engine", "runs", "--output-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert listed.stdout.splitlines()[1].split("\t")[-1] == fmt_duration(duration)


def test_nan_loss_stops_with_error_and_keeps_the_last_checkpoint(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("engine.faults.FAULTS", {"nan": {4}})
    code, run_dir, events = train_in_process(
        tmp_path, train={"max_train_steps": 6, "checkpointing_steps": 2, "validation_steps": 100}
    )
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "nan" and "step 4" in error["message"]
    assert "step-000002" in error["message"] and error["hint"]
    assert events[-1]["status"] == "failed" and events[-1]["step"] == 3
    from engine.checkpoint import latest_checkpoint, read_state

    assert read_state(latest_checkpoint(run_dir))["step"] == 2


def test_failed_checkpoint_write_keeps_the_previous_one(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("engine.faults.FAULTS", {"disk": {4}})
    code, run_dir, events = train_in_process(
        tmp_path, train={"max_train_steps": 6, "checkpointing_steps": 2, "validation_steps": 100}
    )
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "disk" and "disk full" in error["message"]
    assert "step-000002" in error["message"]
    ckpt_root = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpt_root.iterdir()) == ["step-000002"]  # no partial dir
    # the kept checkpoint still loads and resumes
    monkeypatch.setattr("engine.faults.FAULTS", {})
    code, _, events = train_in_process(tmp_path, resume="latest", run_dir=run_dir)
    assert code == 0 and of_type(events, "run_started")[-1]["resumed_from_step"] == 2
    assert events[-1]["status"] == "completed"


def test_resume_from_a_checkpoint_path(tiny_dir, tmp_path):
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 5,
            "checkpointing_steps": 2,
            "validation_steps": 100,
            "checkpoints_total_limit": 1,
        },
    )
    assert code == 0
    ckpts = sorted((run_dir / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["step-000004"]
    # pruning is housekeeping: logged at debug level, which the app's log hides
    (removed,) = [e for e in of_type(events, "log") if "removed old checkpoint" in e["message"]]
    assert removed["level"] == "debug" and removed["message"].endswith("step-000002")
    code, _, events = train_in_process(tmp_path, resume=str(ckpts[0]), run_dir=run_dir)
    assert code == 0 and of_type(events, "run_started")[-1]["resumed_from_step"] == 4


def test_out_of_memory_gives_peak_and_advice(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("engine.faults.FAULTS", {"oom": {3}})
    code, _, events = train_in_process(
        tmp_path, train={"max_train_steps": 5, "checkpointing_steps": 2, "validation_steps": 100}
    )
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "oom" and "step 3" in error["message"]
    assert "peak" in error["message"] and "GiB" in error["message"]
    for advice in ("gradient_checkpointing", "adamw8bit", "lora", "resolution", "batch"):
        assert advice in error["hint"]
    assert events[-1]["status"] == "failed"
