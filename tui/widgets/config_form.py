"""The config form, generated from the one typed schema (engine.config).

One row per field, in the groups of `FIELD_GROUPS`: the key, an input (a Select for a choice, a
Switch for a yes/no, an Input otherwise), the field's description, and the error of what was
typed, right under it. Every edit is validated as typed with `validate_value`; a valid value is
posted as `ConfigForm.Changed`, an invalid one is kept in `errors` (the config keeps its last
valid value).
"""

from __future__ import annotations

import json
import typing
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from engine.config import FIELD_GROUPS, SECTION_MODELS, Config, validate_value
from tui.widgets.form_select import FormSelect

__all__ = ["ConfigForm", "FieldRow", "field_choices", "field_kind", "format_value"]


def field_kind(section: str, key: str) -> str:
    """ "choice", "bool" or "text" (an Input)."""
    ann = SECTION_MODELS[section].model_fields[key].annotation
    if typing.get_origin(ann) is typing.Literal:
        return "choice"
    if ann is bool:
        return "bool"
    return "text"


def field_choices(section: str, key: str) -> tuple[str, ...]:
    return tuple(typing.get_args(SECTION_MODELS[section].model_fields[key].annotation))


def format_value(value: Any) -> str:
    """A value as typed in the form (the inverse of validate_value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def field_id(section: str, key: str) -> str:
    return f"{section}-{key}"


class FieldRow(Widget):
    """One field: key and input on a line, the description under them; the error (a Static of
    class `-error`) is mounted under those when there is one."""

    DEFAULT_CSS = """
    FieldRow {
        layout: grid;
        grid-size: 2;
        grid-columns: 30 1fr;  /* the longest key, gradient_accumulation_steps *, fits */
        grid-rows: auto;
        height: auto;
    }
    FieldRow > .field-help, FieldRow > .-error {
        column-span: 2;
        padding-left: 30;
    }
    """

    def __init__(self, section: str, key: str, value: Any = None) -> None:
        super().__init__(id=f"row-{field_id(section, key)}", classes="field-row")
        self.section = section
        self.key = key
        self.kind = field_kind(section, key)
        self._initial = value
        self.error: str | None = None

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    def compose(self) -> ComposeResult:
        info = SECTION_MODELS[self.section].model_fields[self.key]
        fid = field_id(self.section, self.key)
        required = " *" if info.is_required() else ""
        yield Label(Text(self.key + required), classes="field-key")
        # The initial value goes in at construction: a Select takes its constructor value
        # (else its first option) when it mounts, whatever was set before that.
        if self.kind == "choice":
            choices = field_choices(self.section, self.key)
            yield FormSelect(
                [(c, c) for c in choices],
                value=self._initial if self._initial in choices else Select.NULL,
                allow_blank=False,
                compact=True,
                id=f"field-{fid}",
                classes="field-input",
            )
        elif self.kind == "bool":
            yield Switch(bool(self._initial), id=f"field-{fid}", classes="field-input")
        else:
            yield Input(
                format_value(self._initial),
                compact=True,
                id=f"field-{fid}",
                classes="field-input",
                select_on_focus=False,
            )
        yield Static(Text(info.description or ""), classes="field-help")

    @property
    def widget(self) -> Widget:
        return self.query_one(".field-input")

    def show(self, value: Any) -> None:
        """Put `value` in the input (posts no Changed)."""
        widget = self.widget
        with widget.prevent(Input.Changed, Select.Changed, Switch.Changed):
            if isinstance(widget, Switch):
                widget.value = bool(value)
            elif isinstance(widget, Select):
                widget.value = value
            else:
                assert isinstance(widget, Input)
                text = format_value(value)
                if widget.value != text:
                    widget.value = text
                    widget.cursor_position = len(text)
        self.set_error(None)

    def set_error(self, error: str | None) -> None:
        if error == self.error:
            return
        self.error = error
        found = self.query(".-error")
        if error:
            text = Text(f"{self.path}: {error}")
            if found:
                found.first(Static).update(text)
            else:
                self.mount(Static(text, classes="-error"))
        elif found:
            found.remove()
        self.set_class(bool(error), "-invalid")
        self.widget.set_class(bool(error), "-field-error")


class ConfigForm(VerticalScroll):
    """Every field of the config, grouped; see the module doc."""

    class Changed(Message):
        """A field now holds a valid value (already validated)."""

        def __init__(self, section: str, key: str, value: Any) -> None:
            super().__init__()
            self.section = section
            self.key = key
            self.value = value

    class Invalid(Message):
        """A field holds what does not validate (the config keeps its previous value)."""

        def __init__(self, section: str, key: str, error: str) -> None:
            super().__init__()
            self.section = section
            self.key = key
            self.error = error

    class Ready(Message):
        """Every group of fields is mounted."""

    def __init__(self, config: Config | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.errors: dict[str, str] = {}  # "section.key" -> error
        self._rule_keys: set[str] = set()  # keys showing a rule's problem
        self._config = config
        self._pending = list(FIELD_GROUPS.items())
        self.ready = False

    # The first group comes with the form; the others are mounted one per frame after it, so
    # the screen shows at once instead of after a few hundred widgets are laid out.

    def compose(self) -> ComposeResult:
        yield self._group(*self._pending.pop(0))

    def _group(self, title: str, fields: list[tuple[str, str]]) -> Vertical:
        cfg = self._config
        rows = [
            FieldRow(section, key, getattr(getattr(cfg, section), key) if cfg else None)
            for section, key in fields
        ]
        return Vertical(Static(Text(title), classes="group-title"), *rows, classes="field-group")

    def on_mount(self) -> None:
        self.call_after_refresh(self._mount_next_group)

    async def _mount_next_group(self) -> None:
        if not self._pending:
            self.ready = True
            self.post_message(self.Ready())
            return
        await self.mount(self._group(*self._pending.pop(0)))
        self.call_after_refresh(self._mount_next_group)

    def row(self, section: str, key: str) -> FieldRow:
        return self.query_one(f"#row-{field_id(section, key)}", FieldRow)

    def set_config(self, cfg: Config) -> None:
        """Show every value of `cfg` (fields still to be mounted get them then); clears the
        errors."""
        self._config = cfg
        self.errors.clear()
        for row in self.query(FieldRow):
            row.show(getattr(getattr(cfg, row.section), row.key))

    def set_rule_problems(self, found: dict[str, str]) -> None:
        """The rules between keys ("section.key" -> problem), each next to the key to fix;
        the keys whose problem went are cleared."""
        for key in self._rule_keys - set(found):
            self.set_external_error(key, None)
        for key, problem in found.items():
            self.set_external_error(key, problem)
        self._rule_keys = set(found)

    def set_external_error(self, path: str, error: str | None) -> None:
        """An error found elsewhere (the path check) shown next to its field."""
        section, _, key = path.partition(".")
        try:
            row = self.row(section, key)
        except Exception:  # noqa: BLE001 - a key the form does not show
            return
        if error or path not in self.errors:
            row.set_error(error)

    def _edited(self, widget: Widget, raw: str) -> None:
        row = next(a for a in widget.ancestors if isinstance(a, FieldRow))
        value, error = validate_value(row.section, row.key, raw)
        row.set_error(error)
        if error:
            self.errors[row.path] = error
            self.post_message(self.Invalid(row.section, row.key, error))
        else:
            self.errors.pop(row.path, None)
            self.post_message(self.Changed(row.section, row.key, value))

    # The widget's current value, not the event's: a Select posts Changed for its first option
    # once mounted, which may arrive after set_config put the real value in.

    @on(Input.Changed, ".field-input")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edited(event.input, event.input.value)

    @on(Select.Changed, ".field-input")
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.value is not Select.BLANK:
            self._edited(event.select, str(event.select.value))

    @on(Switch.Changed, ".field-input")
    def _switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        self._edited(event.switch, "true" if event.switch.value else "false")
