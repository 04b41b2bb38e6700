"""What the Config screen shows of the app's config: its layout (the lines above the form, the
sample picker, the Form and YAML tabs), the form and YAML filled from the app's state, the head
lines kept current, and the two checks behind them, both in worker threads: the GPU lookup (the
fit line) and the paths check. The keys and the edits are tui/screens/config.py's."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Header, Static, TabbedContent, TabPane

from engine.config import Config, ConfigError
from tui.config_edits import problems
from tui.screens.config_head import GpuFound, file_line, fit_line, paths_line, summary_line
from tui.screens.config_io import PathsChecked, config_text, paths_checked
from tui.screens.config_samples import SamplePicker
from tui.state import ConfigChanged
from tui.widgets.config_form import ConfigForm
from tui.widgets.fit_footer import FitFooter
from tui.widgets.yaml_pane import YamlPane

__all__ = ["ConfigView"]


class ConfigView(Screen):
    """The Config screen without its keys and edits (ConfigScreen adds them)."""

    def __init__(self) -> None:
        super().__init__()
        self._version = -1  # the state.config_version the form shows
        self._paths_error: ConfigError | None = None
        self._prompt_base: str | None = None  # the instance prompt the sample prompts follow

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="config-head"):
            yield Static(id="config-file")
            yield Static(id="config-summary")
            yield Static(id="config-fit")
            yield Static(id="config-paths")
        yield SamplePicker(id="config-start")
        with TabbedContent(id="config-tabs", initial="form"):
            with TabPane("Form", id="form"):
                yield ConfigForm(self.app.state.config, id="config-form")
            yield YamlPane("YAML", id="yaml")
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = "Config"
        self._show_state()
        if not self.app.state.gpu_checked:
            self.look_up_gpu()

    @work(thread=True, group="config-gpu", exit_on_error=False)
    def look_up_gpu(self) -> None:
        """NVML, once per app, off the UI thread (a driver can take seconds to answer)."""
        from engine.fit import this_gpu

        self.post_message(GpuFound(this_gpu()))

    def on_gpu_found(self, message: GpuFound) -> None:
        self.app.state.gpu, self.app.state.gpu_checked = message.gpu, True
        self._update_head()

    def on_screen_resume(self) -> None:
        if self.app.state.config_version != self._version:
            self._show_state()
        self.refresh_bindings()

    def on_config_changed(self, message: ConfigChanged) -> None:
        """Changed on another screen: show it now, so the form is right when we come back."""
        if self.app.state.config_version != self._version:
            self._show_state()

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one(TabbedContent)

    @property
    def yaml(self) -> YamlPane:
        return self.query_one(YamlPane)

    def _show_state(self) -> None:
        """Show the app's config (after a load, a sample, or an edit on another screen)."""
        state = self.app.state
        self._version = state.config_version
        has_any = state.config is not None or state.config_text is not None
        picker = self.query_one("#config-start")
        picker.display = not has_any
        if has_any and picker.has_focus_within:
            # the sample list, hidden now (it may have taken the focus before this config was
            # shown), must not keep the keys: Enter would load a sample over this config
            self.set_focus(None)
        self.tabs.display = has_any
        if state.config is not None:
            self._prompt_base = state.config.train.instance_prompt
            self.form.set_config(state.config)
            self.yaml.show(config_text(self.app.state))
            self.check_paths_soon()
        elif state.config_text is not None:
            # the file did not load: its text goes to the YAML tab to be fixed there
            self.yaml.show(state.config_text)
            self.tabs.active = "yaml"
            self.yaml.error = state.config_error
        self._update_head()
        self.refresh_bindings()

    def _update_head(self) -> None:
        state = self.app.state
        # a rule between keys broken (kohya export with method full) counts too: its error is
        # at the key to fix, maybe far below the one just edited
        broken = {p.key for p in problems(state.config)} - set(self.form.errors)
        head = file_line(state, len(self.form.errors) + len(broken))
        self.query_one("#config-file", Static).update(head)
        self.query_one("#config-summary", Static).update(summary_line(state))
        self.query_one("#config-fit", Static).update(fit_line(state))
        self.query_one("#config-paths", Static).update(paths_line(state, self._paths_error))

    # ------------------------------------------------------------------ paths check

    def check_paths_soon(self) -> None:
        if hasattr(self, "_paths_timer"):
            self._paths_timer.stop()
        self._paths_timer = self.set_timer(0.3, self._start_paths_check)

    def _start_paths_check(self) -> None:
        state = self.app.state
        if state.config is not None:
            self.run_paths_check(state.config, state.config_version)

    @work(thread=True, exclusive=True, group="config-paths", exit_on_error=False)
    def run_paths_check(self, cfg: Config, version: int) -> None:
        self.post_message(paths_checked(cfg, version))

    def on_paths_checked(self, message: PathsChecked) -> None:
        previous = self._paths_error
        self._paths_error = message.error
        if previous is not None and previous.key:
            self.form.set_external_error(previous.key, None)
        if message.error is not None and message.error.key:
            self.form.set_external_error(message.error.key, message.error.problem)
        self._update_head()
