"""The app on a real pseudo-terminal: every way out leaves the terminal as it found it."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALT_SCREEN_OFF = b"\x1b[?1049l"
MOUSE_OFF = b"\x1b[?1000l"


def _read(fd: int, until: float, stop: bytes | None = None) -> bytes:
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
        if stop and stop in data:
            break
    return data


def spawn_app(cwd: Path, args: list[str], rows: int, cols: int) -> tuple[subprocess.Popen, int]:
    """`python -m dreambooth_tui ARGS` on a new pseudo-terminal of rows x cols; the process and
    the terminal's side to read and write."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, cols * 8, rows * 16))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dreambooth_tui", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    os.close(child)
    return proc, parent


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_signal_restores_the_terminal(tmp_path, signum):
    proc, parent = spawn_app(tmp_path, [], 24, 80)  # no verb: the app
    try:
        shown = _read(parent, time.monotonic() + 60, stop=b"dreambooth-tui")
        assert b"\x1b[?1049h" in shown and b"\x1b[?1000h" in shown, shown[-500:]
        time.sleep(1.0)  # drawn and idle
        proc.send_signal(signum)
        rest = _read(parent, time.monotonic() + 20)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    assert ALT_SCREEN_OFF in rest and MOUSE_OFF in rest, rest[-500:]
    assert code == 128 + signum, rest[-800:]
