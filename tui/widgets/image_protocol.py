"""Which textual-image widget draws images: detected, or forced by a setting.

textual-image asks the terminal about its graphics support when it is first imported, which
must happen before Textual takes the terminal over: tui.app imports this module at start-up,
which asks the terminal its name, version and cell size (engine/term_images.py) and imports
textual-image at once when stdout is a terminal. When it is not (headless, piped, tests)
nothing is asked, so textual-image (and numpy, which it imports) is imported only when the
first image is drawn: out of the first frame.

The fixes to textual-image 0.12 live in engine/term_images.py (shared with `generate --show`)
and, for the Sixel widget, here: the cursor goes back to the image's last row after drawing it,
and the colour registers are defined before the first pixel.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from engine import term_images


def _stdout_is_terminal() -> bool:
    out = sys.__stdout__
    if out is None:
        return True  # textual-image fails on import here: let it, at start-up as before
    try:
        return out.isatty()
    except ValueError:  # closed
        return True


def load() -> Any:
    """Import textual-image's widgets (queries the terminal the first time; see above)."""
    term_images.detect_terminal()  # first: it gives textual-image the real cell size
    import textual_image.widget

    return textual_image.widget


if _stdout_is_terminal():
    load()


@cache
def sixel_widget_class() -> type:
    """textual-image's Sixel widget with the cursor and colour-register fixes."""
    from rich.control import Control
    from rich.segment import Segment
    from textual_image.widget import sixel

    class FixedSixelImpl(sixel._ImageSixelImpl):
        def _image_to_sixels(self, image: Any, sixel_options: Any = None, background: Any = None):
            return term_images.registers_first(
                super()._image_to_sixels(image, sixel_options, background)
            )

        def _get_sixel_segments(self, sixel_data: str) -> list[Segment]:
            segments = list(super()._get_sixel_segments(sixel_data))
            region = self.screen.find_widget(self).visible_region
            # textual-image leaves the cursor on the row below the image; Textual goes on
            # writing the image's last row from the cursor, so put it back there
            end = Control.move_to(region.right, max(region.y, region.bottom - 1)).segment.text
            segments[-1] = Segment(end, style=segments[-1].style)
            return segments

    class FixedSixelImage(sixel.Image, Renderable=sixel._NoopRenderable):
        def compose(self):
            yield FixedSixelImpl(self.image, self._sixel_options)

    return FixedSixelImage


def resolve(protocol: str = "auto") -> str:
    """The protocol drawn with for a setting: "auto" is what the terminal supports, less
    TGP on a kitty without Unicode placeholders (engine.term_images.choose_protocol)."""
    protocol = term_images.normalize(protocol)
    if protocol != "auto":
        return protocol
    load()
    info = term_images.detect_terminal()
    return term_images.choose_protocol(term_images.textual_image_protocol(), info.terminal, "auto")


def image_widget_class(protocol: str = "auto") -> type:
    """The widget class for "auto" | "kitty" | "sixel" | "halfcell" | "unicode"."""
    widget = load()
    chosen = resolve(protocol)
    if chosen == "sixel":
        return sixel_widget_class()
    classes = {
        "kitty": widget.TGPImage,
        "halfcell": widget.HalfcellImage,
        "unicode": widget.UnicodeImage,
    }
    return classes.get(chosen, widget.HalfcellImage)


def get_cell_size() -> Any:
    """textual-image's terminal cell size in pixels (width, height)."""
    return load().get_cell_size()
