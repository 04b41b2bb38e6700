"""Export outputs written whole and never over an existing file or folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.export.request import output_taken
from engine.file_modes import usual_modes


def save_safetensors(tensors: dict, output: Path, metadata: dict[str, str] | None = None) -> None:
    """Write to a temp file beside `output`, then link it into place: a crash leaves no partial
    file at `output`, and a file that appeared there meanwhile is kept (link refuses)."""
    from safetensors.torch import save_file

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{output.name}-", dir=output.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        usual_modes(Path(tmp))  # safetensors and mkstemp write 0600
        try:
            os.link(tmp, output)
        except FileExistsError:
            raise output_taken(output) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_folder(write: Callable[[Path], None], output: Path) -> None:
    """`write(folder)` into a temp folder beside `output`, then rename it into place."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{output.name}-", dir=output.parent))
    try:
        write(tmp)
        usual_modes(tmp)  # mkdtemp is 0700, safetensors files 0600
        if output.exists() or output.is_symlink():
            raise output_taken(output)
        os.rename(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
