"""The dreambooth-tui app: five modes (Data, Config, Train, Generate, Runs), keys 1-5.

Each screen lives in tui/screens/ with its CSS beside it; this module only wires them together:
the shared AppState, the mode keys, the keys screen (`?`), the command palette's commands,
attaching to runs, and quitting while a run is live.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from engine.runs import RunInfo, live_runs
from engine.runstop import StopRefusedError, stop_run
from tui import terminal_signals
from tui.state import AppState, ConfigChanged, RunAttached, build_state

# textual-image asks the terminal what it can draw when first imported: before Textual starts.
from tui.widgets import image_protocol  # noqa: F401  (imported for that side effect)

# The modals (tui.widgets.modals) are imported where they open: not before the first frame.

__all__ = ["MODE_TITLES", "DreamBoothApp", "run_app"]

MODE_TITLES = {
    "data": "Data",
    "config": "Config",
    "train": "Train",
    "generate": "Generate",
    "runs": "Runs",
}
MODE_TIPS = {
    "data": "Pick the image folder and check it",
    "config": "Edit the training config (form or YAML)",
    "train": "Start, watch and stop the training run",
    "generate": "Make images with a trained model",
    "runs": "Every run under the output folder: attach, resume, delete, compare",
}
_MODES_GROUP = Binding.Group("Screens", compact=True)


def _lazy_screen(module: str, name: str) -> Callable[[], Screen]:
    """A MODES entry that imports tui.screens.<module> when the mode is first shown: only the
    opening screen's modules count towards the first frame."""

    def make() -> Screen:
        return getattr(importlib.import_module(f"tui.screens.{module}"), name)()

    make.__qualname__ = make.__name__ = name
    return make


class LiveRunsFound(Message):
    def __init__(self, runs: list[RunInfo]) -> None:
        super().__init__()
        self.runs = runs


