"""The log tail of a run: engine log lines shown literally (never parsed as markup)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

__all__ = ["LEVEL_STYLES", "LogView", "log_text"]

LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "warning": "yellow",
    "warn": "yellow",
    "error": "bold red",
    "critical": "bold red",
}


def log_text(level: str, message: str) -> Text:
    """One log line as Text: the level tag styled, the message literal."""
    level = (level or "info").lower()
    text = Text(no_wrap=False)
    if level != "info":
        text.append(f"{level}: ", style=LEVEL_STYLES.get(level, "") or "dim")
    text.append(
        message, style=LEVEL_STYLES.get(level, "") if level in ("error", "critical") else ""
    )
    return text


class LogView(RichLog):
    """A RichLog of (level, message) lines, at most `max_lines`, markup off. Debug lines
    (routine housekeeping such as pruned checkpoints) are left out unless `show_debug`; they
    stay in the run's events.jsonl."""

    DEFAULT_CSS = """
    LogView {
        overflow-y: auto;
        height: 1fr;
        min-height: 3;
        background: $surface;
    }
    """

    def __init__(
        self,
        *,
        max_lines: int = 500,
        show_debug: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            max_lines=max_lines,
            wrap=True,
            markup=False,
            highlight=False,
            min_width=20,
            name=name,
            id=id,
            classes=classes,
        )
        self.lines_written = 0
        self.show_debug = show_debug

    def add_lines(self, lines: Iterable[tuple[str, str]]) -> None:
        for level, message in lines:
            if not self.show_debug and level.lower() == "debug":
                continue
            self.write(log_text(level, message))
            self.lines_written += 1

    def plain_lines(self) -> list[str]:
        """The text now shown, one string per rendered line (for tests)."""
        return [strip.text for strip in self.lines]
