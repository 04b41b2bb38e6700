"""Stopping a live run's engine: the signal, the checks that it reaches the run's own engine,
and the marks that keep two apps from sending it twice.

Torch-free: the TUI imports this module. See DESIGN.md, "Run directory".
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from engine.errors import DreamboothError
from engine.runlock import lock_owner_verified, process_start_time
from engine.runs import read_run_json


class StopRefusedError(DreamboothError, RuntimeError):
    """A stop that could reach the wrong process: one line saying why, nothing signalled."""

    kind, exit_code = "config", 2


STOP_MARK = ".stop-requested-"  # + the engine's pid: a stop was sent to that engine


def _first_stop(run_dir: Path, pid: int) -> bool:
    """True for the first stop request to engine `pid` (it creates the mark, atomically)."""
    try:
        fd = os.open(run_dir / f"{STOP_MARK}{pid}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError:
        return True  # a read-only run folder: no mark, signal anyway
    os.close(fd)
    return True


def clear_stop_marks(run_dir: str | Path) -> None:
    """An engine taking the run's lock forgets the stops sent to earlier engines."""
    for mark in Path(run_dir).glob(f"{STOP_MARK}*"):
        mark.unlink(missing_ok=True)


def stop_run(run_dir: str | Path, sig: int = signal.SIGTERM, once: bool = False) -> bool:
    """Ask a live run's engine to stop (SIGTERM: finish the step, checkpoint, exit 0).

    `once` (the apps): send it only if no stop was sent to this engine yet, and say True. A
    second SIGTERM makes the engine exit at once without its checkpoint: two apps on one run
    must not add up to that. (The headless command's second Ctrl-C means exactly that.)

    True: signalled; False: the run is not live (nothing to stop). Raises StopRefusedError
    where the signal could reach another process: the run's engine is on another machine
    (shared storage), or the pid cannot be shown to be the engine that started the run, or
    belongs to another user. The pid is the lock's owner as the kernel reports it
    (/proc/locks); only where the kernel cannot say is it the lock file's, and then it must be
    run.json's pid too, and the process must not be younger than the run's last start."""
    run_dir = Path(run_dir)
    pid, verified = lock_owner_verified(run_dir)
    if not pid:
        return False
    meta = read_run_json(run_dir)
    host = meta.get("host")
    if host and host != socket.gethostname():
        raise StopRefusedError(
            f"{run_dir.name}: its engine runs on {host}, not on this machine; stop it there"
        )
    if not verified:
        started = max(float(meta.get("started") or 0), float(meta.get("resumed") or 0))
        born = process_start_time(pid)
        if meta.get("pid") != pid or (born is not None and started and born > started + 2):
            raise StopRefusedError(
                f"{run_dir.name}: cannot tell that pid {pid} is this run's engine; "
                "stop it from where it runs"
            )
    marked = once and _first_stop(run_dir, pid)
    if once and not marked:
        return True  # already asked to stop; it is finishing its step and saving
    try:
        os.kill(pid, sig)
    except OSError as exc:
        if marked:
            (run_dir / f"{STOP_MARK}{pid}").unlink(missing_ok=True)
        if isinstance(exc, ProcessLookupError):
            return False  # it exited meanwhile: nothing to stop
        if not isinstance(exc, PermissionError):
            raise
        raise StopRefusedError(
            f"{run_dir.name}: pid {pid} belongs to another user; stop it as that user"
        ) from None
    return True
