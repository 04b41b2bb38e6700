"""The screens' footer: compact, without the ^p palette key, when the terminal is narrow."""

from __future__ import annotations

from textual.events import Resize
from textual.widgets import Footer

__all__ = ["COMPACT_BELOW", "FitFooter"]

COMPACT_BELOW = 100  # columns: below this the keys lose their padding so that they fit


class FitFooter(Footer):
    """A Footer that, below COMPACT_BELOW columns, turns compact and leaves out the ^p palette
    key (ctrl+p still opens it; `?` lists it): at 80 the Runs screen's keys were cut
    (`q Q▏^p palette`)."""

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < COMPACT_BELOW
        self.compact = narrow
        self.show_command_palette = not narrow
