"""The footer's keys are rebuilt only when they change: a screen refreshes its bindings after
every status change, and each rebuild unmounted and mounted every key (issue 15: ~30 ms, twice
per re-attached run)."""

from __future__ import annotations

from conftest_tui import (
    make_app,
    make_fake_run,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from textual.widgets import Input
from textual.widgets._footer import FooterKey
from trainscreenhelpers import static_text

from tui.screens.train import TrainScreen
from tui.widgets.fit_footer import FitFooter


def _actions(screen) -> set[str]:
    return {key.action for key in screen.query_one(FitFooter).query(FooterKey) if not key.disabled}


async def test_the_footer_is_rebuilt_only_when_its_keys_change(tui_env, monkeypatch):
    runs = tui_env / "runs"
    run_dir = make_fake_run(runs, "20250102-030405-stopped", status="stopped")
    rebuilt: list[object] = []
    real_recompose = FitFooter.recompose

    async def recompose(self):
        rebuilt.append(self.screen)
        return await real_recompose(self)

    monkeypatch.setattr(FitFooter, "recompose", recompose)
    app = make_app(None, start_mode="train", run_dir=run_dir, output_dir=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, TrainScreen)
        await wait_for(pilot, lambda: "stopped" in static_text(screen, "#run-status"), 10,
                       "the stopped run")  # fmt: skip
        await settle(pilot)
        await wait_for(pilot, lambda: "resume" in _actions(screen), 5, "the resume key")
        rebuilt.clear()
        for _ in range(3):  # nothing the keys show changed
            screen.refresh_bindings()
            await settle(pilot)
        assert rebuilt == []
        screen.detach()  # no run: no resume key
        await wait_for(pilot, lambda: "resume" not in _actions(screen), 5, "the keys rebuilt")
        assert rebuilt == [screen]


async def test_a_text_input_with_the_cursor_takes_slash_out_of_the_footer(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        data = app.screen
        await wait_for(pilot, lambda: "focus_path" in _actions(data), 5, "the path key")
        await pilot.press("slash")  # the path input: / types there
        await wait_for(pilot, lambda: isinstance(app.focused, Input), 5, "the path input")
        await wait_for(pilot, lambda: "focus_path" not in _actions(data), 5, "/ Path gone")
        await pilot.press("escape", "2")
        config = app.screen
        await wait_for(pilot, lambda: config.form.ready, 30, "the form")
        await wait_for(pilot, lambda: "find_field" in _actions(config), 5, "the find key")
        await pilot.press("slash", *"seed", "enter")  # find the field: its input has the cursor
        await wait_for(pilot, lambda: isinstance(app.focused, Input), 5, "the seed field")
        await wait_for(pilot, lambda: "find_field" not in _actions(config), 5, "/ Find gone")
        await pilot.press("slash")
        assert app.focused.value.endswith("/")  # what / does there: types
