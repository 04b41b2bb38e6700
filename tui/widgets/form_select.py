"""A Select that survives being torn down while it mounts.

Textual's Select sets up its options and value in its Mount handler by querying its children
(SelectCurrent's `#label`, SelectOverlay). When the app quits, or a screen goes away, while a
form is still mounting its fields (the Config form mounts its groups one by one), a Select can
get its Mount after its children were removed: the query raises NoMatches and the app exits
with a traceback. This one skips that set-up when its children are gone (nothing is shown any
more), and does it as usual otherwise.
"""

from __future__ import annotations

from textual import events
from textual.css.query import NoMatches
from textual.widgets import Select, Static
from textual.widgets._select import SelectCurrent, SelectOverlay

__all__ = ["FormSelect"]


class FormSelect(Select):
    """Select, less the NoMatches of a Mount that comes after its children were removed."""

    def _children_ready(self) -> bool:
        try:
            self.query_one(SelectOverlay)
            self.query_one(SelectCurrent).query_one("#label", Static)
        except NoMatches:
            return False
        return True

    def _on_mount(self, event: events.Mount) -> None:
        if not self._children_ready():
            event.prevent_default()  # Select's own set-up would query the removed children

    def _watch_value(self, value: object) -> None:
        if self._children_ready():
            super()._watch_value(value)
        else:
            self._value = value
