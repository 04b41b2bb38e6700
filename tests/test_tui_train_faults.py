"""The Train screen under faults, through the real app: an engine that dies before its first
event, a run that cannot be read for a while, a long history re-attached while the UI is slow."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest_tui import wait_for
from trainscreenhelpers import demo_state, static_text, train_screen

import engine.launch
from engine.events import EVENTS_FILE, EventTail, EventWriter
from engine.runs import LOG_FILE, RunLock
from tui.app import DreamBoothApp
from tui.engine_client import RunModel
from tui.screens import train
from tui.state import AppState


async def test_an_engine_that_dies_at_start_shows_crashed_with_the_end_of_engine_log(
    tmp_path, monkeypatch
):
    def dying_engine(run_dir, **kwargs):
        with open(Path(run_dir) / LOG_FILE, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-c", "import sys; sys.exit('ImportError: no module named xyz')"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    monkeypatch.setattr(engine.launch, "spawn_engine", dying_engine)
    app = DreamBoothApp(demo_state(tmp_path / "runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.press("s")
        screen = train_screen(app)
        await wait_for(pilot, lambda: screen.follower is not None, 10, "the run to be attached")
        await wait_for(
            pilot, lambda: "crashed" in static_text(screen, "#run-status"), 10, "crashed"
        )  # (not "starting" for a minute, then "waiting" for ever)
        errors = static_text(screen, "#errors")
        assert "before its first event" in errors and "no module named xyz" in errors
        assert "train.start" in {b.binding.id for b in screen.active_bindings.values()}


async def test_a_run_that_cannot_be_read_says_so_and_is_followed_again(tmp_path, monkeypatch):
    run_dir = tmp_path / "runs" / "20240101-000000-flaky"
    run_dir.mkdir(parents=True)
    writer = EventWriter(run_dir / EVENTS_FILE)
    writer.emit("run_started", run_id=run_dir.name, total_steps=10, resumed_from_step=None)
    writer.emit("step", step=1, loss=0.5, lr=1e-4)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    real_read = EventTail.read_lines
    stale = {"on": False}

    def read_lines(self):
        if stale["on"]:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(self.path))
        return real_read(self)

    monkeypatch.setattr(EventTail, "read_lines", read_lines)
    with RunLock(run_dir):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            screen = train_screen(app)
            await wait_for(pilot, lambda: static_text(screen, "#step-label") == "step 1/10", 5, "")
            stale["on"] = True
            await wait_for(pilot, lambda: "Stale file handle" in static_text(screen, "#errors"),
                           5, "the read error")  # fmt: skip
            assert EVENTS_FILE in static_text(screen, "#errors")
            assert "not updating" in static_text(screen, "#run-status")
            stale["on"] = False
            writer.emit("step", step=2, loss=0.4, lr=1e-4)
            await wait_for(pilot, lambda: static_text(screen, "#step-label") == "step 2/10", 5,
                           "following again")  # fmt: skip
            await wait_for(pilot, lambda: not screen.query_one("#errors").display, 5, "")
            assert "not updating" not in static_text(screen, "#run-status")
    writer.close()


async def test_reattaching_a_long_history_holds_at_most_two_batches_in_flight(
    tmp_path, monkeypatch
):
    run_dir = tmp_path / "runs" / "20240101-000000-long"
    run_dir.mkdir(parents=True)
    total = 40_000  # ~7 MB: several 1 MiB batches
    with open(run_dir / EVENTS_FILE, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"v": 1, "t": 1.0, "type": "run_started", "run_id": run_dir.name,
                             "total_steps": total, "resumed_from_step": None}) + "\n")  # fmt: skip
        for step in range(1, total + 1):
            fh.write(json.dumps({"v": 1, "t": 1.0, "type": "step", "step": step, "loss": 0.1,
                                 "lr": 1e-4, "it_s": 3.0, "eta_s": 1.0, "mem": {
                                 "allocated": 1, "reserved": 2, "peak": 3}}) + "\n")  # fmt: skip
        fh.write(json.dumps({"v": 1, "t": 2.0, "type": "finished", "status": "completed",
                             "step": total}) + "\n")  # fmt: skip
    counts = {"posted": 0, "applied": 0, "most": 0}
    real_init, real_apply = train.EventsArrived.__init__, RunModel.apply

    def counting_init(self, *args, **kwargs):
        counts["posted"] += 1
        counts["most"] = max(counts["most"], counts["posted"] - counts["applied"])
        real_init(self, *args, **kwargs)

    def slow_apply(self, events):
        time.sleep(0.1)  # a slow UI thread
        counts["applied"] += 1
        return real_apply(self, events)

    monkeypatch.setattr(train.EventsArrived, "__init__", counting_init)
    monkeypatch.setattr(RunModel, "apply", slow_apply)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        await wait_for(pilot, lambda: screen.model and screen.model.status == "completed", 30,
                       "the whole history")  # fmt: skip
        assert screen.model.step == total and len(screen.model.losses) == total
    assert counts["posted"] >= 5  # it did come in several batches
    assert counts["most"] <= 2, counts
