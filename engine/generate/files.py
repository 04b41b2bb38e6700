"""The files generate writes: output folder, image names, PNG text chunks, sidecars and the grid.

PIL only (no torch): the hub's samples grid and the TUI-side tests use these too.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.generate.errors import GenerateError
from engine.runs import new_folder, slugify

GRID_FILE = "grid.png"


def default_output_dir(base: Path, now: datetime | None = None) -> Path:
    """<base>/<UTC yyyymmdd-hhmmss>, with -2, -3, ... where that folder exists already."""
    now = now or datetime.now(timezone.utc)
    folder = new_folder(base, f"{now:%Y%m%d-%H%M%S}")
    if folder is None:
        raise GenerateError(f"{base}: could not create a new output folder")
    return folder


def free_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path``, or ``stem-2.ext``, ``stem-3.ext``... : never an existing file."""
    taken = taken or set()
    candidate, n = path, 1
    while candidate.exists() or candidate.with_suffix(".json").exists() or candidate in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def image_name(index: int, prompt: str, seed: int) -> str:
    return f"{index:03d}-{slugify(prompt, 40)}-s{seed}.png"


def save_png(image, path: Path, metadata: dict[str, Any]) -> None:
    """Write ``image`` with every metadata value in a PNG text chunk (iTXt where not Latin-1)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in metadata.items():
        if value is None:
            continue
        info.add_text(key, value if isinstance(value, str) else json.dumps(value))
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)  # whole or absent: the TUI may read it as soon as it appears


def write_image(image, path: Path, metadata: dict[str, Any]) -> None:
    """The PNG (settings in its text chunks) and its .json sidecar (the same settings)."""
    save_png(image, path, metadata)
    path.with_suffix(".json").write_text(
        json.dumps({"file": path.name, **metadata}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


def png_metadata(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG (what save_png wrote)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return dict(getattr(im, "text", {}) or {})


def image_grid(images: list, cols: int | None = None, pad: int = 2, background=(24, 24, 24)):
    """A near-square grid of PIL images (or paths), each cell the size of the largest."""
    from PIL import Image

    loaded = []
    for im in images:
        if isinstance(im, (str, Path)):
            with Image.open(im) as f:
                im = f.convert("RGB")
        loaded.append(im)
    if not loaded:
        raise ValueError("no images for a grid")
    n = len(loaded)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w = max(im.width for im in loaded)
    h = max(im.height for im in loaded)
    grid = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), background)
    for i, im in enumerate(loaded):
        r, c = divmod(i, cols)
        grid.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return grid
