"""Data: pick the image folder (or a hub dataset), see its images and what is wrong with them.

The dataset check and the thumbnails run in worker threads and report back with one message
each; the screen never touches the disk on the event loop (the tree loads in its own worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Static
from textual.worker import get_current_worker

from engine.sources import BUILTIN_TINY, is_local_path
from tui.screens.data_jobs import (
    DatasetChecked,
    DatasetCheckFailed,
    ThumbnailsReady,
    check_dataset,
    thumbnail_batches,
)
from tui.screens.data_push import PushFinished, PushOutput, push_messages, push_modal
from tui.screens.data_report import bucket_rows, problem_rows, report_text
from tui.state import ConfigChanged, data_folder
from tui.widgets.fit_footer import FitFooter
from tui.widgets.folder_picker import FolderPicker, display_path
from tui.widgets.thumbnail_grid import ThumbnailGrid

if TYPE_CHECKING:
    # engine.doctor (and PIL, which it imports) loads in the check's worker: not before the
    # first frame.
    from engine.doctor import DatasetReport


class DataScreen(Screen):
    CSS_PATH = "data.tcss"
    AUTO_FOCUS = "FolderTree"

    BINDINGS = [
        Binding(
            "slash",
            "focus_path",
            "Path",
            id="data.path",
            tooltip="Type a folder path (Tab completes) or a hub dataset id, then Enter",
        ),
        Binding(
            "escape",
            "leave_input",
            "Leave input",
            show=False,
            id="data.leave_input",
            tooltip="Leave the path input so that keys work again",
        ),
        Binding(
            "u",
            "use_folder",
            "Use",
            id="data.use",
            tooltip="Use this folder (or hub dataset) as train.instance_data in the config",
        ),
        Binding(
            "r",
            "recheck",
            "Recheck",
            id="data.recheck",
            tooltip="Run the dataset check on the folder again",
        ),
        Binding(
            "p",
            "push",
            "Push",
            id="data.push",
            tooltip="Upload this folder to the Hugging Face Hub as a dataset (asks the repo id)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.chosen: str | None = None  # what the user picked: a folder path or a hub id
        self.folder: Path | None = None  # the local folder being shown
        self.report: DatasetReport | None = None
        self.pushing = False
        self._seen_value: str | None = None  # the config's instance_data, last time we looked

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        state = self.app.state
        start = data_folder(state.instance_data)
        root = Path.cwd()
        # builtin:tiny's images live in the cache: the tree starts here, by the user's folders
        if start is not None and state.instance_data != BUILTIN_TINY and start.parent.is_dir():
            root = start.parent.resolve()
        value = "" if start is None else state.instance_data or ""
        with Horizontal(id="data-main"):
            yield FolderPicker(root, value=value, id="data-picker")
            with Vertical(id="data-detail"):
                yield Static(id="data-folder")
                with VerticalScroll(id="data-summary-box"):  # more kinds than fit: scroll
                    yield Static(id="data-summary")
                yield ThumbnailGrid(protocol=state.image_protocol, id="data-thumbs")
                yield DataTable(id="data-problems", cursor_type="row", zebra_stripes=True)
                yield Log(id="data-push-log", highlight=False)
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = "Data"
        table = self.query_one("#data-problems", DataTable)
        table.add_columns("File", "Size", "Problem")
        table.display = False
        self.query_one("#data-push-log", Log).display = False
        self._show_folder_line(
            Text(
                "Choose the folder of your concept images: / types a path (or a hub dataset "
                "id), the tree picks one (Enter).",
                style="dim",
            )
        )
        self._sync_from_config()

    def on_screen_resume(self) -> None:
        self._sync_from_config()
        self.refresh_bindings()

    def _sync_from_config(self) -> None:
        """Show the config's instance_data when it changed since this screen last looked (a
        folder picked here but not used stays while other fields change)."""
        value = self.app.state.instance_data
        if value == self._seen_value:
            return
        self._seen_value = value
        if value and value != self.chosen:
            shown = value if value != BUILTIN_TINY else display_path(data_folder(value))
            self.query_one(FolderPicker).set_value(shown)
            self.choose(value)

    # ------------------------------------------------------------------ choosing

    @on(FolderPicker.Chosen)
    def _chosen(self, event: FolderPicker.Chosen) -> None:
        self.choose(event.value)
        self.query_one("#folder-tree").focus()

    def choose(self, value: str) -> None:
        """Show a folder (checked in a worker) or a hub dataset id."""
        self.chosen = value
        self.report = None
        folder = data_folder(value)
        if folder is None and not is_local_path(value):
            self.folder = None
            self.workers.cancel_group(self, "data-check")
            self.workers.cancel_group(self, "data-thumbs")
            self._clear_results()
            self._show_folder_line(
                Text.assemble(
                    ("hub dataset ", "bold"),
                    (value, "bold"),
                    ": checked when training starts",
                )
            )
            self.query_one("#data-summary", Static).update(
                Text("u uses it as the training data.", style="dim")
            )
        else:
            self.folder = (folder if folder is not None else Path(value).expanduser()).absolute()
            self._clear_results()
            line = Text.assemble(("Folder ", "bold"), (value, "bold"))
            if value == BUILTIN_TINY:
                line.append(f"  the demo images ({self.folder})", style="dim")
            self._show_folder_line(line)
            self.query_one("#data-summary", Static).update(Text("checking…", style="dim"))
            self.run_check(self.folder, self._resolution(), self._bucket_setting())
            self.load_thumbnails(self.folder)
        state = self.app.state
        picked = self._config_value()
        in_use = state.config is None or picked == state.config.train.instance_data
        state.picked_data = None if in_use else picked  # quitting asks about it
        self.refresh_bindings()

    def _bucket_setting(self) -> tuple[str, str, str | None]:
        """(train.aspect_buckets, model, revision): the check resolves auto by the family."""
        cfg = self.app.state.config
        if cfg is None:
            return "off", "", None
        return cfg.train.aspect_buckets, cfg.train.model, cfg.train.revision

    def _resolution(self) -> int:
        cfg = self.app.state.config
        return cfg.train.resolution if cfg else 512

    def _show_folder_line(self, text: Text) -> None:
        self.query_one("#data-folder", Static).update(text)

    def _clear_results(self) -> None:
        self.query_one("#data-problems", DataTable).clear()
        self.query_one("#data-problems", DataTable).display = False
        # removes the previews there now (not those of the next folder, arriving later)
        self.query_one(ThumbnailGrid).remove_children()
        self.query_one("#data-summary", Static).update("")

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="data-check", exit_on_error=False)
    def run_check(
        self,
        folder: Path,
        resolution: int,
        buckets: tuple[str, str, str | None] = ("off", "", None),
    ) -> None:
        worker = get_current_worker()
        message = check_dataset(folder, resolution, buckets, lambda: worker.is_cancelled)
        if message is not None:
            self.post_message(message)

    @work(thread=True, exclusive=True, group="data-thumbs", exit_on_error=False)
    def load_thumbnails(self, folder: Path) -> None:
        worker = get_current_worker()
        for message in thumbnail_batches(folder, lambda: worker.is_cancelled):
            self.post_message(message)

    # ------------------------------------------------------------------ results

    def on_dataset_checked(self, message: DatasetChecked) -> None:
        if message.folder != self.folder:
            return
        report = message.report
        self.report = report
        if self._config_value() == self.app.state.instance_data:
            self.app.state.num_images = report.count  # the summary line on Config counts them
        self.query_one("#data-summary", Static).update(report_text(report))
        self._tree_follows(message.folder)
        table = self.query_one("#data-problems", DataTable)
        table.clear(columns=True)
        flagged = {i.name for i in report.images if i.problems}
        if message.buckets is not None:  # every image, with its bucket
            table.add_columns("File", "Size", "Bucket", "Problem")
            for name, size, bucket, labels, key in bucket_rows(report, message.buckets):
                table.add_row(name, size, bucket, labels, key=key)
        else:
            table.add_columns("File", "Size", "Problem")
            for name, size, labels, key in problem_rows(report):
                table.add_row(name, size, labels, key=key)
        table.display = bool(table.row_count)
        self.query_one(ThumbnailGrid).flag(flagged)
        self.refresh_bindings()

    def _tree_follows(self, folder: Path) -> None:
        """A folder outside the tree (typed, or set on Config) moves the tree to its parent, so
        the tree shows where it is (not the demo's images in the cache)."""
        tree = self.query_one(FolderPicker).tree
        if self.chosen == BUILTIN_TINY or folder.is_relative_to(Path(tree.path).absolute()):
            return
        tree.path = folder.parent

    def on_dataset_check_failed(self, message: DatasetCheckFailed) -> None:
        if message.folder != self.folder:
            return
        self.query_one("#data-summary", Static).update(Text(message.error, style="bold red"))
        self.refresh_bindings()

    async def on_thumbnails_ready(self, message: ThumbnailsReady) -> None:
        if message.folder != self.folder:
            return
        grid = self.query_one(ThumbnailGrid)
        flagged = {i.name for i in self.report.images if i.problems} if self.report else set()
        items = [(img, name, name in flagged) for img, name, _ in message.items]
        await grid.add_thumbnails(items)
        if message.more:
            await grid.mount(Static(Text(f"+{message.more} more", style="dim")))

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "use_folder":
            cfg = self.app.state.config
            return bool(self.chosen and cfg and cfg.train.instance_data != self._config_value())
        if action == "recheck":
            return self.folder is not None
        if action == "push":
            return bool(self.report and self.report.count and not self.pushing)
        return True

    def _config_value(self) -> str | None:
        """What `train.instance_data` becomes for the current choice."""
        if self.chosen is None:
            return None
        state = self.app.state
        if (
            state.instance_data == BUILTIN_TINY
            and self.folder == data_folder(BUILTIN_TINY).absolute()
        ):
            return BUILTIN_TINY
        return self.chosen

    def action_focus_path(self) -> None:
        self.query_one("#folder-path").focus()

    def action_leave_input(self) -> None:
        self.query_one("#folder-tree").focus()

    def action_use_folder(self) -> None:
        state = self.app.state
        value = self._config_value()
        if state.config is None or value is None:
            return
        train = state.config.train.model_copy(update={"instance_data": value})
        state.num_images = self.report.count if self.report else None
        state.change_config(state.config.model_copy(update={"train": train}))
        state.picked_data = None
        self._seen_value = value
        self.app.post_message(ConfigChanged("data", self))
        self.notify(
            f"train.instance_data = {value}", title="Config changed (unsaved)", markup=False
        )
        self.refresh_bindings()

    def action_recheck(self) -> None:
        if self.chosen:
            self.choose(self.chosen)

    def action_push(self) -> None:
        if self.folder is None or self.pushing:
            return
        cfg = self.app.state.config
        default = (cfg.hub.dataset_repo if cfg else None) or ""
        folder = self.folder

        def pushed(result: tuple[str, bool] | None) -> None:
            if result:
                repo_id, dry_run = result
                self.pushing = True
                self.refresh_bindings()
                self.push_dataset(folder, repo_id, dry_run)

        self.app.push_screen(push_modal(folder.name, default), pushed)

    @work(thread=True, exclusive=True, group="data-push", exit_on_error=False)
    def push_dataset(self, folder: Path, repo_id: str, dry_run: bool) -> None:
        for message in push_messages(folder, repo_id, dry_run):
            self.post_message(message)

    def on_push_output(self, message: PushOutput) -> None:
        log = self.query_one("#data-push-log", Log)
        log.display = True
        log.write_line(message.line)

    def on_push_finished(self, message: PushFinished) -> None:
        self.pushing = False
        what = "dry run" if message.dry_run else "push"
        if message.returncode == 0:
            self.notify(f"{what} to {message.repo_id}: done", title="Hub", markup=False)
        else:
            self.notify(
                f"{what} to {message.repo_id} failed (exit {message.returncode}); see the log",
                title="Hub",
                severity="error",
                markup=False,
            )
        self.refresh_bindings()
