"""The lock that keeps one engine per run, and the liveness probe that never disturbs it.

An engine holds an exclusive `flock` on RUN_DIR/engine.lock for its whole life (the kernel drops
it when the process dies, SIGKILL included) and writes its pid into the file. "Live" means that
lock is held.

The app asks "is this run live?" every second or so. Taking the lock to find out (even a shared
lock, for a microsecond) would make an engine that starts at that moment fail with "already in
use". So the probe does not take the lock where the kernel can be asked instead: on Linux it
reads /proc/locks. Only where that cannot answer (no /proc, or a filesystem whose numbers
/proc/locks does not match) does it fall back to a non-blocking shared lock; the engine retries
its exclusive lock for a moment before it gives up, so such a probe cannot win against it.

Torch-free: the TUI imports this module (through engine.runs).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from engine.errors import DreamboothError

LOCK_FILE = "engine.lock"
PROC_LOCKS = "/proc/locks"
ACQUIRE_PATIENCE_S = 2.0  # how long an engine retries a lock that a probe may hold briefly


class RunLockedError(DreamboothError, RuntimeError):
    """The run is held by another engine: nothing was done (exit 2)."""

    kind, exit_code = "config", 2

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.run_dir, self.pid = run_dir, pid
        holder = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"{run_dir}: already in use by a running engine ({holder}); "
            "stop it first or pick another run"
        )


class RunLock:
    """An exclusive flock on RUN_DIR/engine.lock, released by the kernel if the process dies."""

    def __init__(self, run_dir: str | Path, patience_s: float = ACQUIRE_PATIENCE_S) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.patience_s = patience_s
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.patience_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                busy = exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
                if busy and time.monotonic() < deadline:
                    time.sleep(0.01)  # a liveness probe holds it for microseconds at most
                    continue
                os.close(fd)
                if busy:
                    raise RunLockedError(self.run_dir, lock_holder(self.run_dir)) from None
                raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        from engine.runstop import clear_stop_marks  # (engine.runstop imports this module)

        clear_stop_marks(self.run_dir)  # stops sent to an earlier engine of this run
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(run_dir: str | Path) -> int | None:
    """The pid the last engine wrote into the lock file (it may have exited since)."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_proc_locks(text: str) -> list[tuple[int, int, int, int]]:
    """(pid, major, minor, inode) of every granted flock in /proc/locks' text.

    A line reads `1: FLOCK  ADVISORY  WRITE 1234 fe:00:2146516 0 EOF`; waiters (`1: -> FLOCK
    ...`) hold nothing and are skipped. Device numbers are hex, the inode decimal.
    """
    held = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            held.append((pid, int(major, 16), int(minor, 16), int(inode)))
        except ValueError:
            continue
    return held


def _proc_locks_owner(path: Path) -> tuple[bool | None, int | None]:
    """What /proc/locks says about PATH: (True, pid) held by pid; (False, None) not held;
    (None, None) it cannot tell (no /proc/locks, or the file's last holder is alive and holds
    a flock that does not match the file: a filesystem that reports other numbers)."""
    try:
        st = os.stat(path)
        held = parse_proc_locks(Path(PROC_LOCKS).read_text())
    except OSError:
        return None, None
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    for pid, major, minor, inode in held:
        if inode == st.st_ino and (major, minor) == dev:
            return True, pid
    holder = lock_holder(path.parent)
    if holder is not None and pid_alive(holder) and any(h[0] == holder for h in held):
        for pid, _, _, inode in held:
            if pid == holder and inode == st.st_ino:  # overlayfs: another device number
                return True, pid
        return None, None
    return False, None


def _probe_with_shared_lock(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:  # held; any other error (no flock on this filesystem) tells nothing
        return exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def is_locked(run_dir: str | Path) -> bool:
    """True while an engine holds the run's lock (i.e. the run is live); never takes the lock
    while an engine could be acquiring it, where /proc/locks can answer."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    held, _ = _proc_locks_owner(path)
    if held is not None and not (held is False and _engine_elsewhere(path.parent)):
        return held
    return _probe_with_shared_lock(path)


def _engine_elsewhere(run_dir: Path) -> bool:
    """run.json says the run's engine is on another machine (shared storage): /proc/locks
    lists only this machine's locks, so only the lock itself can tell whether it is live."""
    try:
        host = json.loads((run_dir / "run.json").read_text(encoding="utf-8")).get("host")
    except (OSError, ValueError, AttributeError):
        return False
    return bool(host) and host != socket.gethostname()


def lock_owner_verified(run_dir: str | Path) -> tuple[int | None, bool]:
    """(the lock owner's pid, whether the kernel named it): True when /proc/locks showed that
    pid holding the lock; False when the pid is only what the lock file says."""
    held, pid = _proc_locks_owner(Path(run_dir) / LOCK_FILE)
    if held and pid:
        return pid, True
    if held is False and not _engine_elsewhere(Path(run_dir)):
        return None, True
    return (lock_holder(run_dir) if is_locked(run_dir) else None), False


def process_start_time(pid: int) -> float | None:
    """When process pid started (unix seconds), from /proc; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        btime = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def lock_owner(run_dir: str | Path) -> int | None:
    """The pid of the engine holding the run's lock now, or None when the run is not live.

    /proc/locks names it from the moment the lock is taken; elsewhere the pid the engine writes
    into the lock file just after taking it."""
    held, pid = _proc_locks_owner(Path(run_dir) / LOCK_FILE)
    if held:
        return pid or lock_holder(run_dir)
    return lock_holder(run_dir) if is_locked(run_dir) else None
