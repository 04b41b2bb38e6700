"""The run lock against the app's liveness probe: a probe never makes a starting engine fail with
"already in use" (real processes on both sides), and the lock's owner is known at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.runlock import LOCK_FILE, is_locked, lock_owner, parse_proc_locks
from engine.runs import create_run_dir, write_run_json
from engine.runstop import StopRefusedError, stop_run

ROOT = Path(__file__).resolve().parent.parent

PROBE_LOOP = """
import sys, time
import engine.runlock
from engine.runs import is_locked
if sys.argv[3] == "no-proc":  # as on a system without /proc/locks (macOS)
    engine.runlock.PROC_LOCKS = "/nonexistent/locks"
end = time.monotonic() + float(sys.argv[2])
n = 0
print("probing", flush=True)
while time.monotonic() < end:
    is_locked(sys.argv[1]); n += 1
print(n)
"""

# Engine starts while the app probes: take the lock with the given patience (0: no retry), release
# it, and (gone=1) leave the file as an engine that has exited leaves it; print the refusals.
ACQUIRE = """
import sys
from pathlib import Path
from engine.runs import LOCK_FILE, RunLock, RunLockedError
lock = RunLock(sys.argv[1]); lock.patience_s = float(sys.argv[2])
failed = 0
for _ in range(int(sys.argv[3])):
    try:
        lock.acquire(); lock.release()
    except RunLockedError:
        failed += 1
    if sys.argv[4] == "1":
        (Path(sys.argv[1]) / LOCK_FILE).write_text("999999999")  # its engine has exited
print(failed)
"""


def _py(code: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _start_probes(run: Path, seconds: float, mode: str = "proc") -> list[subprocess.Popen]:
    probes = [_py(PROBE_LOOP, run, seconds, mode) for _ in range(2)]
    for p in probes:
        assert p.stdout.readline().strip() == "probing"
    return probes


def test_probe_loop_never_takes_the_lock_from_a_starting_engine(tmp_path):
    """1000 engine starts with no patience at all, each after the previous engine exited, while
    two probes spin: /proc/locks answers, the probes never take the lock, nothing is refused."""
    run = create_run_dir(tmp_path, "x")
    probes = _start_probes(run, 60)
    acquirer = _py(ACQUIRE, run, 0, 1000, 1)
    failed = int(acquirer.communicate(timeout=120)[0].strip())
    for p in probes:
        p.kill()
        p.wait()
    assert failed == 0


def test_probe_loop_without_proc_locks_never_fails_engine_acquisitions(tmp_path):
    """Where /proc/locks cannot answer, the probes take a shared lock for a moment; 1000
    acquisitions with the engine's patience against two such spinning probes: none refused."""
    run = create_run_dir(tmp_path, "x")
    probes = _start_probes(run, 60, "no-proc")
    acquirer = _py(ACQUIRE, run, 2.0, 1000, 0)
    failed = int(acquirer.communicate(timeout=120)[0].strip())
    for p in probes:
        p.kill()
        p.wait()
    assert failed == 0


def test_lock_owner_is_known_before_the_engine_writes_its_pid(tmp_path):
    run = create_run_dir(tmp_path, "x")
    (run / LOCK_FILE).write_text("999999999")  # a previous engine's pid, long gone
    holder = _py(
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n",
        run / LOCK_FILE,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(run)
        assert lock_owner(run) == holder.pid  # not the stale pid in the file
        assert stop_run(run)  # SIGTERM reaches the process that holds the lock
        assert holder.wait(timeout=30) == -15
    finally:
        holder.kill()
    assert not is_locked(run) and lock_owner(run) is None


def test_parse_proc_locks_skips_waiters_and_other_kinds():
    text = (
        "1: POSIX  ADVISORY  WRITE 10 fe:00:11 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 1234 fe:01:2146516 0 EOF\n"
        "2: -> FLOCK  ADVISORY  WRITE 99 fe:01:2146516 0 EOF\n"
        "3: OFDLCK ADVISORY  READ  -1 00:05:7 0 EOF\n"
    )
    assert parse_proc_locks(text) == [(1234, 0xFE, 0x01, 2146516)]


def _hold_lock_without_pid(run: Path) -> subprocess.Popen:
    holder = _py(
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n",
        run / LOCK_FILE,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_stop_refuses_a_run_whose_engine_is_on_another_machine(tmp_path):
    run = create_run_dir(tmp_path, "x")
    holder = _hold_lock_without_pid(run)
    try:
        write_run_json(run, {"host": "gpu-node-7", "pid": holder.pid, "status": "running"})
        with pytest.raises(StopRefusedError, match="gpu-node-7, not on this machine"):
            stop_run(run)
        assert holder.poll() is None  # nothing was signalled
    finally:
        holder.kill()
        holder.wait()


def test_stop_without_proc_locks_never_signals_a_pid_that_is_not_the_engine(tmp_path, monkeypatch):
    """Where the kernel cannot name the lock's owner, the lock file's pid must be run.json's and
    no younger than the run's start: a recycled pid (here an unrelated process started after
    the run) gets no signal."""
    monkeypatch.setattr("engine.runlock.PROC_LOCKS", "/nonexistent/locks")
    run = create_run_dir(tmp_path, "x")
    holder = _hold_lock_without_pid(run)
    bystander = _py("import time; print('up', flush=True); time.sleep(60)")
    try:
        assert bystander.stdout.readline().strip() == "up"
        (run / LOCK_FILE).write_text(str(bystander.pid))
        write_run_json(
            run,
            {"host": socket.gethostname(), "pid": bystander.pid, "started": time.time() - 600},
        )
        with pytest.raises(StopRefusedError, match="cannot tell that pid"):
            stop_run(run)
        assert bystander.poll() is None and holder.poll() is None
    finally:
        for p in (holder, bystander):
            p.kill()
            p.wait()


def test_headless_stop_says_why_it_refused_and_signals_nothing(tmp_path):
    from engine.launch import HeadlessStop

    run = create_run_dir(tmp_path, "x")
    holder = _hold_lock_without_pid(run)
    try:
        write_run_json(run, {"host": "gpu-node-7", "pid": holder.pid, "status": "running"})
        said: list[str] = []
        HeadlessStop(run, holder, said.append).handle(signal.SIGINT)
        assert len(said) == 1 and said[0].startswith("not stopped: ") and "gpu-node-7" in said[0]
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
