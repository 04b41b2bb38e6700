"""Sample now on the Train screen (issue 14): `n` on a live run opens a dialog (the config's
prompts shown literally), Enter sends the typed prompt, and the engine's samples for it appear in
the grid while the run trains on."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_tui import wait_for
from rich.text import Text
from textual.widgets import Input, Static
from trainscreenhelpers import (  # noqa: F401 - the fixture `engines`
    engines_fixture,
    shown_keys,
    train_screen,
)

from engine.config import parse_config_text
from engine.sample_request import REQUEST_FILE, SampleRequestError
from tui.app import DreamBoothApp
from tui.screens.train_sample import dialog_text, sample_now_dialog, send_request
from tui.state import AppState
from tui.widgets.image_grid import ImageGrid
from tui.widgets.modals import ChoiceModal, PromptModal

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny
CONFIG_PROMPT = "a [b]sks[/b] shape"  # markup-like: must show as typed
ASKED = "[red]sks[/red] shape on a table"


def state_for(runs: Path) -> AppState:
    text = DEMO.read_text(encoding="utf-8")
    overrides = {
        "train": {
            "output_dir": str(runs),
            "max_train_steps": 400,
            "validation_steps": 1000,
            "checkpointing_steps": 1000,
        },
        "evaluation": {"prompts": [CONFIG_PROMPT]},
    }
    cfg, _ = parse_config_text(text, str(DEMO), overrides=overrides)
    state = AppState(config_path=DEMO, output_dir=runs, image_protocol="halfcell")
    state.set_config(cfg, text)
    return state


def test_dialog_lists_the_config_prompts_and_cuts_a_long_list():
    text = dialog_text([f"p{i}" for i in range(5)])
    assert "  · p0" in text and "  · p2" in text and "p3" not in text and "and 2 more" in text
    assert "no validation prompts" in dialog_text([])
    modal = sample_now_dialog({"evaluation": {"prompts": []}})
    assert modal._validate("") == "type a prompt"  # nothing to fall back on: a prompt is needed


async def test_sample_now_key_asks_a_live_run_and_its_samples_show(tiny_dir, tmp_path, engines):
    app = DreamBoothApp(state_for(tmp_path / "runs"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = train_screen(app)
        assert "train.sample_now" not in shown_keys(screen)  # nothing to ask yet
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.run_dir is not None, 10, "the run directory")
        engines.append(screen.run_dir)
        await wait_for(pilot, lambda: screen.model.step >= 1, 120, "the first step")
        assert "train.sample_now" in shown_keys(screen)

        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), 10, "the dialog")
        shown = "\n".join(
            str(s.render().plain if isinstance(s.render(), Text) else s.render())
            for s in app.screen.query(Static)
        )
        assert f"· {CONFIG_PROMPT}" in shown  # literally, brackets and all
        app.screen.query_one(Input).value = ASKED
        asked_at = screen.model.step
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PromptModal), 5, "the dialog")

        def asked_samples():
            return [s for s in screen.model.samples if s.prompt == ASKED]

        await wait_for(pilot, asked_samples, 120, "the requested samples")
        (sample,) = asked_samples()
        assert sample.step >= asked_at and all(p.is_file() for p in sample.paths)
        assert not (screen.run_dir / REQUEST_FILE).exists()  # the engine took it
        grid = screen.query_one("#samples", ImageGrid)
        await wait_for(pilot, lambda: any(t.loaded for t in grid.tiles), 30, "a tile")
        assert f"samples · step {sample.step}" in str(grid.border_title)
        assert any(t.item.caption == ASKED for t in grid.tiles)
        step_then = sample.step
        await wait_for(pilot, lambda: screen.model.step > step_then, 60, "training goes on")
        assert "live" in str(screen.query_one("#run-status", Static).render())

        await pilot.press("x")  # stop the run (the engines fixture kills it if this fails)
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), 10, "stop dialog")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.model.finished is not None, 90, "stopped")


def test_send_request_to_a_run_without_an_engine_is_one_line(tmp_path):
    """The run ended between the key and the write: the user reads one line, nothing written."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(SampleRequestError, match="no engine is running") as caught:
        send_request(run_dir, "x")
    assert "\n" not in str(caught.value)
    assert not (run_dir / REQUEST_FILE).exists()
