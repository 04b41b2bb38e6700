"""Two engine processes through `accelerate launch` (gloo on the CPU): the headless stop reaches
the rank-0 engine (not the launcher), all ranks stop at one step with a checkpoint, and the
resume completes the run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from enginehelpers import ROOT, of_type, write_config

from engine.events import read_events


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _train(cfg, *args: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "train", str(cfg), "--num-processes", "2", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "MASTER_PORT": _free_port(), "HF_HUB_OFFLINE": "1"},
    )


def first_step(runs: Path, proc: subprocess.Popen, log: Path, timeout: float) -> Path:
    """The run folder under `runs` once its engine has emitted its first `step`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(runs.glob("*/events.jsonl"))
        if found and of_type(read_events(found[0]), "step"):
            return found[0].parent
        time.sleep(0.1)
    raise AssertionError(log.read_text()[-3000:])


@contextlib.contextmanager
def two_processes(tmp_path: Path, steps: int, timeout: float = 240):
    """`train --num-processes 2 --quiet` on the demo config (no samples, no checkpoints on
    schedule): (the launcher, the run folder once its first step is in, its output file)."""
    cfg = write_config(
        tmp_path,
        train={"max_train_steps": steps, "checkpointing_steps": 1000, "validation_steps": 1000},
    )
    out = tmp_path / "cli.log"
    with open(out, "w") as log:
        proc = _train(cfg, "--quiet", log=log)
        try:
            yield proc, first_step(tmp_path / "runs", proc, out, timeout), out
        finally:
            if proc.poll() is None:
                proc.kill()


def test_headless_stop_with_two_processes_checkpoints_and_resumes(tiny_dir, tmp_path):
    with two_processes(tmp_path, 500) as (proc, run_dir, out):
        proc.send_signal(signal.SIGINT)  # Ctrl-C on the headless CLI
        assert proc.wait(timeout=120) == 0, out.read_text()[-3000:]
    events = read_events(run_dir / "events.jsonl")
    (finished,) = of_type(events, "finished")
    stopped_at = finished["step"]
    assert finished["status"] == "stopped" and 1 <= stopped_at < 500
    assert [e["step"] for e in of_type(events, "step")] == list(range(1, stopped_at + 1))
    ckpt = run_dir / "checkpoints" / f"step-{stopped_at:06d}"
    assert (ckpt / "rng-0.pt").exists() and (ckpt / "rng-1.pt").exists()  # both ranks saved
    engine_log = (run_dir / "engine.log").read_text()
    assert "SignalException" not in engine_log  # the launcher was never signalled

    cfg = tmp_path / "cfg.yaml"  # what two_processes wrote and trained
    with open(out, "a") as log:
        proc = _train(cfg, "--resume", "latest", "--max-train-steps", str(stopped_at + 2), log=log)
        assert proc.wait(timeout=300) == 0, out.read_text()[-3000:]
    events = read_events(run_dir / "events.jsonl")
    started = of_type(events, "run_started")
    assert started[-1]["resumed_from_step"] == stopped_at and started[-1]["world_size"] == 2
    steps = [e["step"] for e in of_type(events, "step")]
    assert steps == list(range(1, stopped_at + 3))  # rank 0 only, each step once
    assert [e["status"] for e in of_type(events, "finished")] == ["stopped", "completed"]
    assert (run_dir / "final" / "model_index.json").exists()
