"""Small modal screens shared by the app's screens: a choice, a text prompt, a list pick, the keys.

Every text a user wrote (a run id, a folder name, a repo id) is shown literally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Checkbox, DataTable, Input, OptionList, Static
from textual.widgets.option_list import Option

from engine.redact import redact

__all__ = ["Choice", "ChoiceModal", "Dialog", "KeyRow", "KeysModal", "PickModal", "PromptModal"]

#: What a prompt says when the text holds the user's Hugging Face token (it is masked in place).
TOKEN_PASTED = (
    "that is your Hugging Face token: it never goes here "
    "(pushes read it from HF_TOKEN or `hf auth login`)"
)


class Dialog(ModalScreen):
    """A centred box over the dimmed screen; the base of the modals here."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
    }
    Dialog > .dialog {
        width: auto;
        min-width: 44;
        max-width: 90%;
        height: auto;
        max-height: 90%;
        padding: 1 2;
        border: round $primary;
        background: $surface;
    }
    Dialog .dialog-title {
        text-style: bold;
        margin-bottom: 1;
    }
    Dialog .dialog-message {
        width: auto;
        max-width: 80;
    }
    Dialog .dialog-buttons {
        height: auto;
        width: auto;
        margin-top: 1;
    }
    Dialog .dialog-buttons Button {
        margin-right: 1;
    }
    Dialog .dialog-error {
        color: $error;
        height: auto;
    }
    """


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    key: str | None = None  # a key that picks it directly
    variant: str = "default"  # Button variant: default | primary | error | warning | success


class ChoiceModal(Dialog):
    """A question with buttons; Enter presses the focused one (the default at first)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel", tooltip="Close, do nothing")
    ]

    def __init__(
        self,
        title: str,
        message: str | Text,
        choices: list[Choice],
        default: str | None = None,
        cancel: str | None = None,
    ) -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._choices = choices
        self._default = default or choices[0].id
        self._cancel = cancel

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self._title), classes="dialog-title")
            message = self._message if isinstance(self._message, Text) else Text(self._message)
            yield Static(message, classes="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                for choice in self._choices:
                    label = f"{choice.label} ({choice.key})" if choice.key else choice.label
                    yield Button(Text(label), id=f"choice-{choice.id}", variant=choice.variant)

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self._default}", Button).focus()
        self._fit_message()

    def on_resize(self) -> None:
        self._fit_message()

    def _fit_message(self) -> None:
        # at most 80 cells, and never wider than the dialog can be (90% of the screen less
        # its border and padding): a narrow terminal wraps the text instead of cutting it
        widest = int(self.app.size.width * 0.9) - 6
        self.query_one(".dialog-message", Static).styles.max_width = max(20, min(80, widest))

    def on_key(self, event) -> None:
        for choice in self._choices:
            if choice.key and event.key == choice.key:
                event.stop()
                self.dismiss(choice.id)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss((event.button.id or "").removeprefix("choice-"))

    def action_cancel(self) -> None:
        self.dismiss(self._cancel)


class PromptModal(Dialog):
    """Asks for one line of text (and optionally a yes/no option); None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel", tooltip="Close, do nothing")
    ]

    def __init__(
        self,
        title: str,
        prompt: str,
        value: str = "",
        placeholder: str = "",
        option: str | None = None,
        option_value: bool = True,
        validate: Callable[[str], str | None] | None = None,
        submit_label: str = "OK",
        suggester: Suggester | None = None,
    ) -> None:
        super().__init__()
        self._suggester = suggester
        self._title = title
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder
        self._option = option
        self._option_value = option_value
        self._validate = validate
        self._submit_label = submit_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self._title), classes="dialog-title")
            yield Static(Text(self._prompt))
            yield Input(
                self._value,
                placeholder=self._placeholder,
                suggester=self._suggester,
                id="prompt-input",
            )
            yield Static("", classes="dialog-error", id="prompt-error")
            if self._option:
                yield Checkbox(Text(self._option), self._option_value, id="prompt-option")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._submit_label, id="prompt-ok", variant="primary")
                yield Button("Cancel", id="prompt-cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _submit(self) -> None:
        field = self.query_one(Input)
        # Enter takes what the field shows: the typed text completed by its suggestion
        suggestion = getattr(field, "_suggestion", "") or ""
        if self._suggester and len(suggestion) > len(field.value) and field.cursor_at_end:
            field.value = suggestion
        value = field.value.strip()
        masked = redact(value)
        if masked != value:  # a pasted token never stays on screen, nor goes any further
            field.value = masked
            self.query_one("#prompt-error", Static).update(Text(TOKEN_PASTED))
            return
        error = self._validate(value) if self._validate else None
        if error:
            self.query_one("#prompt-error", Static).update(Text(error))
            return
        checked = self.query_one(Checkbox).value if self._option else False
        self.dismiss((value, checked))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    @on(Button.Pressed, "#prompt-ok")
    def _ok(self) -> None:
        self._submit()

    @on(Button.Pressed, "#prompt-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickModal(Dialog):
    """Pick one entry of a list (Enter); None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="modal.cancel", tooltip="Close, do nothing")
    ]

    def __init__(self, title: str, options: list[tuple[str, str | Text]], empty: str = "") -> None:
        super().__init__()
        self._title = title
        self._options = options
        self._empty = empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self._title), classes="dialog-title")
            if self._options:
                yield OptionList(
                    *[
                        Option(label if isinstance(label, Text) else Text(label), id=option_id)
                        for option_id, label in self._options
                    ],
                    id="pick-list",
                )
            else:
                yield Static(Text(self._empty))

    def on_mount(self) -> None:
        if self._options:
            self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class KeyRow:
    key: str
    description: str
    tooltip: str
    binding_id: str


class KeysModal(Dialog):
    """Every key that does something here, with what it does (the `?` screen)."""

    DEFAULT_CSS = """
    KeysModal > .dialog { width: 90%; }
    KeysModal DataTable { height: auto; max-height: 100%; }
    """
    BINDINGS = [
        Binding(
            "escape,question_mark,q", "close", "Close", id="help.close", tooltip="Close the keys"
        ),
    ]

    def __init__(self, title: str, rows: list[KeyRow]) -> None:
        super().__init__()
        self._title = title
        self._rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self._title), classes="dialog-title")
            yield DataTable(cursor_type="row", zebra_stripes=True, id="keys-table")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        key_w = max([3, *(cell_len(r.key) for r in self._rows)])
        does_w = max([4, *(cell_len(r.description) for r in self._rows)])
        # the dialog is 90% of the screen less its border and padding; the table's cells have
        # one cell of padding each side and a scrollbar: "More" wraps in what is left
        inner = int(self.app.size.width * 0.9) - 6 - 2 * 3 - 2
        more_w = max(20, inner - key_w - does_w)
        table.add_column("Key", width=key_w)
        table.add_column("Does", width=does_w)
        table.add_column("More", width=more_w)
        for row in self._rows:
            table.add_row(
                Text(row.key, style="bold"),
                Text(row.description),
                Text(row.tooltip),
                height=None,  # as many lines as the tooltip needs
            )
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
