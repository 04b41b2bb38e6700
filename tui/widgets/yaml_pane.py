"""The Config screen's YAML tab: the config as text, and the error of the text typed there."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static, TabPane, TextArea

from engine.config import Config, ConfigError, parse_config_text

__all__ = ["YamlPane"]


class YamlPane(TabPane):
    """A YAML editor that knows the text it last showed (`shown`) and the error of the last
    text that did not parse (`error`)."""

    def __init__(self, title: str, **kwargs: object) -> None:
        super().__init__(title, **kwargs)  # type: ignore[arg-type]
        self.shown = ""  # the text last put into the tab (or parsed from it)
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield TextArea.code_editor("", language="yaml", id="config-yaml")
        yield Static("", id="config-yaml-error", classes="-error")

    @property
    def editor(self) -> TextArea:
        return self.query_one("#config-yaml", TextArea)

    @property
    def edited(self) -> bool:
        """The text differs from what was last shown or parsed."""
        return self.editor.text != self.shown

    def show(self, text: str) -> None:
        """Put `text` in the editor (no Changed message) and clear the error."""
        self.shown = text
        with self.editor.prevent(TextArea.Changed):
            self.editor.load_text(text)
        self.set_error(None)

    def set_error(self, error: str | None) -> None:
        self.error = error
        label = self.query_one("#config-yaml-error", Static)
        label.update(Text(error) if error else "")
        label.display = bool(error)

    def parse(self, source: str) -> Config | None:
        """The editor's text as a config (it becomes `shown`), or None with its error shown."""
        text = self.editor.text
        try:
            cfg, _warnings = parse_config_text(text, source=source)
        except ConfigError as exc:
            self.set_error(str(exc))
            return None
        self.set_error(None)
        self.shown = text
        return cfg
