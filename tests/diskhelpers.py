"""A real small disk for the full-disk tests: a tmpfs mounted for the test (skipped with the
reason where it cannot be: not root, or a container without CAP_SYS_ADMIN), filled for real so
the engine's next write meets ENOSPC from the kernel."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SKIP_REASON = "cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)"


def mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def small_disk(where: Path, size: str = "64m") -> Iterator[Path]:
    """A tmpfs of `size` at `where` while in the block; pytest.skip where none can be mounted."""
    if os.geteuid() != 0 or not mount_tmpfs(where, size):
        pytest.skip(SKIP_REASON)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def fill(folder: Path, leave: int, name: str = "filler.bin") -> Path:
    """Fill the filesystem of `folder` until `leave` bytes are free (0: until the kernel says
    ENOSPC). A running engine may write while this fills: where the kernel says ENOSPC first,
    the filler gives `leave` bytes back, so the slack is there either way."""
    filler = folder / name
    chunk = b"\0" * (1 << 20)
    with open(filler, "ab", buffering=0) as fh:
        try:
            if not leave:
                while True:
                    fh.write(chunk)
            # free space is read again each time: the engine's own writes count too
            while (remaining := free_bytes(folder) - leave) > 0:
                fh.write(chunk[: min(len(chunk), remaining)])
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            if leave:
                fh.truncate(max(0, os.fstat(fh.fileno()).st_size - leave))
    return filler


def fill_page(path: Path) -> None:
    """Use up the room left in the last page of a file that only grows by appends (tmpfs gives
    out whole pages), with blank lines every events.jsonl reader skips; on a full disk the
    file's next append then fails."""
    with open(path, "ab", buffering=0) as fh:
        try:
            while fh.write(b"\n" * (-path.stat().st_size % 4096 or 1)):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
