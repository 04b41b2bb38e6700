"""Config: the training config as a form generated from the schema, and as raw YAML.

Each field is validated as typed and its error shown under it; the summary line says what the
run will do; ctrl+s saves (keeping the file's comments) and refuses while a field is invalid;
`l` starts from a sample config. Paths are checked, and files written, in worker threads.
What the screen shows (layout, head lines, the GPU and paths checks) is config_view.py's.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Input, TabbedContent, TextArea

from engine.config import Config
from tui.config_edits import ValidationError, problems, with_field
from tui.screens.config_dialogs import (
    find_field_modal,
    full_field_name,
    prompt_sync_modal,
    save_as_modal,
)
from tui.screens.config_io import ConfigSaved, config_text, why_not_saved, write_config
from tui.screens.config_samples import (
    SampleLoaded,
    SamplePicker,
    read_sample,
    sample_pick_modal,
)
from tui.screens.config_view import ConfigView
from tui.widgets.config_form import ConfigForm
from tui.widgets.folder_picker import display_path

PATH_FIELDS = {"model", "instance_data", "class_data", "prior_preservation"}


class ConfigScreen(ConfigView):
    """The Config screen: what it shows is ConfigView's; its keys and edits are here."""

    CSS_PATH = "config.tcss"
    AUTO_FOCUS = None

    BINDINGS = [
        Binding(
            "ctrl+s",
            "save",
            "Save",
            id="config.save",
            priority=True,
            tooltip="Save the config to its file, keeping its comments (not while a field is invalid)",
        ),
        Binding(
            "l",
            "load_sample",
            "Sample",
            id="config.load_sample",
            tooltip="Start from one of the sample configs (sample_configs/)",
        ),
        Binding(
            "slash",
            "find_field",
            "Find",
            id="config.find",
            tooltip="Jump to a field by its name (Enter takes the suggested name)",
        ),
        Binding(
            "f",
            "show_tab('form')",
            "Form",
            id="config.form",
            tooltip="Edit the config field by field",
        ),
        Binding(
            "y",
            "show_tab('yaml')",
            "YAML",
            id="config.yaml",
            tooltip="Edit the config as YAML text",
        ),
        Binding(
            "escape",
            "leave_input",
            "Leave field",
            show=False,
            id="config.leave_input",
            tooltip="Leave the field so that keys work again",
        ),
    ]

    @on(Input.Blurred, "#field-train-instance_prompt")
    def _instance_prompt_left(self) -> None:
        """Offer to carry a changed instance prompt over to the sample prompts."""
        from tui.screens.prompt_sync import updated_prompts

        cfg = self.app.state.config
        if cfg is None:
            return
        old, self._prompt_base = self._prompt_base, cfg.train.instance_prompt
        new_prompts = updated_prompts(old or "", cfg.train.instance_prompt, cfg.evaluation.prompts)
        if new_prompts is None:
            return

        def answered(choice: str | None) -> None:
            current = self.app.state.config
            if choice != "update" or current is None:
                self.notify("sample prompts kept as they were", markup=False)
                return
            evaluation = current.evaluation.model_copy(update={"prompts": new_prompts})
            self.app.state.change_config(current.model_copy(update={"evaluation": evaluation}))
            self._show_state()

        self.app.push_screen(
            prompt_sync_modal(old, cfg.train.instance_prompt, new_prompts), answered
        )

    # ------------------------------------------------------------------ samples

    @on(SamplePicker.Picked)
    def _start_from_sample(self, message: SamplePicker.Picked) -> None:
        self.load_sample(message.path)

    def action_load_sample(self) -> None:
        samples = self.query_one(SamplePicker).samples

        def picked(choice: str | None) -> None:
            if choice:
                self.load_sample(Path(choice))

        self.app.push_screen(sample_pick_modal(samples), picked)

    @work(thread=True, group="config-load", exit_on_error=False)
    def load_sample(self, path: Path) -> None:
        self.post_message(read_sample(path))

    def on_sample_loaded(self, message: SampleLoaded) -> None:
        if message.cfg is None:
            self.notify(
                message.error or "", title="Sample not loaded", severity="error", markup=False
            )
            return
        state = self.app.state
        state.set_config(message.cfg, message.text)
        state.modified = state.config_path is not None  # replaces the open file's contents
        self._show_state()
        self.tabs.active = "form"
        self.notify(f"Loaded {message.path.name}", title="Config", markup=False)

    # ------------------------------------------------------------------ editing

    @on(ConfigForm.Changed)
    def _field_changed(self, event: ConfigForm.Changed) -> None:
        state = self.app.state
        if state.config is None:
            return
        current = getattr(state.config, event.section)
        if getattr(current, event.key) == event.value:
            self._update_head()  # an error may have gone
            return
        try:  # the whole config, so the rules between keys hold too
            cfg = with_field(state.config, event.section, event.key, event.value)
        except ValidationError as exc:
            self.form.set_external_error(
                f"{event.section}.{event.key}", str(exc.errors()[0].get("msg", exc))
            )
            self._update_head()
            return
        moved_lr = cfg.train.learning_rate != state.config.train.learning_rate
        state.change_config(cfg)
        if moved_lr and event.key == "method":  # the other method's default learning rate
            self.form.row("train", "learning_rate").show(cfg.train.learning_rate)
            self.notify(
                f"learning_rate set to {cfg.train.learning_rate:g}, the {cfg.train.method} default",
                title="Config",
                markup=False,
            )
        self.form.set_rule_problems({p.key: p.problem for p in problems(cfg)})
        self._version = state.config_version
        if event.section == "train" and event.key in PATH_FIELDS:
            self.check_paths_soon()
        self._update_head()
        self.refresh_bindings()

    @on(ConfigForm.Invalid)
    def _field_invalid(self, event: ConfigForm.Invalid) -> None:
        self._update_head()

    @on(TextArea.Changed, "#config-yaml")
    def _yaml_changed(self, event: TextArea.Changed) -> None:
        if hasattr(self, "_yaml_timer"):
            self._yaml_timer.stop()
        self._yaml_timer = self.set_timer(0.4, self._parse_yaml)

    def _parse_yaml(self) -> Config | None:
        """Apply the YAML tab's text to the config when it parses; show its error otherwise."""
        if not self.yaml.edited:  # back to the text last shown or parsed
            if self.app.state.config is not None:  # which loads: the error typed since goes
                self.yaml.set_error(None)
            return self.app.state.config
        name = self.app.state.config_path.name if self.app.state.config_path else "<yaml>"
        cfg = self.yaml.parse(name)
        if cfg is None:
            return None
        state = self.app.state
        state.change_config(cfg)
        state.config_text = self.yaml.shown
        self._version = state.config_version
        self.form.set_config(cfg)
        self.check_paths_soon()
        self._update_head()
        return cfg

    @on(TabbedContent.TabActivated, "#config-tabs")
    def _tab_switched(self, event: TabbedContent.TabActivated) -> None:
        state = self.app.state
        if state.config is None and state.config_text is None:
            return
        if event.pane.id == "yaml":
            if self.app.state.config is not None:
                self.yaml.show(config_text(self.app.state))
        elif self.yaml.edited:
            if self._parse_yaml() is None:
                self.notify(
                    f"The YAML does not load, the form keeps the last valid config: {self.yaml.error}",
                    severity="warning",
                    markup=False,
                )
        self.refresh_bindings()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.app.state
        has_tabs = state.config is not None or state.config_text is not None
        if action == "find_field":
            return state.config is not None
        if action == "show_tab":
            return has_tabs and self.tabs.active != parameters[0]
        if action == "save":
            return has_tabs
        return True

    def action_show_tab(self, tab: str) -> None:
        self.tabs.active = tab
        if tab == "yaml":  # y edits the text at once (escape leaves it: f and the keys work)
            self.yaml.editor.focus()

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_find_field(self) -> None:
        def found(result: tuple[str, bool] | None) -> None:
            name = full_field_name(result[0]) if result else None
            if name:
                self.focus_field(name)

        self.app.push_screen(find_field_modal(), found)

    def focus_field(self, name: str) -> None:
        """Show the form and put the cursor in field `name` ("section.key")."""
        section, _, key = name.partition(".")
        self.tabs.active = "form"
        try:
            row = self.form.row(section, key)
        except NoMatches:
            self.notify(f"{name}: the form is still being built", markup=False)
            return
        row.widget.focus()
        self.form.scroll_to_widget(row, animate=False, top=True)

    def action_save(self) -> None:
        state = self.app.state
        in_yaml = self.tabs.active == "yaml"
        if in_yaml and self.yaml.edited:
            if self._parse_yaml() is None:
                self.notify(
                    f"Not saved: {self.yaml.error}", title="Config", severity="error", markup=False
                )
                return
        refusal = why_not_saved(
            state.config, state.config_error, {} if in_yaml else self.form.errors
        )
        if refusal:
            self.notify(f"Not saved: {refusal}", title="Config", severity="error", markup=False)
            return
        text = self.yaml.editor.text if in_yaml else None
        if state.config_path is not None:
            self.save_to(state.config_path, state.config, state.config_text, text)
            return

        def chosen(result: tuple[str, bool] | None) -> None:
            if result and result[0]:
                path = Path(result[0]).expanduser()
                self.save_to(path, state.config, state.config_text, text, new_file=True)

        self.app.push_screen(save_as_modal(), chosen)

    @work(thread=True, exclusive=True, group="config-save", exit_on_error=False)
    def save_to(
        self,
        path: Path,
        cfg: Config,
        template: str | None,
        text: str | None,
        new_file: bool = False,
    ) -> None:
        self.post_message(write_config(path, cfg, template, text, new_file))

    def on_config_saved(self, message: ConfigSaved) -> None:
        if message.error:
            self.notify(
                f"Not saved: {message.error}", title="Config", severity="error", markup=False
            )
            return
        state = self.app.state
        state.config_path = message.path
        state.config_text = message.text
        from tui import recent

        recent.remember(message.path)  # opened again by `dreambooth-tui` in this folder
        state.modified = False
        self.yaml.show(message.text or "")
        self._update_head()
        self.notify(f"Saved {display_path(message.path)}", title="Config", markup=False)
