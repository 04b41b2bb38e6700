"""Which textual-image widget draws images: detected, or forced by a setting.

textual-image asks the terminal about its graphics support when it is first imported, which
must happen before Textual takes the terminal over: tui.app imports this module at start-up,
which imports textual-image at once when stdout is a terminal. When it is not (headless, piped,
tests) textual-image asks the terminal nothing on import, so it (and numpy, which it imports)
is imported only when the first image is drawn: out of the first frame.
"""

from __future__ import annotations

import sys
from typing import Any


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
    import textual_image.widget

    return textual_image.widget


if _stdout_is_terminal():
    load()


def image_widget_class(protocol: str = "auto") -> type:
    """The textual-image widget class for "auto" | "kitty" | "sixel" | "halfcell" | "unicode"."""
    widget = load()
    classes = {
        "kitty": widget.TGPImage,
        "sixel": widget.SixelImage,
        "halfcell": widget.HalfcellImage,
        "unicode": widget.UnicodeImage,
    }
    return classes.get(protocol, widget.Image)


def get_cell_size() -> Any:
    """textual-image's terminal cell size in pixels (width, height)."""
    return load().get_cell_size()
