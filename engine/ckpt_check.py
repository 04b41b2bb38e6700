"""Is a checkpoint folder whole? Checked from the files' own structure, without loading them.

A checkpoint is written to a temp folder and renamed, so it is whole or absent, where rename is
atomic and the data reached the disk. On a filesystem that does neither (some network and FUSE
mounts), or after a power cut, a `step-NNNNNN/` folder can hold files cut short. `--resume
latest` then takes the newest whole checkpoint and says which it skipped and why.

Standard library only (no torch): a safetensors file is an 8-byte header length, a JSON header
and the tensor data up to the largest end offset the header names; a `.pt` file (torch.save) is
a zip archive whose central directory is at its very end.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import zipfile
from pathlib import Path

REQUIRED = ("state.json", "unet.safetensors", "optimizer.pt", "scheduler.pt")


def _size_text(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{path.name} is cut short ({_size_text(size)})"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return f"{path.name} is cut short ({_size_text(size)}, its header alone is longer)"
        try:
            header = json.loads(fh.read(n))
        except ValueError:
            return f"{path.name} has an unreadable header"
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        return f"{path.name} is cut short ({_size_text(size)} of {_size_text(expected)})"
    return None


def _pt_problem(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.header_offset + info.compress_size > size:
                    return f"{path.name} is cut short ({_size_text(size)})"
    except (zipfile.BadZipFile, OSError, ValueError):
        return f"{path.name} is cut short or unreadable ({_size_text(size)})"
    return None


def incomplete_reason(folder: Path) -> str | None:
    """None for a whole checkpoint folder, else why it is not (one short phrase)."""
    for name in REQUIRED:
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        if not isinstance(state.get("step"), int):
            return "state.json has no step"
        if state.get("ema") and not (folder / "ema-unet.safetensors").is_file():
            return "ema-unet.safetensors is missing"
    except (OSError, ValueError, AttributeError):
        return "state.json is cut short or unreadable"
    try:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".safetensors":
                problem = _safetensors_problem(path)
            elif path.suffix == ".pt":
                problem = _pt_problem(path)
            else:
                continue
            if problem:
                return problem
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def latest_whole(found: list[tuple[int, Path]]) -> tuple[Path | None, list[tuple[Path, str]]]:
    """From (step, folder) pairs sorted by step: the newest whole checkpoint, and the newer
    ones skipped with the reason for each."""
    skipped: list[tuple[Path, str]] = []
    for _, folder in reversed(found):
        reason = incomplete_reason(folder)
        if reason is None:
            return folder, skipped
        skipped.append((folder, reason))
    return None, skipped


_FULL_BELOW = 1 << 20  # free bytes under which a failed write is taken for a full disk


def disk_full_error(exc: BaseException, folder: Path) -> OSError | None:
    """A full disk as an OSError(ENOSPC), however the writer reported it, else None.

    safetensors raises SafetensorError("... No space left on device (os error 28)") and
    torch.save a RuntimeError ("unexpected pos ...") where the kernel said ENOSPC; an OSError
    is already what callers handle. Call it before the partial files are removed: the disk is
    told full by its free space then."""
    if isinstance(exc, OSError) or not isinstance(exc, Exception):
        return None
    text = str(exc)
    full = "No space left on device" in text or "os error 28" in text
    if not full:
        try:
            st = os.statvfs(folder)
            full = st.f_bavail * st.f_frsize < _FULL_BELOW
        except OSError:
            full = False
    if not full:
        return None
    return OSError(errno.ENOSPC, f"No space left on device ({type(exc).__name__})")
