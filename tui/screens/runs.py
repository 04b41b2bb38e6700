"""Runs: every run under the output folder, newest first, refreshed every 2 s (in a worker).

Enter attaches (Train screen); `r` resumes a stopped, failed or crashed run; `d` deletes after
asking; `space` marks runs and `o` overlays the loss curves of the marked ones; `e` exports
the run's model (tui/widgets/export_dialog.py).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from engine.runs import RunInfo
from tui import engine_client
from tui.export_command import has_model, source_for
from tui.runs_index import COLUMNS, RunsIndex, fit_columns
from tui.screens.runs_table import (
    RunsTable,
    cell,
    delete_modal,
    detail_text,
    head_text,
    mark_cell,
)
from tui.widgets import plot_data
from tui.widgets.export_dialog import open_export
from tui.widgets.fit_footer import FitFooter
from tui.widgets.loss_plot import LossPlot

REFRESH_S = 2.0


class RunsListed(Message):
    def __init__(
        self, output_dir: Path, runs: list[RunInfo], rows: dict[str, tuple[str, ...]]
    ) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.runs = runs
        self.rows = rows  # run_dir -> table_row(info)


class LossesLoaded(Message):
    def __init__(self, series: list[tuple[str, list[tuple[int, float]]]]) -> None:
        super().__init__()
        self.series = series


class RunActionDone(Message):
    def __init__(
        self,
        text: str,
        error: bool = False,
        attach: Path | None = None,
        deleted: Path | None = None,
    ) -> None:
        super().__init__()
        self.text = text
        self.error = error
        self.attach = attach
        self.deleted = deleted


class RunsScreen(Screen):
    CSS_PATH = "runs.tcss"
    AUTO_FOCUS = "RunsTable"

    BINDINGS = [
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="runs.mark",
            tooltip="Mark or unmark this run (mark two or more to compare their loss curves)",
        ),
        Binding(
            "o",
            "overlay",
            "Overlay",
            id="runs.overlay",
            tooltip="Overlay the loss curves of the marked runs",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            id="runs.resume",
            tooltip="Start this stopped, failed or crashed run again from its latest checkpoint",
        ),
        Binding(
            "e",
            "export",
            "Export",
            id="runs.export",
            tooltip="Export this run's model for AUTOMATIC1111, ComfyUI or diffusers",
        ),
        Binding(
            "d",
            "delete",
            "Delete",
            id="runs.delete",
            tooltip="Delete this run's folder (asks first; not while it is live)",
        ),
        Binding(
            "escape",
            "close_overlay",
            "Close plot",
            id="runs.close_overlay",
            tooltip="Hide the loss curves",
            show=False,  # the plot's title says it (the footer has no room at 80 columns)
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunInfo] = []
        self.marked: set[str] = set()  # run_dir as str
        self._loaded = False
        self._index = RunsIndex()
        self._listed: tuple[Path, list] | None = None  # posted last: posted again on a change
        self._rows: dict[str, tuple[str, ...]] = {}  # what the table shows, per run
        self._head: Text | None = None
        self._detail: Text | None = None
        self._current_state: tuple[str, str] | None = None
        self._columns: tuple[str, ...] = ()  # shown: those that fit the width (fit_columns)

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs-main"):
            yield Static(id="runs-head")
            yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="runs-detail")
            plot = LossPlot(id="runs-plot", smoothing=None, empty="mark two or more runs, then o")
            plot.border_title = "loss curves · esc closes"
            yield plot
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = "Runs"
        self._set_columns(COLUMNS)
        self.query_one("#runs-plot").display = False
        self.refresh_runs()
        self.set_interval(REFRESH_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_runs()

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    # ------------------------------------------------------------------ loading

    @property
    def output_dir(self) -> Path:
        return Path(self.app.state.output_dir)

    @work(thread=True, exclusive=True, group="runs-list", exit_on_error=False)
    def refresh_runs(self, force: bool = False) -> None:
        output_dir = self.output_dir
        version = self._index.version
        entries = self._index.entries(self.app.state.runs_dir)
        if self._index.version == version and self._listed is not None and not force:
            if self._listed[0] == output_dir:
                return  # no run changed: nothing built, compared or posted (idle at 1,000 runs)
        listed_rows = [(entry.info, entry.row) for entry in entries]
        runs = [info for info, _ in listed_rows]
        rows = {str(info.run_dir): row for info, row in listed_rows}
        details = [(i.error, i.method) for i in runs]
        listed = (output_dir, list(zip(rows.items(), details, strict=True)))
        if listed == self._listed and not force:
            return  # nothing changed: no message, no redraw
        self._listed = listed
        self.post_message(RunsListed(output_dir, runs, rows))

    def on_runs_listed(self, message: RunsListed) -> None:
        self._loaded = True
        self.runs = message.runs
        keys = {str(r.run_dir) for r in message.runs}
        self.marked &= keys
        table = self.query_one(RunsTable)
        cursor_key = self._cursor_key()
        old_keys = [row.key.value for row in table.ordered_rows]
        new_keys = list(message.rows)
        columns = self._fitting(message.rows)
        if old_keys == new_keys and columns == self._columns:
            for key, row in message.rows.items():
                before = self._rows.get(key)
                for i, (column, value) in enumerate(zip(COLUMNS[1:], row, strict=True)):
                    if column in columns and (before is None or before[i] != value):
                        # update_width: a cell that grows widens its column (not " comple")
                        table.update_cell(key, column, cell(column, value), update_width=True)
            self._rows = dict(message.rows)
        else:
            self._rows = dict(message.rows)
            self._set_columns(columns)
            if cursor_key in keys:
                table.move_cursor(row=table.get_row_index(cursor_key), animate=False)
        head = head_text(message.runs, message.output_dir)
        if head != self._head:
            self._head = head
            self.query_one("#runs-head", Static).update(head)
        self._show_detail()

    def _fitting(self, rows: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        table = self.query_one(RunsTable)
        width = table.scrollable_content_region.width
        return fit_columns(list(rows.values()), width) if width else COLUMNS

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        """(Re)build the table with these columns and the rows known."""
        self._columns = columns
        table = self.query_one(RunsTable)
        table.clear(columns=True)
        for name in columns:
            table.add_column(name, key=name or "mark")  # (widths follow the cells)
        for key, row in self._rows.items():
            cells = [cell(c, v) for c, v in zip(COLUMNS[1:], row, strict=True)]
            shown = [text for c, text in zip(COLUMNS[1:], cells, strict=True) if c in columns]
            table.add_row(mark_cell(key in self.marked), *shown, key=key)

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)  # once the table has its new width

    def _refit(self) -> None:
        columns = self._fitting(self._rows)
        if columns != self._columns:
            cursor_key = self._cursor_key()
            self._set_columns(columns)
            if cursor_key in self._rows:
                table = self.query_one(RunsTable)
                table.move_cursor(row=table.get_row_index(cursor_key), animate=False)

    # ------------------------------------------------------------------ cursor

    def _cursor_key(self) -> str | None:
        table = self.query_one(RunsTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - cursor outside the rows
            return None

    @property
    def current(self) -> RunInfo | None:
        key = self._cursor_key()
        return next((r for r in self.runs if str(r.run_dir) == key), None)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self) -> None:
        self._show_detail()
        self.refresh_bindings()

    def _show_detail(self) -> None:
        info = self.current
        detail = detail_text(info)
        if detail != self._detail:
            self._detail = detail
            self.query_one("#runs-detail", Static).update(detail)
        state = (str(info.run_dir), info.state) if info is not None else None
        if state != self._current_state:
            self._current_state = state
            self.refresh_bindings()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        info = self.current
        if action == "toggle_mark":
            return info is not None
        if action == "overlay":
            return len(self.marked) >= 2
        if action == "resume":
            return info is not None and info.resumable
        if action == "delete":
            return info is not None and not info.live
        if action == "export":
            return info is not None and has_model(info.run_dir)
        if action == "close_overlay":
            return self.query_one("#runs-plot").display
        return True

    @on(DataTable.RowSelected, "#runs-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.app.attach_run(Path(event.row_key.value))

    def action_toggle_mark(self) -> None:
        info = self.current
        if info is None:
            return
        key = str(info.run_dir)
        self.marked ^= {key}
        self.query_one(RunsTable).update_cell(key, "mark", mark_cell(key in self.marked))
        table = self.query_one(RunsTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)
        self.refresh_bindings()

    def action_overlay(self) -> None:
        marked = [r for r in self.runs if str(r.run_dir) in self.marked]
        if len(marked) >= 2:
            self.load_losses([(r.run_id, r.run_dir) for r in marked])

    @work(thread=True, exclusive=True, group="runs-losses", exit_on_error=False)
    def load_losses(self, runs: list[tuple[str, Path]]) -> None:
        plot_data.preload()  # numpy, for the plot: here rather than on the UI thread
        series = [(name, engine_client.load_loss_history(run_dir)) for name, run_dir in runs]
        self.post_message(LossesLoaded(series))

    def on_losses_loaded(self, message: LossesLoaded) -> None:
        plot = self.query_one("#runs-plot", LossPlot)
        plot.clear()
        for name, points in message.series:
            plot.set_series(name, points)
        plot.display = True
        self.refresh_bindings()

    def action_close_overlay(self) -> None:
        self.query_one("#runs-plot").display = False
        self.refresh_bindings()

    def action_resume(self) -> None:
        info = self.current
        if info is not None and info.resumable:
            self.resume(info.run_dir)

    @work(thread=True, group="runs-action", exit_on_error=False)
    def resume(self, run_dir: Path) -> None:
        try:
            engine_client.resume_run(run_dir)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.post_message(RunActionDone(f"{run_dir.name}: not resumed: {exc}", error=True))
            return
        self.post_message(RunActionDone(f"Resuming {run_dir.name}", attach=run_dir))

    def action_export(self) -> None:
        if (info := self.current) is not None:
            open_export(self, source_for(info.run_dir))

    def action_delete(self) -> None:
        info = self.current
        if info is None or info.live:
            return
        run_dir = info.run_dir

        def chosen(choice: str | None) -> None:
            if choice == "delete":
                self.delete(run_dir)

        self.app.push_screen(delete_modal(info), chosen)

    @work(thread=True, group="runs-action", exit_on_error=False)
    def delete(self, run_dir: Path) -> None:
        try:
            engine_client.delete_run(run_dir)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self.post_message(RunActionDone(f"{run_dir.name}: not deleted: {exc}", error=True))
            return
        self.post_message(RunActionDone(f"Deleted {run_dir.name}", deleted=run_dir))

    def on_run_action_done(self, message: RunActionDone) -> None:
        self.notify(
            message.text,
            title="Runs",
            severity="error" if message.error else "information",
            markup=False,
        )
        self.refresh_runs()
        if message.deleted is not None:
            self.app.forget_run(message.deleted)
        if message.attach is not None:
            self.app.attach_run(message.attach, notify=False)