class DreamBoothApp(App):
    TITLE = "dreambooth-tui"
    CSS_PATH = "app.tcss"
    AUTO_FOCUS = None  # no input holds the focus at start: keys work at once
    MODES = {
        "data": _lazy_screen("data", "DataScreen"),
        "config": _lazy_screen("config", "ConfigScreen"),
        "train": _lazy_screen("train", "TrainScreen"),
        "generate": _lazy_screen("generate", "GenerateScreen"),
        "runs": _lazy_screen("runs", "RunsScreen"),
    }
    BINDINGS = [
        *(
            Binding(
                str(n),
                f"switch_mode('{mode}')",
                title,
                id=f"app.mode.{mode}",
                tooltip=MODE_TIPS[mode],
                group=_MODES_GROUP,
            )
            for n, (mode, title) in enumerate(MODE_TITLES.items(), 1)
        ),
        Binding(
            "question_mark",
            "help",
            "Keys",
            id="app.help",
            tooltip="List every key that does something here, with what it does",
        ),
        Binding(
            "q",
            "quit",
            "Quit",
            id="app.quit",
            tooltip="Quit the app; a live run keeps training (you are asked first)",
        ),
    ]

    def __init__(
        self, state: AppState | None = None, start_mode: str | None = None, **kwargs
    ) -> None:
        self.state = state or AppState()
        # Open on the config when there is none to work with yet (or it did not load).
        default = "data" if self.state.config is not None else "config"
        self.DEFAULT_MODE = start_mode if start_mode in self.MODES else default
        super().__init__(**kwargs)

    def on_mount(self) -> None:
        if not self.is_headless:  # a real terminal: restore it on SIGHUP/SIGTERM too
            terminal_signals.install(self)
        self.sub_title = MODE_TITLES.get(self.current_mode, "")
        self.mode_change_signal.subscribe(self, self._mode_changed)
        self._find_live_runs()
        self.call_after_refresh(gc.freeze)  # see on_unmount
        if self.state.demo:
            self.notify(
                "The built-in tiny model and its images: 3 then s trains it on the CPU in "
                "under a minute.",
                title="Demo",
                markup=False,
            )

    def on_unmount(self) -> None:
        # The first frame's objects (widgets, styles, modules: most of the heap) were frozen
        # out of the cyclic collector: a full collection then scans only what came after, and
        # re-attaching to 100,000 events pays 4 of them (~50 ms each unfrozen). Given back here,
        # so an app that ends (in a test run, many in one process) can still be collected.
        gc.unfreeze()

    def _mode_changed(self, mode: str) -> None:
        self.sub_title = MODE_TITLES.get(mode, mode)

    # ------------------------------------------------------------------ runs

    @work(thread=True, group="app-live", exit_on_error=False)
    def _find_live_runs(self) -> None:
        self.post_message(LiveRunsFound(live_runs(self.state.runs_dir)))

    def on_live_runs_found(self, message: LiveRunsFound) -> None:
        if not message.runs:
            return
        first = message.runs[0]
        self.attach_run(first.run_dir, notify=False)
        self.notify(f"Attached to live run {first.run_id}", title="Live run", markup=False)
        if len(message.runs) > 1:
            more = len(message.runs) - 1
            self.notify(
                f"{more} more live run{'s' if more > 1 else ''} in Runs (5)",
                title="Live runs",
                markup=False,
            )

    def on_config_changed(self, message: ConfigChanged) -> None:
        """Tell the other screens (the ones that exist) that the config changed."""
        for stack in self._screen_stacks.values():
            for screen in stack:
                if screen is not message.sender_screen:
                    screen.post_message(ConfigChanged(message.origin))

    def attach_run(self, run_dir: Path, notify: bool = True) -> None:
        """Follow `run_dir` on the Train screen, and show it."""
        run_dir = Path(run_dir).absolute()
        self.state.run_dir = run_dir
        self.switch_mode("train")
        self.screen.post_message(RunAttached(run_dir))
        if notify:
            self.notify(f"Attached to run {run_dir.name}", markup=False)

    def forget_run(self, run_dir: Path) -> None:
        """`run_dir` is gone (deleted): where it was the followed run, no run is (the Train
        screen lets go of it, the Generate screen offers the newest run left)."""
        followed = self.state.run_dir
        if followed is not None and Path(followed).absolute() == Path(run_dir).absolute():
            self.state.run_dir = None

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_mode" and parameters and parameters[0] == self.current_mode:
            return False  # already there: hide the key
        return True

    def action_help(self) -> None:
        from tui.widgets.modals import KeyRow, KeysModal

        shown: list[KeyRow] = []  # the keys of the footer first, then the rest (navigation)
        others: list[KeyRow] = []
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if binding.system or not binding.description or not active.enabled:
                continue
            ident = binding.id or f"{binding.action}:{key}"
            if ident in seen:
                continue
            seen.add(ident)
            row = KeyRow(self.get_key_display(binding), binding.description, binding.tooltip, ident)
            (shown if binding.show else others).append(row)
        rows = shown + others
        title = f"Keys on the {MODE_TITLES.get(self.current_mode, self.current_mode)} screen"
        self.push_screen(KeysModal(title, rows))

    async def action_quit(self) -> None:
        from tui.unsaved import ask_before_quitting

        if not ask_before_quitting(self, self._quit_leaving_runs):
            await self._quit_leaving_runs()

    async def _quit_leaving_runs(self) -> None:
        live = await asyncio.to_thread(live_runs, self.state.runs_dir)
        if not live:
            self.exit()
            return
        from tui.widgets.modals import Choice, ChoiceModal

        names = ", ".join(r.run_id for r in live)
        noun = "A run is" if len(live) == 1 else f"{len(live)} runs are"

        def chosen(choice: str | None) -> None:
            if choice == "leave":
                self.exit(
                    f"{names}: still training. Run dreambooth-tui again to re-attach.",
                )
            elif choice == "stop":
                asked, refused = [], []
                for info in live:
                    try:
                        stop_run(info.run_dir, once=True)
                        asked.append(info.run_id)
                    except StopRefusedError as exc:  # it could reach another process
                        refused.append(str(exc))
                lines = [f"{', '.join(asked)}: asked to stop (it saves a checkpoint first)."]
                self.exit("\n".join((lines if asked else []) + refused))

        self.push_screen(
            ChoiceModal(
                "Quit dreambooth-tui",
                f"{noun} live: {names}.\nTraining goes on without the app unless you stop it.",
                [
                    Choice("leave", "Leave it running", "l", "primary"),
                    Choice("stop", "Stop and save", "s", "warning"),
                    Choice("cancel", "Cancel", "c"),
                ],
                default="leave",
                cancel="cancel",
            ),
            chosen,
        )

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for n, (mode, title) in enumerate(MODE_TITLES.items(), 1):
            yield SystemCommand(
                f"{title} screen ({n})", MODE_TIPS[mode], partial(self.switch_mode, mode)
            )
        yield SystemCommand(
            "Start training run",
            "Start training with the current config (Train screen)",
            partial(self._run_on, "train", "start"),
        )
        yield SystemCommand(
            "Stop training run",
            "Stop the followed run: it saves a checkpoint, then stops",
            partial(self._run_on, "train", "stop"),
        )
        yield SystemCommand(
            "Load sample config",
            "Start from one of the sample configs (Config screen)",
            partial(self._run_on, "config", "load_sample"),
        )
        yield SystemCommand(
            "Save config", "Save the config to its file", partial(self._run_on, "config", "save")
        )
        yield SystemCommand("Keys", "List every key of this screen", self.action_help)

    async def _run_on(self, mode: str, action: str) -> None:
        await self.switch_mode(mode)
        if hasattr(self.screen, f"action_{action}"):
            await self.screen.run_action(action)


def run_app(config_path: Path | None = None, demo: bool = False, images: str | None = None) -> int:
    """Open the app on `config_path` (default: ./dreambooth.yaml where present); the exit code."""
    state = build_state(Path(config_path) if config_path else None, demo=demo, images=images)
    app = DreamBoothApp(state)
    result = app.run()
    if isinstance(result, str) and result:
        print(result)
    return app.return_code or 0
