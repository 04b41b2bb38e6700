"""Fault injection for tests of the failure paths (NaN loss, disk full while saving).

DREAMBOOTH_TUI_FAULTS="nan@5,disk@10,oom@3" makes step 5's loss NaN, the checkpoint write at
step 10 fail with ENOSPC and step 3 run out of memory; "hang@4" stops the checkpoint write of
step 4 halfway (its weights written, the rest not) until the process is killed (at the last
step: final/'s write, its files in .tmp-final, not yet renamed);
"sample_oom@4" makes the validation samples of step 4 run out of memory. Unset in normal use;
read once.
"""

from __future__ import annotations

import errno
import os
import time


def _parse() -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for item in os.environ.get("DREAMBOOTH_TUI_FAULTS", "").split(","):
        name, _, step = item.strip().partition("@")
        if name and step.isdigit():
            out.setdefault(name, set()).add(int(step))
    return out


FAULTS = _parse()


def nan_at(step: int) -> bool:
    return step in FAULTS.get("nan", ())


def check_disk(step: int) -> None:
    if step in FAULTS.get("disk", ()):
        raise OSError(errno.ENOSPC, "No space left on device (injected)")


def check_oom(step: int) -> None:
    if step in FAULTS.get("oom", ()):
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


def hang_in_save(step: int) -> None:
    while step in FAULTS.get("hang", ()):
        time.sleep(1)


def check_sample(step: int) -> None:
    if step in FAULTS.get("sample_oom", ()):
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory while sampling (injected)")
