"""Generate: make images with a trained run (final model or a checkpoint), a LoRA on a base
model, or any hub id / local diffusers folder; push the run's model to the Hub.

Each request (the `generate` arguments, `--output-dir DIR` added) goes to the screen's warm
worker process (tui/generate_worker.py), which keeps the pipeline loaded between prompts and
writes what `generate` writes (DIR/events.jsonl, the images, DIR/generate.log); a thread worker
follows DIR/events.jsonl and each `sample` event puts its image into the grid as soon as it is
written. The form is tui/widgets/generate_form.py, the request it makes tui/generate_request.py.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Input, Select, Static
from textual.worker import get_current_worker

from tui.export_command import ExportSource, source_for_choice
from tui.generate_request import (
    SOURCE_CUSTOM,
    SOURCE_LORA,
    GenerateRequest,
    generate_args,
    images_run,
    model_choices,
    newest_run_with_model,
    output_dir_for,
)
from tui.generate_worker import GenerateWorker
from tui.screens.generate_follow import CANCEL_GRACE_S, GenDone, GenEvents, GenNote, follow_request
from tui.screens.generate_push import PushResult, confirm_modal, push_status, repo_modal, run_push
from tui.screens.generate_status import done_status, read_events
from tui.widgets.export_dialog import open_export
from tui.widgets.fit_footer import FitFooter
from tui.widgets.fit_line import FitLine
from tui.widgets.generate_form import GenerateForm
from tui.widgets.image_grid import ImageGrid
from tui.widgets.prompt_input import PromptHistory, history_path

FOLLOW_MODELS_S = 2.0  # how often the attached run's models are looked at again


class GenerateScreen(Screen):
    CSS_PATH = "generate.tcss"
    AUTO_FOCUS = None
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding(
            "ctrl+g",
            "generate",
            "Generate",
            id="generate.run",
            priority=True,
            tooltip="Make images with these settings (also enter in the prompt)",
        ),
        Binding(
            "g",
            "generate",
            "Generate",
            id="generate.run_key",
            show=False,
            tooltip="Make images with these settings",
        ),
        Binding(
            "c",
            "cancel",
            "Cancel",
            id="generate.cancel",
            tooltip="Stop the generation that is running",
        ),
        Binding(
            "o",
            "open_image",
            "Enlarge",
            id="generate.open",
            tooltip="Show the selected (or newest) image large",
        ),
        Binding(
            "p",
            "push",
            "Push model",
            id="generate.push",
            tooltip="Push this run's model to the Hugging Face Hub (dry run first)",
        ),
        Binding(
            "e",
            "export",
            "Export",
            id="generate.export",
            tooltip="Export the chosen run model (final or checkpoint) for A1111, ComfyUI or "
            "diffusers",
        ),
        Binding(
            "slash", "focus_prompt", "Prompt", id="generate.focus_prompt", tooltip="Type a prompt"
        ),
        Binding(
            "escape",
            "blur",
            "Leave field",
            id="generate.blur",
            show=False,
            tooltip="Leave the text field, so single keys work again",
        ),
    ]

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.history = PromptHistory(history_path())
        self.worker = GenerateWorker()  # started by the first request, kept while the app runs
        self.request_id: int | None = None
        self._cancel_at: float | None = None
        self._load_s: float | None = None
        self.out_dir: Path | None = None
        self.made = 0
        self.expected = 0
        self._run_dir: Path | None = None
        self._pushing = False
        self._t0 = 0.0
        self._choices: list[tuple[str, str]] = []

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield GenerateForm(self.history, id="form")
        yield FitLine(id="gen-status", tail_style="dim")
        yield Static(id="gen-error", markup=False)
        yield ImageGrid(
            id="images", rows=40, grow=True, empty="images appear here as they are made"
        )  # tiles as large as the images fit the space
        yield FitFooter()

    def on_mount(self) -> None:
        self.query_one("#images").border_title = "images"
        self._fill_defaults()
        self._sync_models()
        # a live run's checkpoints and final model appear in the picker while the screen shows
        self.set_interval(FOLLOW_MODELS_S, self._follow_models)
        self._set_status(Text("ctrl+g (or g) generates · / types a prompt", style="dim"))

    def on_screen_resume(self) -> None:
        self._sync_models()

    def on_unmount(self) -> None:
        self.worker.close()  # the app quits (q, SIGHUP, SIGTERM, an exception): it goes too

    def _state(self) -> Any:
        return getattr(self.app, "state", None)

    def _form(self) -> GenerateForm:
        return self.query_one("#form", GenerateForm)

    def _fill_defaults(self) -> None:
        cfg = getattr(self._state(), "config", None)
        if cfg is not None:
            self._form().fill_defaults(cfg)

    def _sync_models(self) -> None:
        """The model Select follows the app's run (final model and checkpoints); with none
        attached, the newest run under the output dir that has a model to offer."""
        state = self._state()
        run_dir = getattr(state, "run_dir", None)
        run_dir = Path(run_dir) if run_dir else None
        if run_dir is None and state is not None:
            run_dir = newest_run_with_model(state.runs_dir)
        choices = model_choices(run_dir)
        same_run = run_dir == self._run_dir
        if same_run and choices == self._choices:
            return
        # the same run grew a model and the pick was its newest: the pick moves to the one the
        # run just wrote; a model picked by hand, or a typed one, stays
        picked = self._form().picked_model()
        newest = bool(self._choices) and picked == self._choices[0][1]
        follow = same_run and newest and picked not in (SOURCE_CUSTOM, SOURCE_LORA)
        self._run_dir, self._choices = run_dir, choices
        self._form().set_model_choices(
            choices, keep_current=(run_dir is None or same_run) and not follow
        )
        self.refresh_bindings()

    def _follow_models(self) -> None:
        """The attached run's models, looked at again (a directory listing) while this screen
        is the one shown, nothing generates and the picker is closed."""
        state = self._state()
        if not self.is_current or self.generating or getattr(state, "run_dir", None) is None:
            return
        if not self._form().model_picker_open():
            self._sync_models()

    # -- generating -----------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self.request_id is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "generate":
            return not self.generating
        if action == "cancel":
            return self.generating
        if action == "push":
            return self._run_dir is not None and not self._pushing
        if action == "export":
            return self._export_source() is not None
        if action == "open_image":
            grids = self.query("#images")
            return bool(grids) and bool(grids.first(ImageGrid).items)
        return True

    def request(self) -> GenerateRequest:
        return self._form().request(self._run_dir)

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        if self.generating:
            return
        req = self.request()
        try:
            args = generate_args(req)
        except ValueError as exc:
            self._show_error(str(exc))
            self.notify(str(exc), title="Cannot generate", severity="error", markup=False)
            return
        self._show_error(None)
        self.history.add(req.prompt)
        state = self._state()
        config = getattr(state, "config", None)
        images_dir = config.evaluation.output_dir if config is not None else "images"
        out_dir = output_dir_for(images_run(req), images_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            request_id = self.worker.submit([*args, "--output-dir", str(out_dir)])
        except OSError as exc:
            self._show_error(f"could not start the generator: {exc}")
            return
        self.request_id, self.out_dir = request_id, out_dir
        self.made, self.expected = 0, int(req.num_images)
        self._t0, self._cancel_at, self._load_s = time.monotonic(), None, None
        self.query_one("#images", ImageGrid).clear()
        self._set_status(Text(f"generating {self.expected} image(s)…", style="bold"))
        self.refresh_bindings()
        self._follow(request_id, out_dir)

    @work(thread=True, exclusive=True, group="generate-follow", exit_on_error=False)
    def _follow(self, request_id: int, out_dir: Path) -> None:
        follow_request(
            self.worker,
            request_id,
            out_dir,
            self.post_message,
            cancelled=lambda: get_current_worker().is_cancelled,
            cancel_deadline=lambda: self._cancel_at,
        )

    @on(GenNote)
    def _on_gen_note(self, message: GenNote) -> None:
        if message.out_dir != self.out_dir:
            return
        note = message.note
        if note.get("type") == "loaded":
            self._load_s = float(note.get("seconds") or 0.0)
            self._set_status(Text(f"loaded {note.get('model', '')} · generating…", style="bold"))

    @on(GenEvents)
    def _on_gen_events(self, message: GenEvents) -> None:
        if message.out_dir != self.out_dir:
            return
        read = read_events(message.events, message.out_dir, self.made, self.expected)
        grid = self.query_one("#images", ImageGrid)
        for path, caption in read.images:
            grid.add_image(path, caption)
        self.made += len(read.images)
        if read.status is not None:
            self._set_status(read.status)
        if read.error is not None:
            self._show_error(read.error)
        for warning in read.warnings:
            self.notify(warning, markup=False, severity="warning")
        self.refresh_bindings()

    @on(GenDone)
    def _on_gen_done(self, message: GenDone) -> None:
        if message.out_dir != self.out_dir:
            return
        took = time.monotonic() - self._t0
        self.request_id, self._cancel_at = None, None
        status, error = done_status(message, self.made, took, self._load_s)
        if error is not None:
            self._show_error(error)
        folder = str(message.out_dir) if message.status == "completed" else ""
        self._set_status(status, folder)
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.request_id is not None and self._cancel_at is None:
            self.worker.cancel(self.request_id)
            self._cancel_at = time.monotonic() + CANCEL_GRACE_S
            self._set_status(Text("cancelling…", style="yellow"))

    def _set_status(self, text: Text, folder: str = "") -> None:
        """The status line; `folder` (the images' folder) keeps its end where the line is
        too long."""
        self.query_one("#gen-status", FitLine).show(text, folder)

    def _show_error(self, message: str | None) -> None:
        panel = self.query_one("#gen-error", Static)
        panel.display = bool(message)
        panel.update(Text(message or ""))

    @on(ImageGrid.Changed)
    def _grid_changed(self) -> None:
        self.refresh_bindings()

    # -- other keys -----------------------------------------------------------------------------
    def action_open_image(self) -> None:
        self.query_one("#images", ImageGrid).open_selected()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_blur(self) -> None:
        self.set_focus(None)
        self.history.reset()

    # -- export ---------------------------------------------------------------------------------
    def _export_source(self) -> ExportSource | None:
        """The run model the picker shows (final or a checkpoint); None for other sources."""
        source = self._form().request(self._run_dir).source if self._run_dir else ""
        return source_for_choice(self._run_dir, source)

    @on(Select.Changed, "#model-source")
    def _source_changed(self) -> None:
        self.refresh_bindings()  # export applies to a run's final model or checkpoint only

    def action_export(self) -> None:
        if (source := self._export_source()) is not None:
            open_export(self, source)

    # -- push to the Hub ------------------------------------------------------------------------
    def action_push(self) -> None:
        if self._run_dir is None:
            return
        cfg = getattr(self._state(), "config", None)
        repo = (cfg.hub.model_repo if cfg is not None else None) or ""
        private = bool(cfg.hub.private) if cfg is not None else True
        self.app.push_screen(repo_modal(self._run_dir.name, repo, private), self._push_repo_chosen)

    def _push_repo_chosen(self, answer: tuple[str, bool] | None) -> None:
        if not answer or self._run_dir is None:
            return
        repo, private = answer
        self._pushing = True
        self.refresh_bindings()
        self._set_status(Text(f"dry run: what would go to {repo}…"))
        self._push(self._run_dir, repo, private, dry_run=True)

    @work(thread=True, group="generate-push", exit_on_error=False)
    def _push(self, run_dir: Path, repo: str, private: bool, dry_run: bool) -> None:
        worker = get_current_worker()
        result = run_push(run_dir, repo, private, dry_run, lambda: worker.is_cancelled)
        if result is not None:
            self.post_message(result)

    @on(PushResult)
    def _on_push_result(self, message: PushResult) -> None:
        status, error = push_status(message)
        self._set_status(status)
        if error is not None:
            self._show_error(error)
        lines = message.output.splitlines()
        if message.returncode == 0 and message.dry_run:  # push for real once confirmed
            self.app.push_screen(
                confirm_modal(message.repo, lines), partial(self._push_confirmed, message)
            )
            return
        self._pushing = False
        self.refresh_bindings()
        if message.returncode == 0:
            notice = lines[-1] if lines else f"pushed to {message.repo}"
            self.notify(notice, title="Hub", markup=False)

    def _push_confirmed(self, message: PushResult, choice: str | None) -> None:
        if choice == "push" and self._run_dir is not None:
            self._set_status(Text(f"pushing to {message.repo}…", style="bold"))
            self._push(self._run_dir, message.repo, message.private, dry_run=False)
        else:
            self._pushing = False
            self.refresh_bindings()
