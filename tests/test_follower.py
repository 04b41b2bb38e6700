"""tui.follower without an app: a replaced or truncated events file, an engine that dies before
its first event, read errors retried with back-off, at most IN_FLIGHT batches posted."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.events import EVENTS_FILE, EventWriter
from engine.runs import LOG_FILE, RunLock
from tui.engine_client import RunModel
from tui.follower import (
    IN_FLIGHT,
    Batch,
    RunFollower,
    apply_batch,
    follow_loop,
    remember_process,
)


def write_steps(path: Path, steps: range, loss: float = 0.5, started: bool = True) -> None:
    with EventWriter(path) as w:
        if started:
            w.emit("run_started", run_id="r", total_steps=100, resumed_from_step=None)
            w.log("loading the model")
        for step in steps:
            w.emit("step", step=step, loss=loss, lr=1e-4)
            if step % 10 == 0:
                w.emit("checkpoint", step=step, path=f"checkpoints/step-{step:06d}")


def test_a_replaced_events_file_starts_a_fresh_model(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 11), loss=0.5)
    follower = RunFollower(run_dir)
    follower.poll()
    assert follower.model.step == 10
    # a new file in its place (os.replace: a new inode), larger than what was read
    new = tmp_path / "new.jsonl"
    write_steps(new, range(1, 31), loss=0.25)
    os.replace(new, run_dir / EVENTS_FILE)
    while follower.poll():
        pass
    assert [s for s, _ in follower.model.losses] == list(range(1, 31))
    assert {v for _, v in follower.model.losses} == {0.25}
    # the new file's log line and its three checkpoints' lines, not the old file's as well
    assert follower.model.log_count == 4
    assert [s for s, _ in follower.model.checkpoints] == [10, 20, 30]


def test_a_truncated_events_file_does_not_apply_the_history_twice(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 21))
    follower = RunFollower(run_dir)
    follower.poll()
    (run_dir / EVENTS_FILE).write_bytes(b"")  # same inode, shrunk
    write_steps(run_dir / EVENTS_FILE, range(1, 4))
    follower.poll()
    model = follower.model
    assert [s for s, _ in model.losses] == [1, 2, 3] and model.step == 3
    assert model.log_count == 1 and model.checkpoints == []  # not the old file's as well
    assert model.status == "running"


def test_a_new_run_started_clears_the_error_panel_but_not_the_log() -> None:
    model = RunModel()
    model.apply([{"type": "run_started", "run_id": "r", "total_steps": 10}])
    model.apply([{"type": "error", "kind": "oom", "message": "CUDA out of memory", "hint": "h"}])
    model.apply([{"type": "finished", "status": "failed", "step": 3}])
    assert [e.kind for e in model.errors] == ["oom"]
    model.apply([{"type": "run_started", "run_id": "r", "resumed_from_step": 0}])
    assert model.errors == []
    assert ("error", "oom: CUDA out of memory") in model.log


def test_an_engine_that_dies_before_its_first_event_is_shown_crashed_with_its_log(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / LOG_FILE, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.exit('ImportError: no module named boom')"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    remember_process(run_dir, proc)
    follower = RunFollower(run_dir)
    proc.wait(timeout=30)
    follower.poll()
    model = follower.model
    assert model.display_status == "crashed"
    assert any("no module named boom" in line for line in model.engine_log)


def test_the_startup_grace_belongs_to_each_run_not_to_the_screen(tmp_path: Path) -> None:
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    fresh.mkdir()
    old.mkdir()
    (old / LOG_FILE).write_text("Traceback ...\nRuntimeError: bad\n")
    an_hour_ago = time.time() - 3600
    for path in (old, old / LOG_FILE):
        os.utime(path, (an_hour_ago, an_hour_ago))
    fresh_follower, old_follower = RunFollower(fresh), RunFollower(old)
    fresh_follower.poll()
    old_follower.poll()
    assert fresh_follower.model.display_status == "starting"  # seconds old: maybe importing
    assert old_follower.model.display_status == "crashed"
    assert old_follower.model.engine_log[-1] == "RuntimeError: bad"


def test_read_errors_are_posted_and_retried_with_back_off(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 4))
    follower = RunFollower(run_dir)
    real_read, failures = follower.tail.read_lines, [3]

    def flaky_read():
        if failures[0]:
            failures[0] -= 1
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(follower.tail.path))
        return real_read()

    follower.tail.read_lines = flaky_read
    posted: list[Batch] = []
    sleeps: list[float] = []

    def post(batch: Batch) -> None:
        posted.append(batch)
        apply_batch(follower, batch)
        follower.gate.release()

    with RunLock(run_dir):
        follow_loop(follower, post, lambda: len(sleeps) >= 5, sleep=sleeps.append)
    errors = [b.error for b in posted if b.error]
    assert errors and "Stale file handle" in errors[0] and EVENTS_FILE in errors[0]
    assert sleeps[:3] == [0.5, 1.0, 2.0]  # back-off between failed reads
    assert posted[-1].error is None and follower.model.follow_error is None
    assert follower.model.step == 3 and follower.model.display_status == "live"


def test_a_deleted_run_folder_is_reported_not_followed_silently(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 4))
    follower = RunFollower(run_dir)
    follower.poll()
    (run_dir / EVENTS_FILE).unlink()
    posted: list[Batch] = []
    sleeps: list[float] = []
    follow_loop(follower, posted.append, lambda: len(sleeps) >= 1, sleep=sleeps.append)
    assert posted and "gone" in (posted[0].error or "") and EVENTS_FILE in posted[0].error


def test_the_reader_holds_at_most_in_flight_batches(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 3001))
    follower = RunFollower(run_dir)
    follower.tail.max_bytes = 4096  # many small batches
    posted: list[Batch] = []
    stop = threading.Event()
    reader = threading.Thread(
        target=follow_loop, args=(follower, posted.append, stop.is_set), daemon=True
    )
    reader.start()
    time.sleep(0.5)  # the UI applies nothing meanwhile
    assert len(posted) == IN_FLIGHT
    for _ in range(3):  # the UI applies one: the reader reads one more
        follower.gate.release()
        deadline = time.monotonic() + 5
        while len(posted) < IN_FLIGHT + _ + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    time.sleep(0.2)
    assert len(posted) == IN_FLIGHT + 3
    stop.set()
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_parse_line_reads_nan_literals_and_bad_utf8_as_json_does() -> None:
    from engine.events import parse_line

    nan = parse_line(b'{"v":1,"t":1.0,"type":"step","step":1,"loss":NaN,"lr":1e-4}\n')
    assert nan is not None and nan["loss"] != nan["loss"]  # NaN literal: json accepts it
    bad_utf8 = parse_line(b'{"type":"log","message":"caf\xe9"}')
    assert bad_utf8 is not None and bad_utf8["message"] == "caf\ufffd"
    assert parse_line(b'{"type":"step","step":true,"loss":0.5}') is None  # a bool is no step
    assert parse_line(b"  \n") is None and parse_line(b'{"type":"step"') is None


def test_a_finished_run_read_in_batches_is_never_shown_crashed_on_the_way(tmp_path: Path) -> None:
    # Its `finished` event is at the end of the file: until the reader gets there, a run with
    # no engine is still being read, not crashed (no red panel, no resume key meanwhile).
    run_dir = tmp_path / "run"
    write_steps(run_dir / EVENTS_FILE, range(1, 301))
    with EventWriter(run_dir / EVENTS_FILE) as w:
        w.emit("finished", status="completed", step=300, outputs={}, duration_s=9.0)
    follower = RunFollower(run_dir)
    follower.tail.max_bytes = 4096  # many batches
    shown: list[str] = []

    def post(batch: Batch) -> None:
        apply_batch(follower, batch)
        shown.append(follower.model.display_status)
        follower.gate.release()

    follow_loop(follower, post, lambda: bool(shown) and shown[-1] == "completed", sleep=no_wait)
    assert len(shown) > 5 and "crashed" not in shown, shown
    assert set(shown[:-1]) == {"loading"} and follower.model.step == 300


def no_wait(_: float) -> None:
    pass
