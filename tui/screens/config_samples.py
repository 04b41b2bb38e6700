"""The sample configs (sample_configs/*.yaml): listing them, the picker shown while no config
is open, and reading one in a worker."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine import sample_configs_dir
from engine.config import Config, ConfigError, parse_config_text
from tui.state import DEFAULT_CONFIG
from tui.widgets.modals import PickModal

__all__ = [
    "SampleLoaded",
    "SamplePicker",
    "read_sample",
    "sample_configs",
    "sample_configs_dir",
    "sample_label",
    "sample_pick_modal",
]


def sample_configs() -> list[tuple[Path, str]]:
    """(path, what it is) of every sample config: its first comment line up to a colon or a
    parenthesis, so that the card it is sized for stays ("... that fits a 24 GB card")."""
    out = []
    for path in sorted(sample_configs_dir().glob("*.yaml")):
        first = ""
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("#"):
                    first = line.lstrip("# ").strip()
                    break
            first = first.split(": ", 1)[0].split(" (", 1)[0]
        except OSError:
            continue
        out.append((path, first))
    return out


def sample_label(path: Path, about: str) -> Text:
    """A sample as listed: its file name, then what its first comment says it is."""
    return Text.assemble((path.name, "bold"), "  ", (about, "dim"))


def sample_pick_modal(samples: list[tuple[Path, str]]) -> PickModal:
    """The `l` dialog: pick a sample to start from (answers its path)."""
    return PickModal(
        "Start from a sample config",
        [(str(p), sample_label(p, about)) for p, about in samples],
        empty=f"no sample configs in {sample_configs_dir()}",
    )


class SampleLoaded(Message):
    def __init__(self, path: Path, text: str | None, cfg: Config | None, error: str | None) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self.cfg = cfg
        self.error = error


def read_sample(path: Path) -> SampleLoaded:
    """The sample's text and config, or the error that stops it loading."""
    try:
        text = path.read_text(encoding="utf-8")
        cfg, _warnings = parse_config_text(text, source=path.name)
    except (OSError, ConfigError) as exc:
        return SampleLoaded(path, None, None, str(exc))
    return SampleLoaded(path, text, cfg, None)


class SamplePicker(Vertical):
    """What the Config screen shows while no config is open: the samples to start from."""

    class Listed(Message):
        def __init__(self, samples: list[tuple[Path, str]]) -> None:
            super().__init__()
            self.samples = samples

    class Picked(Message):
        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.samples: list[tuple[Path, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(
            Text(
                "No config yet. Pick a sample to start from (Enter); ctrl+s saves it as "
                f"./{DEFAULT_CONFIG}.",
            ),
            id="config-start-help",
        )
        yield OptionList(id="config-samples")

    def on_mount(self) -> None:
        self.list_samples()

    @work(thread=True, group="config-samples", exit_on_error=False)
    def list_samples(self) -> None:
        self.post_message(self.Listed(sample_configs()))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        message.stop()
        self.samples = message.samples
        options = self.query_one("#config-samples", OptionList)
        options.clear_options()
        for path, about in message.samples:
            options.add_option(Option(sample_label(path, about), id=str(path)))
        if not message.samples:
            options.add_option(Option(Text("no sample configs found"), disabled=True))
        else:
            options.highlighted = 0
        if self.display and self.screen.is_current:
            # not a text input: the keys still work. At once (focus() would wait a turn): the
            # screen drops it when it hides the list for a config shown meanwhile.
            self.screen.set_focus(options)

    @on(OptionList.OptionSelected, "#config-samples")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Picked(Path(event.option.id)))
