"""One image opened large, with its caption and path (enter on a tile of an ImageGrid)."""

from __future__ import annotations

from PIL import Image as PILImage
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets.fit_line import FitLine
from tui.widgets.image_decode import ImageItem, decode_thumbnail, protocol_for
from tui.widgets.image_protocol import image_widget_class

__all__ = ["ImageModal"]


class ImageModal(ModalScreen[None]):
    """One image, as large as the terminal allows, with its caption and path."""

    BINDINGS = [
        Binding("escape,enter,q", "dismiss", "Close", id="image.close", tooltip="Close the image"),
    ]

    DEFAULT_CSS = """
    ImageModal {
        align: center middle;
    }
    ImageModal > #frame {
        width: 90%;
        height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    ImageModal #big {
        height: 1fr;
        width: 1fr;
        content-align: center middle;
    }
    ImageModal .caption {
        height: auto;
        max-height: 3;
    }
    ImageModal .path {
        height: 1;
        color: $text-muted;
    }
    """

    class Decoded(Message):
        def __init__(self, image: PILImage.Image | None, error: str | None) -> None:
            super().__init__()
            self.image = image
            self.error = error

    def __init__(self, item: ImageItem) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        with Vertical(id="frame"):
            yield Static("…", id="big")
            yield Static(Text(self.item.caption), classes="caption", markup=False)
            yield FitLine(tail=str(self.item.path), classes="path")

    def on_mount(self) -> None:
        frame = self.query_one("#frame")
        frame.border_title = "image"
        self._decode(max(8, self.size.width - 8), max(4, self.size.height - 10))

    @work(thread=True, exit_on_error=False)
    def _decode(self, cols: int, rows: int) -> None:
        try:
            image = decode_thumbnail(self.item.path, cols, rows)
        except Exception as exc:
            self.post_message(self.Decoded(None, str(exc)))
        else:
            self.post_message(self.Decoded(image, None))

    @on(Decoded)
    def _on_decoded(self, message: Decoded) -> None:
        old = self.query_one("#big")
        if message.image is None:
            old.update(Text(message.error or "cannot read", style="red"))  # type: ignore[attr-defined]
            return
        widget = image_widget_class(protocol_for(self.app))(message.image, id="big-image")
        widget.styles.width = "auto"
        widget.styles.height = "1fr"
        old.remove()
        self.query_one("#frame").mount(widget, before=0)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
