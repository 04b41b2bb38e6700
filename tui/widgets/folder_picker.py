"""Pick a folder: a directory tree (folders only) and a path input with type-ahead completion.

The input also takes a hub dataset id; what was chosen is posted as `FolderPicker.Chosen`.
Folder names are shown literally (a folder called "[dim]photos" is not markup).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input

__all__ = ["DirectorySuggester", "FolderPicker", "FolderTree", "PathInput"]


def _complete_dir(value: str) -> str | None:
    """`value` completed to the first directory whose name starts with its last part."""
    head, sep, stem = value.rpartition("/")
    if not stem:
        return None
    parent = Path(os.path.expanduser(head + sep)) if sep else Path(".")
    try:
        names = sorted(
            e.name
            for e in os.scandir(parent)
            if e.name.startswith(stem)
            and (stem.startswith(".") or not e.name.startswith("."))
            and e.is_dir()
        )
    except OSError:
        return None
    if not names:
        return None
    return value[: len(value) - len(stem)] + names[0] + "/"


class DirectorySuggester(Suggester):
    """Suggests the completion of the typed path to an existing directory."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(_complete_dir, value)


class PathInput(Input):
    """An Input where Tab takes the suggested completion (as in a shell); else moves on."""

    BINDINGS = [
        Binding(
            "tab",
            "complete",
            "Complete",
            show=False,
            id="data.path.complete",
            tooltip="Take the suggested folder name (or move to the next widget)",
        ),
    ]

    def action_complete(self) -> None:
        if self._suggestion and self.cursor_at_end and self._suggestion != self.value:
            self.value = self._suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()


class FolderTree(DirectoryTree):
    """A DirectoryTree of folders only, hidden ones left out, labels shown literally."""

    BINDINGS = [
        Binding(
            "backspace",
            "up",
            "Up",
            id="data.tree.up",
            tooltip="Show the parent folder at the top of the tree",
        ),
    ]

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and self._safe_is_dir(p)]

    def process_label(self, label: str | Text) -> Text:
        # literal: a folder called "[dim]photos" is not markup
        text = Text(label) if isinstance(label, str) else label
        return text.split()[0] if text.plain else text

    def _add_root_label(self) -> None:
        """The root shows its folder's name (the whole path is in the input above)."""
        root = Path(self.path)
        self.root.set_label(Text(f"{root.name or root}/"))

    async def watch_path(self) -> None:
        await super().watch_path()
        self._add_root_label()

    def on_mount(self) -> None:
        self._add_root_label()

    def action_up(self) -> None:
        root = Path(self.path).expanduser().resolve()
        if root.parent != root:
            self.path = root.parent


class FolderPicker(Vertical):
    """A path input over a folders-only tree; posts `Chosen` for a folder or a hub dataset id."""

    class Chosen(Message):
        def __init__(self, value: str) -> None:
            super().__init__()
            self.value = value  # as typed or picked: a folder path or a hub dataset id

    def __init__(self, root: Path, value: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self._root = root
        self._value = value

    def compose(self) -> ComposeResult:
        yield PathInput(
            self._value,
            placeholder="folder path or hub dataset id",
            suggester=DirectorySuggester(),
            id="folder-path",
        )
        yield FolderTree(self._root, id="folder-tree")

    @property
    def input(self) -> Input:
        return self.query_one("#folder-path", Input)

    @property
    def tree(self) -> FolderTree:
        return self.query_one(FolderTree)

    def set_value(self, value: str) -> None:
        """Show `value` in the input without posting `Chosen`."""
        with self.input.prevent(Input.Changed):
            self.input.value = value
            self.input.cursor_position = len(value)

    @on(Input.Submitted, "#folder-path")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if value:
            self.post_message(self.Chosen(value))

    @on(DirectoryTree.DirectorySelected)
    def _picked(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        value = display_path(event.path)
        self.set_value(value)
        self.post_message(self.Chosen(value))


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory where it is below it."""
    try:
        rel = Path(path).resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        return str(path)
    return "." if str(rel) == "." else f"./{rel}"
