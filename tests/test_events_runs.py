"""The event stream and run registry contracts (torch-free)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.events import EventTail, EventWriter, parse_line, read_events
from engine.runs import (
    RunLock,
    RunLockedError,
    create_run_dir,
    is_locked,
    latest_resumable,
    list_runs,
    new_run_id,
    run_info,
    write_run_json,
)


def test_writer_lines_parse_and_carry_version_time_type(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventWriter(path) as w:
        w.emit("step", step=1, loss=0.5, mem={"allocated": 1})
        w.emit("step", step=2, loss=float("nan"))
        w.log("hello [bold]x[/]")
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    assert all(e["v"] == 1 and isinstance(e["t"], float) for e in events)
    assert events[0]["type"] == "step" and events[0]["mem"] == {"allocated": 1}
    assert events[1]["loss"] == "nan"  # still valid JSON
    assert events[2]["message"] == "hello [bold]x[/]"


def test_writer_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"v":1,"t":1.0,"type":"step","step":1}\n{"v":1,"t":2.0,"ty')
    with EventWriter(path) as w:
        w.emit("finished", status="stopped", step=1)
    events = read_events(path)
    assert [e["type"] for e in events] == ["step", "finished"]


def test_reader_skips_torn_last_line_and_ignores_unknown(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"v":1,"t":1.0,"type":"future_thing","x":1}\n'
        '{"v":1,"t":1.0,"type":"step","step":1,"new_field":[1,2]}\n'
        "garbage\n"
        '{"v":1,"t":2.0,"type":"step","st'
    )
    events = read_events(path)
    assert [e["type"] for e in events] == ["future_thing", "step"]
    assert events[1]["new_field"] == [1, 2]
    assert parse_line("[1,2]") is None and parse_line("") is None


def test_tail_returns_only_complete_new_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.poll() == []  # no file yet
    with open(path, "w") as fh:
        fh.write('{"v":1,"t":1,"type":"phase","name":"training"}\n{"v":1,"t":1,"type":"st')
        fh.flush()
        assert [e["type"] for e in tail.poll()] == ["phase"]
        fh.write('ep","step":1}\n')
        fh.flush()
        assert [e.get("step") for e in tail.poll()] == [1]
        assert tail.poll() == []


def test_run_ids_and_dirs(tmp_path):
    assert new_run_id("A photo of SKS dog!").endswith("-a-photo-of-sks-dog")
    a = create_run_dir(tmp_path, "x")
    b = create_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


def test_lock_refuses_second_holder_and_names_pid(tmp_path):
    run = create_run_dir(tmp_path, "x")
    with RunLock(run):
        assert is_locked(run)
        # another process tries: refused with our pid
        code = (
            "import sys; from engine.runs import RunLock, RunLockedError\n"
            "try:\n    RunLock(sys.argv[1]).acquire()\n"
            "except RunLockedError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(run)], capture_output=True, text=True, cwd=os.getcwd()
        )
        assert out.returncode == 3
        assert f"pid {os.getpid()}" in out.stdout
    assert not is_locked(run)
    with pytest.raises(RunLockedError):
        with RunLock(run):
            RunLock(run).acquire()


def test_registry_states_and_latest_resumable(tmp_path):
    old = create_run_dir(tmp_path, "old")
    write_run_json(
        old,
        {
            "run_id": old.name,
            "status": "completed",
            "started": 100.0,
            "ended": 160.0,
            "total_steps": 10,
        },
    )
    with EventWriter(old / "events.jsonl") as w:
        w.emit("step", step=10, loss=0.25)
    crashed = create_run_dir(tmp_path, "crashed")
    write_run_json(
        crashed,
        {
            "run_id": crashed.name,
            "status": "running",
            "started": 200.0,
            "pid": 999999,
            "total_steps": 10,
        },
    )
    runs = list_runs(tmp_path)
    assert [r.run_dir for r in runs] == [crashed, old]
    assert runs[1].state == "completed" and runs[1].step == 10 and runs[1].last_loss == 0.25
    assert runs[1].duration == 60.0
    assert runs[0].state == "crashed" and runs[0].resumable
    assert latest_resumable(tmp_path).run_dir == crashed
    with RunLock(crashed):
        assert run_info(crashed).state == "live"
        assert latest_resumable(tmp_path) is None
