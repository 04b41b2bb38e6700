"""An image file and its caption, the protocol to draw it with, and its decoding to a
thumbnail the size of some terminal cells (Pillow, in a worker thread)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from tui.widgets.image_protocol import get_cell_size

__all__ = ["IMAGES_ENV", "ImageItem", "decode_thumbnail", "protocol_for"]

IMAGES_ENV = "DREAMBOOTH_TUI_IMAGES"


def protocol_for(app: object) -> str:
    state = getattr(app, "state", None)
    forced = getattr(state, "image_protocol", None) or "auto"
    if forced != "auto":
        return forced
    env = (os.environ.get(IMAGES_ENV) or "auto").strip().lower()
    return {"tgp": "kitty", "half-cell": "halfcell"}.get(env, env)


def decode_thumbnail(path: Path, cols: int, rows: int) -> PILImage.Image:
    """The image at `path`, RGB, shrunk to fit `cols` x `rows` terminal cells at full pixel
    resolution (so Kitty/Sixel stay sharp and half-cells scale a small image). Raises
    engine.images.ImageLoadError for an unusable file."""
    from engine.images import open_rgb

    image = open_rgb(path)
    cell = get_cell_size()
    box = (max(1, cols * cell.width), max(1, rows * cell.height))
    if image.width > box[0] or image.height > box[1]:
        image.thumbnail(box, PILImage.Resampling.LANCZOS)
    return image


@dataclass(frozen=True)
class ImageItem:
    path: Path
    caption: str = ""
