"""One line that keeps the end of a path: where it is too long, the path gives way at its start
("…" and the end), since its last parts (the file, the request's folder) tell which it is."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

__all__ = ["FitLine", "keep_tail"]


def keep_tail(text: str, width: int) -> str:
    """`text` in `width` cells: as it is where it fits, else "…" and its end."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail = text[-(width - 1) :]
    while cell_len(tail) > width - 1:  # wide characters
        tail = tail[1:]
    return "…" + tail


class FitLine(Widget):
    """`head` (cut at the end where even it does not fit) then `tail`, a path, in the room
    left, giving way at its start."""

    DEFAULT_CSS = """
    FitLine {
        height: 1;
    }
    """

    def __init__(
        self, head: Text | str = "", tail: str = "", tail_style: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.head = Text(head) if isinstance(head, str) else head
        self.tail = tail
        self.tail_style = tail_style

    def show(self, head: Text | str, tail: str = "") -> None:
        """Show `head` and `tail` (a path; empty: none) from now on."""
        self.head = Text(head) if isinstance(head, str) else head
        self.tail = tail
        self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        line = self.head.copy()
        line.no_wrap = True
        line.truncate(width, overflow="ellipsis")
        room = width - line.cell_len
        if self.tail and room > 0:
            line.append(keep_tail(self.tail, room), style=self.tail_style)
        return line
