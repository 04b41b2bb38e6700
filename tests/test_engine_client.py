"""tui.engine_client without an app: RunModel.apply (pure), following a file, run housekeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_synthetic import TRICKY_PROMPT, loss_at, write_finished_run

from engine.events import EVENTS_FILE, EventTail, EventWriter, read_events
from engine.runs import RunLock
from tui.engine_client import (
    RunModel,
    delete_run,
    fmt_duration,
    load_loss_history,
    stop_run,
)
from tui.follower import RunFollower


def ev(type: str, **fields) -> dict:
    return {"v": 1, "t": 1.0, "type": type, **fields}


def test_apply_whole_run(tmp_path: Path) -> None:
    run_dir = write_finished_run(tmp_path, total=40, error=True)
    model = RunModel(run_dir=run_dir)
    assert model.apply(read_events(run_dir / EVENTS_FILE))
    assert model.run_id == run_dir.name
    assert model.total_steps == 40 and model.step == 40
    assert model.progress_text == "step 40/40"
    assert model.status == "completed" and model.display_status == "completed"
    assert [s for s, _ in model.losses] == list(range(1, 41))
    assert model.losses[-1][1] == pytest.approx(loss_at(40))
    assert model.lrs[0] == (1, pytest.approx(1e-5))
    assert model.it_s == 4.0 and model.eta_s is None  # finished clears the ETA
    assert model.mem["peak"] == 512 << 20
    assert model.device["kind"] == "cpu"
    assert [s.step for s in model.samples] == [20, 40]
    sample = model.samples[-1]
    assert sample.prompt == TRICKY_PROMPT
    assert all(p.is_absolute() and p.exists() for p in sample.paths)
    assert [c[0] for c in model.checkpoints] == [20, 40]
    assert model.errors[0].kind == "oom" and "gradient_checkpointing" in model.errors[0].hint
    assert model.finished is not None and model.finished["duration_s"] == 12.5
    # the log: the CLI's lines for phases, samples, checkpoints and the end, the engine's log
    # lines (a pruned checkpoint, debug) and the error, in the order they happened
    assert [msg.split(" ", 2)[:2] for _, msg in model.log] == [
        ["·", "loading_models"],
        ["·", "training"],
        ["samples", "at"],
        ["checkpoint", "checkpoints/step-000020"],
        ["samples", "at"],
        ["checkpoint", "checkpoints/step-000040"],
        ["removed", "old"],
        ["oom:", "CUDA"],
        ["·", "saving"],
        ["completed", "at"],
    ]
    assert model.log_count == 10
    assert any(TRICKY_PROMPT in msg for _, msg in model.log)


def test_status_follows_liveness() -> None:
    model = RunModel()
    assert model.display_status == "waiting"
    model.engine_alive = True
    assert model.display_status == "starting"
    model.apply([ev("run_started", run_id="r", total_steps=5)])
    assert model.display_status == "live" and model.is_live
    model.stopping = True
    assert model.display_status == "stopping"
    model.engine_alive = False  # engine gone without a finished event
    assert model.display_status == "crashed" and not model.is_live
    model.apply([ev("finished", status="stopped", step=3)])
    assert model.display_status == "stopped" and model.step == 3


def test_unknown_types_and_fields_are_ignored() -> None:
    model = RunModel()
    assert not model.apply([ev("telemetry", foo=1), {"no": "type"}])
    assert model.version == 0
    model.apply([ev("step", step=1, loss=0.5, lr=1e-4, brand_new_field={"x": 1})])
    assert model.step == 1 and list(model.losses) == [(1, 0.5)]
    # a step without a step number, a non-finite loss written by the writer as a string
    model.apply([ev("step", loss=0.1), ev("step", step=2, loss="nan", lr=1e-4)])
    assert model.step == 2
    assert len(model.losses) == 2 and model.losses[-1][1] != model.losses[-1][1]  # nan kept


def test_resumed_run_truncates_and_later_events_win() -> None:
    model = RunModel()
    model.apply([ev("run_started", run_id="r", total_steps=10, resumed_from_step=None)])
    model.apply([ev("step", step=s, loss=1.0, lr=1e-4) for s in range(1, 8)])
    # the engine crashed after step 7; the newest checkpoint was step 5
    model.apply([ev("run_started", run_id="r", total_steps=10, resumed_from_step=5)])
    assert [s for s, _ in model.losses] == [1, 2, 3, 4, 5]
    assert model.step == 5 and model.status == "running" and model.finished is None
    model.apply([ev("step", step=s, loss=0.5, lr=1e-4) for s in range(6, 11)])
    assert [s for s, _ in model.losses] == list(range(1, 11))
    assert dict(model.losses)[6] == 0.5
    # a step repeated without a run_started (e.g. two engines' lines interleaved): later wins
    model.apply([ev("step", step=9, loss=0.25, lr=1e-4)])
    assert model.losses[-1] == (9, 0.25) and len(model.losses) == 9


def test_torn_lines_through_event_tail(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    tail = EventTail(path)
    model = RunModel(run_dir=tmp_path)
    assert tail.poll() == []  # no file yet
    line = json.dumps(ev("step", step=1, loss=0.3, lr=1e-4))
    path.write_text(line[:20])  # a writer mid-line
    assert model.apply(tail.poll()) is False
    with open(path, "a") as fh:
        fh.write(line[20:] + "\n" + json.dumps(ev("gpu", util=50)) + "\n")
    assert model.apply(tail.poll())
    assert model.step == 1 and model.gpu == {"util": 50}


def test_follower_reads_in_chunks_and_sees_the_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    writer = EventWriter(run_dir / EVENTS_FILE)
    writer.emit("run_started", run_id="run", total_steps=20000, device={"kind": "cpu"})
    for step in range(1, 20001):
        writer.emit("step", step=step, loss=0.1, lr=1e-4, mem={"allocated": 1})
    writer.close()
    follower = RunFollower(run_dir)
    with RunLock(run_dir):
        batch = follower.read()
        assert batch.alive
        assert 0 < len(batch.events) < 20001  # one chunk, not the whole file at once
        follower.model.apply(batch.events)
        while True:
            more = follower.read().events
            if not more:
                break
            follower.model.apply(more)
    assert follower.model.step == 20000 and len(follower.model.losses) == 20000
    follower.poll()
    assert follower.model.engine_alive is False
    assert follower.model.display_status == "crashed"


def test_load_loss_history_resume(tmp_path: Path) -> None:
    w = EventWriter(tmp_path / EVENTS_FILE)
    w.emit("run_started", run_id="r", total_steps=6, resumed_from_step=None)
    for s in range(1, 5):
        w.emit("step", step=s, loss=float(s), lr=1e-4)
    w.emit("run_started", run_id="r", total_steps=6, resumed_from_step=2)
    for s in range(3, 7):
        w.emit("step", step=s, loss=10.0 + s, lr=1e-4)
    w.close()
    with open(tmp_path / EVENTS_FILE, "a") as fh:
        fh.write('{"v":1,"t":1,"type":"step","step":7,"lo')  # torn last line
    assert load_loss_history(tmp_path) == [
        (1, 1.0),
        (2, 2.0),
        (3, 13.0),
        (4, 14.0),
        (5, 15.0),
        (6, 16.0),
    ]


def test_delete_and_stop_refuse_what_they_must(tmp_path: Path) -> None:
    run_dir = write_finished_run(tmp_path)
    assert stop_run(run_dir) is False  # not live: nothing to signal
    with RunLock(run_dir):
        with pytest.raises(RuntimeError, match="live"):
            delete_run(run_dir)
        assert run_dir.exists()
    delete_run(run_dir)
    assert not run_dir.exists()
    with pytest.raises(FileNotFoundError):
        delete_run(run_dir)


def test_fmt_duration() -> None:
    assert fmt_duration(None) == "–"
    assert fmt_duration(42.4) == "42s"
    assert fmt_duration(73) == "1m 13s"
    assert fmt_duration(3700) == "1h 01m"
