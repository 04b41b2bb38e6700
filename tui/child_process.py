"""Running a child process from a worker thread without tying the app to it.

`run_polled` is `subprocess.run(capture_output=True)` for a worker: it polls the child, and
when the worker is cancelled (the app quits, the screen goes away) it stops the child
(SIGTERM, then SIGKILL after a grace) and returns at once, instead of blocking the thread, and
with it the app's exit, until the child ends (a Hub upload can take an hour).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable

__all__ = ["CANCELLED", "run_polled", "stop_child"]

CANCELLED = -15  # the return code reported for a child stopped because of a cancellation


def run_polled(
    cmd: list[str],
    cancelled: Callable[[], bool],
    *,
    env: dict[str, str] | None = None,
    poll_s: float = 0.1,
    grace_s: float = 5.0,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, str]:
    """(return code, stdout + stderr). Output goes to a temporary file, not a pipe, so a
    chatty child never blocks on a full pipe while nobody reads it. `progress` gets the
    child's newest output line whenever it printed more."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        seen = 0
        try:
            while proc.poll() is None:
                if cancelled() or (deadline is not None and time.monotonic() > deadline):
                    stop_child(proc, grace_s)
                    break
                if progress is not None:
                    seen = _report(out.fileno(), seen, progress)
                time.sleep(poll_s)
        finally:
            if proc.poll() is None:  # an exception in the loop: never leave it running
                stop_child(proc, grace_s)
        out.seek(0)
        output = out.read().decode("utf-8", errors="replace")
    code = proc.returncode
    return (CANCELLED if code is None else code), output


def _report(fd: int, seen: int, progress: Callable[[str], None]) -> int:
    """progress(the newest line) when the output grew past `seen`; the new size. pread: the
    child shares the file offset, which a seek here would move under its writes."""
    size = os.fstat(fd).st_size
    if size > seen:
        tail = os.pread(fd, 4096, max(0, size - 4096)).decode("utf-8", errors="replace")
        lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
        if lines:
            progress(lines[-1])
    return size


def stop_child(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; returns once it has ended."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
