"""Two apps on one run: both follow, a stop from either reaches the engine once (a second
SIGTERM would make it exit without its checkpoint); a second engine on a run is refused with
the first one's pid (docs/reliability.md, "Two apps, two engines")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from enginehelpers import prepare

from engine.events import read_events
from engine.runs import is_locked, write_run_json
from tui import engine_client

ROOT = Path(__file__).resolve().parent.parent

# Holds RUN_DIR's lock like an engine; counts the SIGTERMs it gets into RUN_DIR/terms.
HOLDER = """
import signal, sys, time
from pathlib import Path
from engine.runlock import RunLock
run_dir = Path(sys.argv[-1])
terms = []
def on_term(signum, frame):
    terms.append(signum)
    (run_dir / "terms").write_text(str(len(terms)))
signal.signal(signal.SIGTERM, on_term)
lock = RunLock(run_dir).acquire()
(run_dir / "ready").write_text("1")
while True:
    time.sleep(0.05)
"""


def hold_lock(run_dir: Path) -> subprocess.Popen:
    args = ["engine", "run", str(run_dir)]  # the command line of an engine
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER.replace("sys.argv[-1]", repr(str(run_dir))), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
    )
    for _ in range(200):
        if (run_dir / "ready").exists() and is_locked(run_dir):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the lock holder did not start")


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "runs" / "20260101-000000-sks"
    run.mkdir(parents=True)
    write_run_json(run, {"status": "running", "host": socket.gethostname()})
    return run


@pytest.fixture
def holders():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def terms(run_dir: Path) -> int:
    path = run_dir / "terms"
    return int(path.read_text()) if path.exists() else 0


def test_two_apps_stopping_one_run_send_one_sigterm(run_dir, holders):
    holders.append(hold_lock(run_dir))
    assert engine_client.stop_run(run_dir) is True  # app A
    for _ in range(100):  # (signals sent back to back would merge into one)
        if terms(run_dir):
            break
        time.sleep(0.05)
    assert engine_client.stop_run(run_dir) is True  # app B: already stopping, not sent again
    time.sleep(0.5)
    assert terms(run_dir) == 1


def test_a_new_engine_on_the_run_can_be_stopped_again(run_dir, holders):
    holders.append(first := hold_lock(run_dir))
    assert engine_client.stop_run(run_dir) is True
    first.kill()
    first.wait()
    (run_dir / "ready").unlink()
    (run_dir / "terms").unlink(missing_ok=True)
    holders.append(hold_lock(run_dir))  # a resumed engine: the earlier stop is forgotten
    assert engine_client.stop_run(run_dir) is True
    for _ in range(100):
        if terms(run_dir):
            break
        time.sleep(0.05)
    assert terms(run_dir) == 1


@pytest.mark.slow
def test_two_apps_stop_a_real_engine_once_and_a_second_engine_is_refused(tiny_dir, tmp_path):
    from engine.launch import spawn_engine
    from tui.follower import RunFollower

    run = prepare(tmp_path, train={"max_train_steps": 5000, "checkpointing_steps": 10000})
    proc = spawn_engine(run, 1, None, None)
    try:
        followers = [RunFollower(run), RunFollower(run)]  # two apps attached
        deadline = time.monotonic() + 180
        while not any(e["type"] == "step" for e in read_events(run / "events.jsonl")):
            assert proc.poll() is None and time.monotonic() < deadline, "no step"
            time.sleep(0.2)
        second = subprocess.run(
            [sys.executable, "-m", "engine", "run", str(run)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"error: {run}: already in use by a running engine (pid {proc.pid}); "
            "stop it first or pick another run"
        ]
        assert engine_client.stop_run(run) and engine_client.stop_run(run)  # A, then B
        assert proc.wait(timeout=180) == 0  # one SIGTERM: stopped with a checkpoint
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    events = read_events(run / "events.jsonl")
    finished = [e for e in events if e["type"] == "finished"]
    assert [e["status"] for e in finished] == ["stopped"]
    assert (run / "checkpoints" / f"step-{finished[0]['step']:06d}").is_dir()
    for follower in followers:
        follower.poll()
        assert follower.model.status == "stopped"
