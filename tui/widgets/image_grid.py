"""A grid of image files shown inline (textual-image), each with a literal caption.

Files are decoded and shrunk in a thread worker (`engine.images.open_rgb`, Pillow only); the
tile swaps its placeholder for the image when the `Decoded` message arrives. `enter` on a tile
(or `ImageGrid.open_selected()`) opens it large in `ImageModal`.

The protocol (kitty / sixel / halfcell / unicode / auto) comes from `app.state.image_protocol`
when the app has one and it is not "auto", else from DREAMBOOTH_TUI_IMAGES, else detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image as PILImage
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from tui.widgets.image_decode import IMAGES_ENV, ImageItem, decode_thumbnail, protocol_for
from tui.widgets.image_modal import ImageModal
from tui.widgets.image_protocol import image_widget_class
from tui.widgets.tile_size import grow_rows, tile_columns

__all__ = [
    "IMAGES_ENV",
    "ImageGrid",
    "ImageItem",
    "ImageModal",
    "ImageTile",
    "decode_thumbnail",
    "grow_rows",
    "protocol_for",
]


class ImageTile(Vertical, can_focus=True):
    """One image and its caption. Focusable: enter opens it large."""

    BINDINGS = [
        Binding(
            "enter",
            "open",
            "Open large",
            id="image.open",
            tooltip="Show this image large (escape closes it)",
        ),
    ]

    DEFAULT_CSS = """
    ImageTile {
        width: auto;
        height: auto;
        padding: 0 1;
    }
    ImageTile:focus > .caption {
        background: $accent 40%;
        color: $text;
    }
    ImageTile > .image-slot {
        height: auto;
        width: auto;
    }
    ImageTile > .placeholder {
        color: $text-muted;
        content-align: center middle;
    }
    ImageTile > .caption {
        height: auto;
        color: $text-muted;
    }
    """

    class Decoded(Message):
        def __init__(self, tile: ImageTile, image: PILImage.Image | None, error: str | None):
            super().__init__()
            self.tile = tile
            self.image = image
            self.error = error

    class OpenRequested(Message):
        def __init__(self, item: ImageItem) -> None:
            super().__init__()
            self.item = item

    def __init__(
        self,
        item: ImageItem,
        rows: int = 8,
        cols: int | None = None,
        caption_lines: int = 2,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="image-tile")
        self.item = item
        self.rows = rows
        self.cols = cols or rows * 2
        self.caption_lines = caption_lines
        self.loaded = False
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        placeholder = Static("…", classes="placeholder")
        placeholder.styles.width = self.cols
        placeholder.styles.height = self.rows
        yield placeholder
        caption = Static(Text(self.item.caption, no_wrap=False), classes="caption", markup=False)
        caption.styles.width = self.cols
        caption.styles.max_height = self.caption_lines
        caption.display = self.caption_lines > 0
        yield caption

    def on_mount(self) -> None:
        self._decode()

    @work(thread=True, group="image-decode", exit_on_error=False)
    def _decode(self) -> None:
        try:
            image = decode_thumbnail(self.item.path, self.cols, self.rows)
        except Exception as exc:  # an unreadable file is shown as such, never a crash
            self.post_message(self.Decoded(self, None, str(exc)))
        else:
            self.post_message(self.Decoded(self, image, None))

    def show_image(self, image: PILImage.Image | None, error: str | None) -> None:
        placeholder = self.query(".placeholder")
        if error or image is None:
            self.error = error or "cannot read"
            for p in placeholder:
                p.update(Text(self.error, style="red"))  # type: ignore[attr-defined]
            return
        widget_cls = image_widget_class(protocol_for(self.app))
        widget: Widget = widget_cls(image, classes="image-slot")
        widget.styles.height = self.rows
        widget.styles.width = "auto"
        widget.styles.max_width = self.cols
        placeholder.remove()
        self.mount(widget, before=0)
        self.loaded = True

    def action_open(self) -> None:
        self.post_message(self.OpenRequested(self.item))


class ImageGrid(VerticalScroll):
    """Tiles in as many columns as fit. `set_images` replaces, `add_image(s)` appends; with
    `max_images` only the newest are kept. With `grow`, the tiles are as large as the images
    there are allow (tile_size.grow_rows, up to `rows`)."""

    DEFAULT_CSS = """
    ImageGrid {
        layout: grid;
        grid-size: 3;
        grid-gutter: 0 1;
        grid-rows: auto;
        height: 1fr;
    }
    ImageGrid > .empty {
        color: $text-muted;
    }
    """

    class Changed(Message):
        """The images shown changed (screens refresh the keys that depend on them)."""

        def __init__(self, grid: ImageGrid) -> None:
            super().__init__()
            self.grid = grid

        @property
        def control(self) -> ImageGrid:
            return self.grid

    def __init__(
        self,
        *,
        rows: int = 8,
        max_images: int | None = None,
        caption_lines: int = 2,
        grow: bool = False,
        empty: str = "no images yet",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_rows = rows
        self.rows = rows
        self.max_images = max_images
        self.caption_lines = caption_lines
        self.grow = grow  # tiles as large as the images there are fit (up to `rows`)
        self.empty_text = empty
        self._items: list[ImageItem] = []
        self._counter = 0

    @property
    def items(self) -> list[ImageItem]:
        return list(self._items)

    @property
    def tiles(self) -> list[ImageTile]:
        return list(self.query(ImageTile))

    def compose(self) -> ComposeResult:
        yield Static(Text(self.empty_text), classes="empty")

    def on_resize(self) -> None:
        if self.grow:
            self._regrow(len(self._items))
        self._fit_columns()

    def _regrow(self, count: int, adding: list[ImageItem] | None = None) -> bool:
        """With `grow`: re-make the tiles at the largest size where `count` images fit the
        grid's size; True when it re-made them (and added `adding`)."""
        width, height = self.content_size
        rows = grow_rows(count, width, height, self.caption_lines, self.max_rows)
        if not width or not height or rows == self.rows:
            return False
        self.rows = rows
        items, self._items = self._items, []
        self.query(ImageTile).remove()
        self._add([*items, *(adding or [])], announce=adding is not None, regrow=False)
        return True

    def _fit_columns(self) -> None:
        columns = tile_columns(self.rows, self.content_size.width)
        if self.styles.grid_size_columns != columns:
            self.styles.grid_size_columns = columns
        for empty in self.query(".empty"):
            empty.styles.column_span = columns

    def set_images(self, items: Iterable[ImageItem | tuple[Path | str, str]]) -> None:
        wanted = [self._item(i) for i in items]
        if self.max_images is not None:
            wanted = wanted[-self.max_images :]
        if wanted == self._items:
            return
        if not wanted:
            self.clear()
            return
        self.query(ImageTile).remove()
        self._items = []
        self._add(wanted)

    def add_image(self, path: Path | str, caption: str = "") -> None:
        self.add_images([ImageItem(Path(path), caption)])

    def add_images(self, items: Sequence[ImageItem | tuple[Path | str, str]]) -> None:
        new = [self._item(i) for i in items]
        if self.max_images is not None:
            keep = max(0, self.max_images - len(new))
            drop = len(self._items) - keep
            if drop > 0:
                for tile in self.tiles[:drop]:
                    tile.remove()
                self._items = self._items[drop:]
            new = new[-self.max_images :]
        self._add(new)

    def clear(self) -> None:
        had = bool(self._items)
        self.query(ImageTile).remove()
        self._items = []
        self.query(".empty").set(display=True)
        if had:
            self.post_message(self.Changed(self))

    def _add(self, items: list[ImageItem], announce: bool = True, regrow: bool = True) -> None:
        if not items:
            return
        if self.grow and regrow and self._regrow(len(self._items) + len(items), items):
            return
        self.query(".empty").set(display=False)
        tiles = []
        for item in items:
            self._counter += 1
            tiles.append(
                ImageTile(
                    item,
                    rows=self.rows,
                    caption_lines=self.caption_lines,
                    id=f"tile-{self._counter}",
                )
            )
        self._items.extend(items)
        self.mount_all(tiles)
        self._fit_columns()
        if announce:
            self.post_message(self.Changed(self))

    @staticmethod
    def _item(value: ImageItem | tuple[Path | str, str]) -> ImageItem:
        if isinstance(value, ImageItem):
            return value
        path, caption = value
        return ImageItem(Path(path), caption)

    def open_selected(self) -> bool:
        """Open the focused tile, else the newest one. False when there is none."""
        tiles = self.tiles
        if not tiles:
            return False
        focused = self.screen.focused
        tile = focused if isinstance(focused, ImageTile) and focused in tiles else tiles[-1]
        self.app.push_screen(ImageModal(tile.item))
        return True

    @on(ImageTile.Decoded)
    def _on_decoded(self, message: ImageTile.Decoded) -> None:
        message.stop()
        if message.tile.is_attached:
            message.tile.show_image(message.image, message.error)

    @on(ImageTile.OpenRequested)
    def _on_open(self, message: ImageTile.OpenRequested) -> None:
        message.stop()
        self.app.push_screen(ImageModal(message.item))
