"""A grid of small image previews with their file names, for the Data screen.

The images come in already decoded and shrunk (`make_thumbnail`, run in a worker thread); the
grid only places them. Names are shown literally.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from tui.widgets.image_protocol import image_widget_class

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["THUMB_PIXELS", "Thumbnail", "ThumbnailGrid", "make_thumbnail"]

THUMB_PIXELS = 160  # decoded size: enough for Kitty/Sixel at 14 cells, tiny in memory
CELL_WIDTH = 16  # columns per thumbnail, its border and gap included
_BACKGROUND = (24, 24, 24)


def make_thumbnail(path: Path, size: int = THUMB_PIXELS) -> PILImage.Image | None:
    """A square RGB preview of the image at `path` (letterboxed), or None when unreadable.

    Blocking (file I/O and decoding): call it from a worker thread.
    """
    from PIL import Image as PILImage  # here, not at import: PIL stays out of the first frame
    from PIL import ImageOps

    try:
        with PILImage.open(path) as im:
            im.draft("RGB", (size, size))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA", "P"):
                im = im.convert("RGBA")
                canvas = PILImage.new("RGBA", im.size, (255, 255, 255, 255))
                im = PILImage.alpha_composite(canvas, im)
            im = ImageOps.contain(im.convert("RGB"), (size, size), PILImage.Resampling.LANCZOS)
    except Exception:  # noqa: BLE001 - anything Pillow raises means "cannot preview"
        return None
    square = PILImage.new("RGB", (size, size), _BACKGROUND)
    square.paste(im, ((size - im.width) // 2, (size - im.height) // 2))
    return square


class Thumbnail(Vertical):
    """One preview and its caption; flagged ones get the `-flagged` class."""

    def __init__(
        self, image: PILImage.Image | None, label: str, protocol: str, flagged: bool = False
    ) -> None:
        super().__init__(classes="-flagged" if flagged else "")
        self._image = image
        self._label = label
        self._protocol = protocol

    def compose(self) -> ComposeResult:
        if self._image is None:
            yield Static(Text("unreadable", style="bold"), classes="thumb-missing")
        else:
            yield image_widget_class(self._protocol)(self._image, classes="thumb-image")
        yield Static(Text(self._label, overflow="ellipsis", no_wrap=True), classes="thumb-label")


class ThumbnailGrid(VerticalScroll):
    """Previews in as many columns as fit the width."""

    DEFAULT_CSS = """
    ThumbnailGrid {
        layout: grid;
        grid-size: 4;
        grid-gutter: 0 0;
        grid-rows: 9;
        height: 1fr;
    }
    ThumbnailGrid Thumbnail {
        width: 16;
        height: 9;
        padding: 0 1;
    }
    ThumbnailGrid Thumbnail .thumb-image {
        width: 14;
        height: 7;
    }
    ThumbnailGrid Thumbnail .thumb-missing {
        width: 14;
        height: 7;
        content-align: center middle;
        color: $error;
        background: $error 15%;
    }
    ThumbnailGrid Thumbnail .thumb-label {
        width: 14;
        height: 1;
        color: $text-muted;
    }
    ThumbnailGrid Thumbnail.-flagged .thumb-label {
        color: $warning;
        text-style: bold;
    }
    """

    def __init__(self, protocol: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.protocol = protocol

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        self.styles.grid_size_columns = max(1, width // CELL_WIDTH)

    async def add_thumbnails(self, items: list[tuple[PILImage.Image | None, str, bool]]) -> None:
        """Append previews: (image or None when unreadable, caption, flagged)."""
        self._fit_columns()
        await self.mount_all(
            [Thumbnail(image, label, self.protocol, flagged) for image, label, flagged in items]
        )

    def flag(self, labels: set[str]) -> None:
        """Mark the previews whose caption is in `labels` (found by the dataset check)."""
        for thumb in self.query(Thumbnail):
            thumb.set_class(thumb._label in labels, "-flagged")
