"""The screens' footer: compact, without the ^p palette key, when the terminal is narrow."""

from __future__ import annotations

from typing import Any

from textual import keys
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer

__all__ = ["COMPACT_BELOW", "FitFooter"]

COMPACT_BELOW = 100  # columns: below this the keys lose their padding so that they fit

# Textual leaves out of the footer the keys the focused widget types (an Input takes "l") by
# the key's character, which it cannot find for "slash" (its table lacks the name SOLIDUS): so
# "/ Find" stayed in the footer while a field had the cursor, where / types a slash.
keys.KEY_TO_UNICODE_NAME.setdefault("slash", "SOLIDUS")


class FitFooter(Footer):
    """A Footer that, below COMPACT_BELOW columns, turns compact and leaves out the ^p palette
    key (ctrl+p still opens it; `?` lists it): at 80 the Runs screen's keys were cut
    (`q Q▏^p palette`)."""

    _drawn: tuple[Any, ...] | None = None  # the bindings the keys were last built from

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < COMPACT_BELOW
        self.compact = narrow
        self.show_command_palette = not narrow

    def bindings_changed(self, screen: Screen) -> None:
        """Footer.bindings_changed, but the keys are rebuilt only when what they show changed:
        a screen asks after every status change, and a rebuild (every key unmounted and
        mounted again, then a layout pass) cost ~30 ms, twice per re-attached run, for the
        same keys. Looked at when Footer would rebuild: after the next refresh."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        if not self.is_attached or self._pruning:
            return
        try:
            same = self._shown() == self._drawn
        except NoMatches:  # a screen's check_action before its widgets are mounted
            same = False  # (Footer rebuilds once they are, after its children are removed)
        if not same:
            await self.recompose()

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._drawn = self._shown()  # what the keys below are built from
        yield from super().compose()

    def _shown(self) -> tuple[Any, ...]:
        """Everything Footer.compose reads: the bindings, and whether ^p is shown."""
        bindings = self.screen.active_bindings.values()
        return (self.show_command_palette, tuple((b, on, tip) for _, b, on, tip in bindings))
