"""final/ replaced whole, and the training modules' placement kept while it is written.

A run's final/ is written into `.tmp-final`, then swapped in: the previous final/ (a resumed run
that had finished before) is moved aside to `.old-final` and deleted only once the new one is in
place. A crash at any moment leaves a complete final/, or, between the two renames, the
previous one at `.old-final`, which the next replace (or :func:`recover_final`) puts back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch

FINAL = "final"


def aside_path(dest: Path) -> Path:
    return dest.with_name(f".old-{dest.name}")


def recover_final(dest: Path) -> None:
    """Undo a swap a crash interrupted: the previous folder back at dest, or the stale copy gone."""
    aside = aside_path(dest)
    if not aside.exists():
        return
    if dest.exists():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(aside, dest)


def fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def replace_folder(new: Path, dest: Path) -> None:
    """Put the complete folder `new` at `dest`; an existing `dest` is deleted only after."""
    recover_final(dest)
    if not dest.exists():
        os.replace(new, dest)
        return
    aside = aside_path(dest)
    os.replace(dest, aside)
    try:
        os.replace(new, dest)
    except BaseException:
        os.replace(aside, dest)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def on_cpu_fp32(*modules: torch.nn.Module) -> Iterator[None]:
    """Modules on the CPU in fp32 for saving, then back where and as they were (sampling and a
    multi-process barrier still follow the save)."""
    places = []
    for m in modules:
        p = next(m.parameters())
        places.append((m, p.device, p.dtype))
    try:
        for m in modules:
            m.to("cpu", dtype=torch.float32)
        yield
    finally:
        for m, device, dtype in places:
            m.to(device, dtype=dtype)
