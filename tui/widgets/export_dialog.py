"""The export dialog of the Runs and Generate screens: pick the format, fuse and precision, and
run `python -m engine export` (tui/export_command.py) with its progress, its one-line error or
the path it wrote shown in the dialog. Closing it while an export runs stops the export (the
engine writes its output whole or not at all). Dismisses with the written path, or None."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, RadioButton, RadioSet, Static
from textual.worker import get_current_worker

from tui import engine_client
from tui.child_process import CANCELLED, run_polled
from tui.export_command import (
    DTYPES,
    ExportChoice,
    ExportSource,
    export_command,
    formats_for,
    said_in_the_dialog,
    written_path,
)
from tui.widgets.modals import Dialog

__all__ = ["ExportModal", "open_export"]

TIMEOUT_S = 3 * 3600  # an SDXL-size full model, fused and saved on a slow disk, with room


class ExportModal(Dialog):
    """Export one run's final model or checkpoint."""

    DEFAULT_CSS = """
    ExportModal RadioSet, ExportModal Checkbox {
        border: none;
        padding: 0;
        height: auto;
        background: $surface;
    }
    ExportModal > .dialog {
        width: 80;
    }
    ExportModal RadioSet:focus, ExportModal Checkbox:focus {
        border: none;
        background: $boost;
    }
    ExportModal RadioSet {
        width: 100%;
    }
    ExportModal #export-dtype {
        layout: horizontal;
        width: auto;
    }
    ExportModal #export-dtype > RadioButton {
        width: auto;
        margin-right: 3;
    }
    ExportModal .export-label {
        color: $text-muted;
    }
    ExportModal #export-status {
        height: auto;
        max-width: 76;
        margin-top: 1;
    }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Close", id="modal.cancel", tooltip="Close (stops an export)")
    ]

    def __init__(self, source: ExportSource) -> None:
        super().__init__()
        self.source = source
        self.formats = formats_for(source.method)
        self.running = False
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        src = self.source
        with Vertical(classes="dialog"):
            yield Static(Text(f"Export {src.run_dir.name}"), classes="dialog-title")
            kind = "LoRA" if src.method == "lora" else "full fine-tune"
            yield Static(Text(f"from its {src.label} ({kind})"))
            yield Static("format", classes="export-label")
            with RadioSet(id="export-format"):
                for i, (value, label) in enumerate(self.formats):
                    yield RadioButton(label, value=i == 0, id=f"format-{value}")
            if src.method == "lora":
                yield Checkbox(
                    "fuse: merge the LoRA into its base (a full model)",
                    id="export-fuse",
                    disabled=self.formats[0][0] == "kohya",  # kohya is the LoRA alone
                )
            yield Static("precision", classes="export-label")
            with RadioSet(id="export-dtype"):
                for dtype in DTYPES:
                    yield RadioButton(dtype, value=dtype == "fp16", id=f"dtype-{dtype}")
            yield Static("", id="export-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="export-go", variant="primary")
                yield Button("Close", id="export-close")

    def on_mount(self) -> None:
        self.query_one("#export-format", RadioSet).focus()

    # -- the choice -----------------------------------------------------------------------------
    def choice(self) -> ExportChoice:
        fmt = self.query_one("#export-format", RadioSet).pressed_button
        dtype = self.query_one("#export-dtype", RadioSet).pressed_button
        fuse = self.query("#export-fuse")
        return ExportChoice(
            format=(fmt.id or "format-").removeprefix("format-") if fmt else self.formats[0][0],
            fuse=bool(fuse) and fuse.first(Checkbox).value,
            dtype=(dtype.id or "dtype-fp16").removeprefix("dtype-") if dtype else "fp16",
        )

    @on(RadioSet.Changed, "#export-format")
    def _format_changed(self, event: RadioSet.Changed) -> None:
        """A LoRA as one file is a fused model; a kohya file is the LoRA alone."""
        fuse = self.query("#export-fuse")
        if not fuse:
            return
        box = fuse.first(Checkbox)
        fmt = (event.pressed.id or "").removeprefix("format-")
        if fmt == "single-file":
            box.value = True
        elif fmt == "kohya":
            box.value = False
        box.disabled = fmt in ("single-file", "kohya")

    # -- running it -----------------------------------------------------------------------------
    @on(Button.Pressed, "#export-go")
    def _go(self, event: Button.Pressed) -> None:
        event.stop()
        if self.running:
            return
        cmd = export_command(self.source, self.choice())
        self.running = True
        self.query_one("#export-go", Button).disabled = True
        self.query_one("#export-close", Button).label = "Stop"
        self._status(Text("exporting…", style="bold"))
        self._export(cmd)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, cmd: list[str]) -> None:
        worker = get_current_worker()
        t0 = time.monotonic()

        def progress(line: str) -> None:
            text = Text(f"exporting… {time.monotonic() - t0:.0f} s · ", style="bold")
            text.append(line, style="")
            self.app.call_from_thread(self._status, text)

        try:
            code, output = run_polled(
                cmd,
                lambda: worker.is_cancelled,
                env=engine_client.engine_env(),
                timeout_s=TIMEOUT_S,
                progress=progress,
            )
        except OSError as exc:
            code, output = 1, f"error: could not start the export: {exc}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._done, code, output, time.monotonic() - t0)

    def _done(self, code: int, output: str, seconds: float) -> None:
        self.running = False
        self.query_one("#export-close", Button).label = "Close"
        self.query_one("#export-go", Button).disabled = False  # another format, say
        path = written_path(output) if code == 0 else None
        if path is not None:
            self.written = path
            self._status(Text.assemble(("wrote ", "bold green"), str(path), f" ({seconds:.0f} s)"))
            self.query_one("#export-close", Button).focus()
            return
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
        last = said_in_the_dialog(lines[-1]) if lines else f"the export ended with code {code}"
        if code == CANCELLED:
            last = "stopped"
        self._status(Text(last, style="red"))

    def _status(self, text: Text) -> None:
        self.query_one("#export-status", Static).update(text)

    # -- closing --------------------------------------------------------------------------------
    @on(Button.Pressed, "#export-close")
    def _close_pressed(self, event: Button.Pressed) -> None:
        """Stop (while an export runs: the dialog stays) or Close."""
        event.stop()
        if not self.running:
            self.action_cancel()
            return
        self.workers.cancel_group(self, "export")
        self._done(CANCELLED, "", 0.0)

    def action_cancel(self) -> None:
        """Close; an export still running is stopped (its worker cancelled: the child ends)."""
        self.workers.cancel_group(self, "export")
        self.dismiss(self.written)


def open_export(screen: Screen, source: ExportSource | None) -> None:
    """The dialog for `source` over `screen` (a notification where there is nothing to export);
    when it closes having written something, a notification with the path."""
    if source is None:
        screen.notify(
            "nothing to export yet: the run has no final model and no checkpoint",
            title="Export",
            severity="warning",
        )
        return

    def closed(path: Path | None) -> None:
        if path is not None:
            screen.notify(f"wrote {path}", title="Export", markup=False)

    screen.app.push_screen(ExportModal(source), closed)
