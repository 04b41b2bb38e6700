"""Issue 9, item 8 (the app): form edits are validated as a whole, the rules between keys too,
before the config is saved or used; switching method never keeps the other method's default
learning rate."""

from __future__ import annotations

from conftest_tui import (
    make_app,
    notifications,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)

from tui.screens.config import ConfigScreen
from tui.widgets.modals import ChoiceModal


async def _open_config(pilot) -> ConfigScreen:
    app = pilot.app
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, ConfigScreen) and app.screen.form.ready,
        30,
        what="the config form",
    )
    await settle(pilot)
    return app.screen


async def test_switching_method_moves_a_default_learning_rate_with_it(tui_env):
    path = write_demo_config(tui_env, learning_rate="5.0e-6")  # the full fine-tune default
    app = make_app(path, "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        screen.query_one("#field-train-method").focus()
        await pilot.press("enter", "down", "enter")  # full -> lora
        await pilot.pause()
        assert app.state.config.train.method == "lora"
        assert app.state.config.train.learning_rate == 1e-4  # not full's 5e-6
        assert screen.form.row("train", "learning_rate").widget.value in ("0.0001", "1e-4")
        await pilot.press("enter", "up", "enter")  # back to full
        await pilot.pause()
        assert app.state.config.train.learning_rate == 5e-6


async def test_a_typed_learning_rate_stays_when_the_method_changes(tui_env):
    path = write_demo_config(tui_env, learning_rate="3.0e-5")
    app = make_app(path, "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        screen.query_one("#field-train-method").focus()
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert app.state.config.train.method == "lora"
        assert app.state.config.train.learning_rate == 3e-5


async def test_a_rule_between_keys_blocks_save_and_start_until_fixed(tui_env):
    path = write_demo_config(tui_env)
    before = path.read_text()
    app = make_app(path, "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        screen.query_one("#field-train-lr_scheduler").focus()
        await pilot.press("enter", "down", "down", "enter")  # constant -> piecewise_constant
        await pilot.pause()
        assert app.state.config.train.lr_scheduler == "piecewise_constant"
        row = screen.form.row("train", "lr_step_rules")
        assert "required when lr_scheduler is piecewise_constant" in str(
            row.query_one(".-error").render()
        )
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("Not saved" in m and "train.lr_step_rules" in m for m in notifications(app))
        assert path.read_text() == before
        # the Train screen will not start it either
        await pilot.press("escape", "3")
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause(0.2)
        assert any("Cannot start" in m and "lr_step_rules" in m for m in notifications(app))
        assert not (tui_env / "runs").exists()
        # fixed: the error goes and the config saves
        await pilot.press("2")
        await _open_config(pilot)
        screen.query_one("#field-train-lr_step_rules").focus()
        await pilot.press(*"1:10,0.5")
        await pilot.pause()
        assert not row.query(".-error")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
    assert "lr_step_rules: 1:10,0.5" in path.read_text()


async def test_a_broken_rule_shows_in_the_head_and_quitting_does_not_save_it(tui_env):
    path = write_demo_config(tui_env, method="lora", export="[kohya]")
    before = path.read_text()
    app = make_app(path, "config")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_config(pilot)
        assert "invalid" not in str(screen.query_one("#config-file").render())
        screen.query_one("#field-train-method").focus()
        await pilot.press("enter", "up", "enter")  # lora -> full: kohya is a LoRA format
        await pilot.pause()
        assert app.state.config.train.method == "full"
        # the error is at train.export, far below: the head says a field is wrong
        assert "1 invalid field" in str(screen.query_one("#config-file").render())
        await pilot.press("escape", "q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("s")  # save and quit: refused, as ctrl+s is; the app stays
        await pilot.pause(0.3)
        assert app.is_running
        assert any("Not saved: train.export" in m for m in notifications(app))
    assert path.read_text() == before  # a config that loads, not one that would not
