"""Which textual-image widget draws images: detected, or forced by a setting.

textual-image asks the terminal about its graphics support when it is first imported, which
must happen before Textual takes the terminal over: import this module at start-up (tui.app
does), never first inside a running app.
"""

from __future__ import annotations

from textual_image.widget import HalfcellImage, SixelImage, TGPImage, UnicodeImage
from textual_image.widget import Image as AutoImage

_CLASSES = {
    "kitty": TGPImage,
    "sixel": SixelImage,
    "halfcell": HalfcellImage,
    "unicode": UnicodeImage,
}


def image_widget_class(protocol: str = "auto") -> type:
    """The textual-image widget class for "auto" | "kitty" | "sixel" | "halfcell" | "unicode"."""
    return _CLASSES.get(protocol, AutoImage)
