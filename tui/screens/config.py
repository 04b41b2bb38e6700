"""Config: the training config as a form generated from the schema, and as raw YAML.

Each field is validated as typed and its error shown under it; the summary line says what the
run will do; ctrl+s saves (keeping the file's comments) and refuses while a field is invalid;
`l` starts from a sample config. Paths are checked, and files written, in worker threads.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import (
    Footer,
    Header,
    Input,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.widgets.option_list import Option

import engine
from engine.config import (
    FIELD_GROUPS,
    Config,
    ConfigError,
    check_paths,
    dump_config,
    parse_config_text,
    save_config,
    summary,
)
from tui.config_edits import ValidationError, first_problem, problems, with_field
from tui.state import DEFAULT_CONFIG, ConfigChanged
from tui.widgets.config_form import ConfigForm
from tui.widgets.folder_picker import display_path
from tui.widgets.modals import Choice, ChoiceModal, PickModal, PromptModal

PATH_FIELDS = {"model", "instance_data", "class_data", "prior_preservation"}


def sample_configs_dir() -> Path:
    """sample_configs/ next to the package (a checkout), else inside it (an install)."""
    here = Path(engine.__file__).resolve().parent
    for candidate in (here.parent / "sample_configs", here / "sample_configs"):
        if candidate.is_dir():
            return candidate
    return here.parent / "sample_configs"


def sample_configs() -> list[tuple[Path, str]]:
    """(path, first comment line) of every sample config."""
    out = []
    for path in sorted(sample_configs_dir().glob("*.yaml")):
        first = ""
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("#"):
                    first = line.lstrip("# ").strip()
                    break
            first = first.split(": ", 1)[0] if len(first) > 60 else first
            if len(first) > 60:
                first = first[:59].rstrip() + "…"
        except OSError:
            continue
        out.append((path, first))
    return out


class PathsChecked(Message):
    def __init__(self, version: int, error: ConfigError | None) -> None:
        super().__init__()
        self.version = version
        self.error = error


class ConfigSaved(Message):
    def __init__(self, path: Path, text: str | None, error: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self.error = error


class SamplesListed(Message):
    def __init__(self, samples: list[tuple[Path, str]]) -> None:
        super().__init__()
        self.samples = samples


class SampleLoaded(Message):
    def __init__(self, path: Path, text: str | None, cfg: Config | None, error: str | None) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self.cfg = cfg
        self.error = error


class ConfigScreen(Screen):
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

    def __init__(self) -> None:
        super().__init__()
        self._version = -1  # the state.config_version the form shows
        self._yaml_shown = ""  # the text last put into the YAML tab
        self._yaml_error: str | None = None
        self._paths_error: ConfigError | None = None
        self._samples: list[tuple[Path, str]] = []
        self._prompt_base: str | None = None  # the instance prompt the sample prompts follow

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="config-head"):
            yield Static(id="config-file")
            yield Static(id="config-summary")
            yield Static(id="config-paths")
        with Vertical(id="config-start"):
            yield Static(
                Text(
                    "No config yet. Pick a sample to start from (Enter); ctrl+s saves it as "
                    f"./{DEFAULT_CONFIG}.",
                ),
                id="config-start-help",
            )
            yield OptionList(id="config-samples")
        with TabbedContent(id="config-tabs", initial="form"):
            with TabPane("Form", id="form"):
                yield ConfigForm(self.app.state.config, id="config-form")
            with TabPane("YAML", id="yaml"):
                yield TextArea.code_editor("", language="yaml", id="config-yaml")
                yield Static("", id="config-yaml-error", classes="-error")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Config"
        self.list_samples()
        self._show_state()

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
    def yaml(self) -> TextArea:
        return self.query_one("#config-yaml", TextArea)

    def _show_state(self) -> None:
        """Show the app's config (after a load, a sample, or an edit on another screen)."""
        state = self.app.state
        self._version = state.config_version
        has_any = state.config is not None or state.config_text is not None
        self.query_one("#config-start").display = not has_any
        self.tabs.display = has_any
        if state.config is not None:
            self._prompt_base = state.config.train.instance_prompt
            self.form.set_config(state.config)
            self._set_yaml(self._current_text())
            self.check_paths_soon()
        elif state.config_text is not None:
            # the file did not load: its text goes to the YAML tab to be fixed there
            self._set_yaml(state.config_text)
            self.tabs.active = "yaml"
            self._yaml_error = state.config_error
        self._update_head()
        self.refresh_bindings()

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
        listing = "\n".join(f"  {p}" for p in new_prompts)
        message = (
            f"The sample prompts (evaluation.prompts) still use {old!r}, not "
            f"{cfg.train.instance_prompt!r}: the samples would not show the new concept. "
            f"Update them to:\n{listing}"
        )

        def answered(choice: str | None) -> None:
            current = self.app.state.config
            if choice != "update" or current is None:
                self.notify("sample prompts kept as they were", markup=False)
                return
            evaluation = current.evaluation.model_copy(update={"prompts": new_prompts})
            self.app.state.change_config(current.model_copy(update={"evaluation": evaluation}))
            self._show_state()

        self.app.push_screen(
            ChoiceModal(
                "Sample prompts",
                message,
                [Choice("update", "Update them"), Choice("keep", "Keep them")],
                cancel="keep",
            ),
            answered,
        )

    def _current_text(self) -> str:
        state = self.app.state
        if state.config is None:
            return state.config_text or ""
        if not state.modified and state.config_text is not None:
            return state.config_text
        return dump_config(state.config, state.config_text)

    def _set_yaml(self, text: str) -> None:
        self._yaml_shown = text
        with self.yaml.prevent(TextArea.Changed):
            self.yaml.load_text(text)
        self._set_yaml_error(None)

    def _set_yaml_error(self, error: str | None) -> None:
        self._yaml_error = error
        label = self.query_one("#config-yaml-error", Static)
        label.update(Text(error) if error else "")
        label.display = bool(error)

    def _update_head(self) -> None:
        state = self.app.state
        head = Text()
        if state.config_path is not None:
            head.append(display_path(state.config_path), style="bold")
        elif state.config is not None:
            head.append(f"new config (ctrl+s saves it as ./{DEFAULT_CONFIG})", style="bold")
        if state.modified:
            head.append("  modified", style="yellow")
        invalid = len(self.form.errors)
        if invalid:
            head.append(f"  {invalid} invalid field{'s' if invalid > 1 else ''}", style="bold red")
        self.query_one("#config-file", Static).update(head)
        line = Text()
        if state.config is not None:
            line.append(summary(state.config, state.num_images))
        elif state.config_error:
            line.append(state.config_error, style="bold red")
        self.query_one("#config-summary", Static).update(line)
        paths = self.query_one("#config-paths", Static)
        if state.config is None:
            paths.update("")
        elif self._paths_error is not None:
            paths.update(Text(str(self._paths_error), style="yellow"))
        else:
            paths.update(Text("paths ok", style="dim"))

    # ------------------------------------------------------------------ samples

    @work(thread=True, group="config-samples", exit_on_error=False)
    def list_samples(self) -> None:
        self.post_message(SamplesListed(sample_configs()))

    def on_samples_listed(self, message: SamplesListed) -> None:
        self._samples = message.samples
        options = self.query_one("#config-samples", OptionList)
        options.clear_options()
        for path, about in message.samples:
            label = Text.assemble((path.name, "bold"), "  ", (about, "dim"))
            options.add_option(Option(label, id=str(path)))
        if not message.samples:
            options.add_option(Option(Text("no sample configs found"), disabled=True))
        else:
            options.highlighted = 0
        if self.query_one("#config-start").display and self.is_current:
            options.focus()  # not a text input: the keys still work

    @on(OptionList.OptionSelected, "#config-samples")
    def _start_from_sample(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.load_sample(Path(event.option.id))

    def action_load_sample(self) -> None:
        samples = self._samples

        def picked(choice: str | None) -> None:
            if choice:
                self.load_sample(Path(choice))

        self.app.push_screen(
            PickModal(
                "Start from a sample config",
                [
                    (str(p), Text.assemble((p.name, "bold"), "  ", (about, "dim")))
                    for p, about in samples
                ],
                empty=f"no sample configs in {sample_configs_dir()}",
            ),
            picked,
        )

    @work(thread=True, group="config-load", exit_on_error=False)
    def load_sample(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
            cfg, _warnings = parse_config_text(text, source=path.name)
        except (OSError, ConfigError) as exc:
            self.post_message(SampleLoaded(path, None, None, str(exc)))
            return
        self.post_message(SampleLoaded(path, text, cfg, None))

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
        self._show_rule_problems(cfg)
        self._version = state.config_version
        if event.section == "train" and event.key in PATH_FIELDS:
            self.check_paths_soon()
        self._update_head()
        self.refresh_bindings()

    def _show_rule_problems(self, cfg: Config) -> None:
        """The rules between keys, each error shown next to the key to fix."""
        shown = getattr(self, "_rule_keys", set())
        found = {p.key: p.problem for p in problems(cfg)}
        for key in shown - set(found):
            self.form.set_external_error(key, None)
        for key, problem in found.items():
            self.form.set_external_error(key, problem)
        self._rule_keys = set(found)

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
        text = self.yaml.text
        if text == self._yaml_shown:
            return self.app.state.config
        name = self.app.state.config_path.name if self.app.state.config_path else "<yaml>"
        try:
            cfg, _warnings = parse_config_text(text, source=name)
        except ConfigError as exc:
            self._set_yaml_error(str(exc))
            return None
        self._set_yaml_error(None)
        self._yaml_shown = text
        state = self.app.state
        state.change_config(cfg)
        state.config_text = text
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
                self._set_yaml(self._current_text())
        elif self.yaml.text != self._yaml_shown:
            if self._parse_yaml() is None:
                self.notify(
                    f"The YAML does not load, the form keeps the last valid config: {self._yaml_error}",
                    severity="warning",
                    markup=False,
                )
        self.refresh_bindings()

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
        try:
            check_paths(cfg)
        except ConfigError as exc:
            self.post_message(PathsChecked(version, exc))
        else:
            self.post_message(PathsChecked(version, None))

    def on_paths_checked(self, message: PathsChecked) -> None:
        previous = self._paths_error
        self._paths_error = message.error
        if previous is not None and previous.key:
            self.form.set_external_error(previous.key, None)
        if message.error is not None and message.error.key:
            self.form.set_external_error(message.error.key, message.error.problem)
        self._update_head()

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

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_find_field(self) -> None:
        names = [f"{section}.{key}" for fields in FIELD_GROUPS.values() for section, key in fields]
        by_key = {name.split(".", 1)[1]: name for name in names}

        def full_name(value: str) -> str | None:
            return value if value in names else by_key.get(value)

        def found(result: tuple[str, bool] | None) -> None:
            name = full_name(result[0]) if result else None
            if name:
                self.focus_field(name)

        self.app.push_screen(
            PromptModal(
                "Find a field",
                "Field name (e.g. learning_rate):",
                placeholder="key or section.key",
                validate=lambda v: None if full_name(v) else f"no field {v!r}",
                suggester=SuggestFromList([*by_key, *names], case_sensitive=False),
                submit_label="Go",
            ),
            found,
        )

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
        if in_yaml and self.yaml.text != self._yaml_shown:
            if self._parse_yaml() is None:
                self.notify(
                    f"Not saved: {self._yaml_error}", title="Config", severity="error", markup=False
                )
                return
        if not in_yaml and self.form.errors:
            fields = "; ".join(f"{path}: {err}" for path, err in self.form.errors.items())
            self.notify(f"Not saved: {fields}", title="Config", severity="error", markup=False)
            return
        rule = first_problem(state.config)
        if rule:
            self.notify(f"Not saved: {rule}", title="Config", severity="error", markup=False)
            return
        if state.config is None:
            self.notify(
                f"Not saved: {state.config_error or 'no config'}",
                title="Config",
                severity="error",
                markup=False,
            )
            return
        text = self.yaml.text if in_yaml else None
        if state.config_path is not None:
            self.save_to(state.config_path, state.config, state.config_text, text)
            return

        def chosen(result: tuple[str, bool] | None) -> None:
            if result and result[0]:
                path = Path(result[0]).expanduser()
                self.save_to(path, state.config, state.config_text, text)

        self.app.push_screen(
            PromptModal(
                "Save the config",
                "File name:",
                value=DEFAULT_CONFIG,
                validate=lambda v: None if v.endswith((".yaml", ".yml")) else "a .yaml file name",
                submit_label="Save",
            ),
            chosen,
        )

    @work(thread=True, exclusive=True, group="config-save", exit_on_error=False)
    def save_to(self, path: Path, cfg: Config, template: str | None, text: str | None) -> None:
        try:
            if text is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            else:
                save_config(cfg, path, template_text=template)
            saved = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.post_message(ConfigSaved(path, None, f"{path}: {exc.strerror or exc}"))
            return
        self.post_message(ConfigSaved(path, saved))

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
        self._set_yaml(message.text or "")
        self._update_head()
        self.notify(f"Saved {display_path(message.path)}", title="Config", markup=False)
