"""The engine killed by the kernel (SIGKILL while training, as the out-of-memory killer does):
the run shows `crashed` with its last step and a hint about host memory, never `live`; the
app, a second follower (another app) and the CLI agree (docs/reliability.md, "Killed")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest_tui import screen_text, wait_for
from enginehelpers import prepare

from engine.events import read_events
from engine.runs import CRASH_HINT, lock_owner, run_info

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def killed_run(tiny_dir, tmp_path_factory) -> Path:
    from engine.launch import spawn_engine

    tmp = tmp_path_factory.mktemp("killed")
    run = prepare(tmp, train={"max_train_steps": 5000, "checkpointing_steps": 10000})
    proc = spawn_engine(run, 1, None, None)
    try:
        deadline = time.monotonic() + 240
        while sum(e["type"] == "step" for e in read_events(run / "events.jsonl")) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "no steps"
            time.sleep(0.1)
        pid = lock_owner(run)
        assert pid == proc.pid
        os.kill(pid, signal.SIGKILL)  # what the out-of-memory killer sends
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return run


def last_step(run: Path) -> int:
    return max(e["step"] for e in read_events(run / "events.jsonl") if e["type"] == "step")


@pytest.mark.slow
def test_runs_and_run_info_say_crashed_with_the_last_step_and_the_hint(killed_run):
    step = last_step(killed_run)
    info = run_info(killed_run)
    assert (info.state, info.step, info.live) == ("crashed", step, False)
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "runs", "--output-dir", str(killed_run.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0
    row = proc.stdout.splitlines()[1].split("\t")
    assert row[:3] == [killed_run.name, "crashed", f"{step}/5000"]
    assert proc.stderr.splitlines() == [f"{killed_run.name}: crashed at step {step}: {CRASH_HINT}"]


@pytest.mark.slow
async def test_the_app_and_a_second_follower_say_crashed_with_the_hint(killed_run, monkeypatch):
    from tui.app import DreamBoothApp
    from tui.follower import RunFollower
    from tui.state import AppState

    step = last_step(killed_run)
    other = RunFollower(killed_run)  # a second app on the same run
    other.poll()
    assert other.model.display_status == "crashed" and other.model.step == step

    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    state = AppState(output_dir=killed_run.parent, run_dir=killed_run, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.model and screen.model.display_status == "crashed")
        await wait_for(pilot, lambda: "crashed at step" in screen_text(app), 10, "the hint")
        text = " ".join(screen_text(app).split())
        assert f"crashed at step {step}:" in text
        assert "out-of-memory killer" in text
        assert "live" not in str(screen.query_one("#run-status").render()).lower()
