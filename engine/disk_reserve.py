"""A little disk space held back for a run's last words.

When the disk fills, the engine still has to say so: the `error` and `finished` events and
run.json's end are writes too, and on a full disk they would fail, leaving run.json `running`
(shown as crashed, with the out-of-memory hint) and no error anywhere. So the engine holds
RUN_DIR/.disk-reserve (RESERVE_BYTES, really allocated) while it runs and gives it back before
it reports a failure and at its end. A killed engine leaves the file; the next one reuses it.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

RESERVE_FILE = ".disk-reserve"
RESERVE_BYTES = 512 << 10


class DiskReserve:
    """RUN_DIR/.disk-reserve: `take` at the start (False when there is no room even for it),
    `release` before the last writes."""

    def __init__(self, run_dir: Path, size: int = RESERVE_BYTES) -> None:
        self.path = Path(run_dir) / RESERVE_FILE
        self.size = size

    def take(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:  # a filesystem without fallocate: write the bytes
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise
                os.lseek(fd, 0, os.SEEK_SET)
                zeros = bytes(64 << 10)
                for _ in range(0, self.size, len(zeros)):
                    os.write(fd, zeros)
                os.fsync(fd)
        except OSError:
            os.close(fd)
            self.release()
            return False
        os.close(fd)
        return True

    def release(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
