"""The prompt input: a text field whose up/down keys recall earlier prompts, kept on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.widgets import Input

__all__ = ["HistoryInput", "PromptHistory", "history_path"]


def history_path() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / "prompt_history.json"


class PromptHistory:
    """Prompts used before, oldest first, no repeats, at most `limit`; saved as JSON."""

    def __init__(self, path: Path | None = None, limit: int = 200) -> None:
        self.path = path or history_path()
        self.limit = limit
        self.items: list[str] = []
        self._cursor = 0
        self._draft = ""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                self.items = [str(p) for p in data if isinstance(p, str) and p][-limit:]
        except (OSError, ValueError):
            pass
        self._cursor = len(self.items)

    def add(self, prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        if prompt in self.items:
            self.items.remove(prompt)
        self.items.append(prompt)
        self.items = self.items[-self.limit :]
        self._cursor = len(self.items)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.items, ensure_ascii=False, indent=0), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: history lives for this session only

    def previous(self, current: str) -> str | None:
        if self._cursor == len(self.items):
            self._draft = current
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.items[self._cursor]

    def next(self) -> str | None:
        if self._cursor >= len(self.items):
            return None
        self._cursor += 1
        return self._draft if self._cursor == len(self.items) else self.items[self._cursor]

    def reset(self) -> None:
        self._cursor = len(self.items)


class HistoryInput(Input):
    """An Input whose up/down keys recall earlier prompts."""

    BINDINGS = [
        Binding(
            "up",
            "history_previous",
            "Earlier prompt",
            id="generate.history_previous",
            tooltip="Recall the previous prompt from the history",
            show=False,
        ),
        Binding(
            "down",
            "history_next",
            "Later prompt",
            id="generate.history_next",
            tooltip="Recall the next prompt from the history",
            show=False,
        ),
    ]

    def __init__(self, history: PromptHistory, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history

    def action_history_previous(self) -> None:
        value = self.history.previous(self.value)
        if value is not None:
            self.value = value
            self.cursor_position = len(value)

    def action_history_next(self) -> None:
        value = self.history.next()
        if value is not None:
            self.value = value
            self.cursor_position = len(value)
