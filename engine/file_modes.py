"""Written outputs get the permissions an ordinary file would.

safetensors >= 0.8 writes through a temporary file made with mode 0600 and renames it into place
(safetensors issue #782), and `tempfile.mkstemp`/`mkdtemp` give 0600/0700. Every weight file of
final/, a checkpoint or an export would then be readable by its owner alone: a ComfyUI or A1111
running as another user (a container, a service account) could not load it. The outputs are set
to what the user's umask gives a new file (0644 / 0755 under the usual 022) before they are
renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc), else by the
    set-and-restore dance."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_modes(path: Path) -> None:
    """`path` (a file, or a folder and everything under it) with the modes a new file and
    folder get from the umask; links are left alone."""
    mask = current_umask()
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    paths = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for p in paths:
        if p.is_symlink():
            continue
        os.chmod(p, dir_mode if p.is_dir() else file_mode)
