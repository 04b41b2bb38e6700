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
from tui.widgets.tile_size import grow_rows, tile_columns

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["THUMB_PIXELS", "Thumbnail", "ThumbnailGrid", "make_thumbnail"]

THUMB_PIXELS = 160  # decoded size: enough for Kitty/Sixel at 14 cells, tiny in memory
MIN_ROWS = 7  # image rows at the least (below that the grid scrolls); 14 columns wide
MAX_ROWS = 20  # and at the most, when few previews have the room
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
        self,
        image: PILImage.Image | None,
        label: str,
        protocol: str,
        flagged: bool = False,
        rows: int = MIN_ROWS,
    ) -> None:
        super().__init__(classes="-flagged" if flagged else "")
        self._image = image
        self._label = label
        self._protocol = protocol
        self.rows = rows

    def compose(self) -> ComposeResult:
        if self._image is None:
            yield Static(Text("unreadable", style="bold"), classes="thumb-missing")
        else:
            yield image_widget_class(self._protocol)(self._image, classes="thumb-image")
        yield Static(Text(self._label), classes="thumb-label")  # literal; cut with … (CSS)

    def on_mount(self) -> None:
        self.size_to(self.rows)

    def size_to(self, rows: int) -> None:
        """The preview `rows` tall and twice as wide, its caption as wide."""
        self.rows = rows
        for child in self.query(".thumb-image, .thumb-missing"):
            child.styles.width = rows * 2
            child.styles.height = rows
        for child in self.query(".thumb-label"):
            child.styles.width = rows * 2


class ThumbnailGrid(VerticalScroll):
    """Previews in as many columns as fit the width, as large as the space allows for the
    previews there are (the sizing rule of the other image grids, tile_size.grow_rows)."""

    DEFAULT_CSS = """
    ThumbnailGrid {
        layout: grid;
        grid-size: 4;
        grid-gutter: 0 1;
        grid-rows: auto;
        height: 1fr;
    }
    ThumbnailGrid Thumbnail {
        width: auto;
        height: auto;
        padding: 0 1;
    }
    ThumbnailGrid Thumbnail .thumb-missing {
        content-align: center middle;
        color: $error;
        background: $error 15%;
    }
    ThumbnailGrid Thumbnail .thumb-label {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
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
        self.rows = MIN_ROWS

    def on_resize(self) -> None:
        self._fit()

    def _fit(self, count: int | None = None) -> None:
        """Size the previews for `count` of them (those there are by default) and set the
        columns."""
        width, height = self.content_size
        if not width:
            return
        if count is None:
            count = len(self.query(Thumbnail))
        rows = grow_rows(count, width, height, 1, MAX_ROWS, MIN_ROWS)
        if rows != self.rows:
            self.rows = rows
            for thumb in self.query(Thumbnail):
                thumb.size_to(rows)
        self.styles.grid_size_columns = tile_columns(rows, width)

    async def add_thumbnails(self, items: list[tuple[PILImage.Image | None, str, bool]]) -> None:
        """Append previews: (image or None when unreadable, caption, flagged)."""
        self._fit(len(self.query(Thumbnail)) + len(items))
        await self.mount_all(
            [
                Thumbnail(image, label, self.protocol, flagged, self.rows)
                for image, label, flagged in items
            ]
        )

    def flag(self, labels: set[str]) -> None:
        """Mark the previews whose caption is in `labels` (found by the dataset check)."""
        for thumb in self.query(Thumbnail):
            thumb.set_class(thumb._label in labels, "-flagged")
