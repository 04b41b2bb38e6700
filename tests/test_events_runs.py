"""The event stream and run registry contracts (torch-free)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from engine.events import EventTail, EventWriter, parse_line, read_events
from engine.runs import (
    RunLock,
    RunLockedError,
    create_run_dir,
    finish_record,
    is_locked,
    latest_resumable,
    list_runs,
    new_run_id,
    read_run_json,
    run_duration,
    run_info,
    start_record,
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


def test_run_duration_sums_engine_sessions_not_the_gap(tmp_path, monkeypatch):
    run_dir = create_run_dir(tmp_path, "resumed")
    clock = iter([100.0, 1000.0])  # the first session starts at 100, the resume at 1000
    monkeypatch.setattr("engine.runs.time.time", lambda: next(clock))
    start_record(run_dir, [], 10)
    assert finish_record(run_dir, 160.0, status="stopped", step=4) == 60.0
    assert run_info(run_dir).duration == 60.0
    start_record(run_dir, [], 10)  # resumed 840 s after the stop: not counted
    assert run_duration(read_run_json(run_dir), now=1010.0) == 70.0  # live: up to now
    assert finish_record(run_dir, 1030.0, status="completed", step=10) == 90.0
    meta = read_run_json(run_dir)
    assert meta["duration_s"] == 90.0 and meta["started"] == 100.0 and meta["ended"] == 1030.0
    assert run_info(run_dir).duration == 90.0
    # a run.json written before duration_s existed: ended - started, as before
    assert run_duration({"started": 5.0, "ended": 65.0}) == 60.0


def _runs_cli(output_dir, tty_columns: int | None = None) -> str:
    """`python -m engine runs` piped, or on a pseudo-terminal `tty_columns` wide."""
    argv = [sys.executable, "-m", "engine", "runs", "--output-dir", str(output_dir)]
    if tty_columns is None:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    import fcntl
    import pty
    import struct
    import termios

    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, tty_columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.run(argv, stdout=child, stderr=subprocess.PIPE, env=env, check=True)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(parent, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(parent)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


def test_runs_cli_never_cuts_run_ids(tmp_path):
    ids = []
    for i, name in enumerate(["dreambooth-demo-one", "dreambooth-demo-two"]):
        run_dir = tmp_path / f"20261129-05320{i}-{name}"
        run_dir.mkdir()
        write_run_json(
            run_dir,
            {"run_id": run_dir.name, "status": "completed", "started": 100.0 + i, "ended": 294.0},
        )
        ids.append(run_dir.name)
    piped = _runs_cli(tmp_path).splitlines()
    # piped: plain tab-separated lines, no table drawing, every id whole
    assert piped[0].split("\t") == ["run", "status", "step", "loss", "started", "duration"]
    assert sorted(line.split("\t")[0] for line in piped[1:]) == sorted(ids)
    assert piped[1].split("\t")[-1] == "3m 13s"
    assert not any(ch in "".join(piped) for ch in "┃│━─…")
    # a terminal 80 columns wide: the table wraps other columns, never the ids
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", _runs_cli(tmp_path, tty_columns=80))
    assert all(run_id in shown for run_id in ids), shown
    assert "…" not in shown and max(len(line) for line in shown.splitlines()) <= 80
