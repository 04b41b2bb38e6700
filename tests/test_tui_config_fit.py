"""The Config screen's estimate line (issue 14): the run's peak GPU memory against this
machine's GPU and its time, the line `check` prints, following the form as it is edited."""

from __future__ import annotations

from conftest_tui import (
    make_app,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)

from engine import fit
from tui.screens.config import ConfigScreen

#: A GPU between the tiny model's full fine-tune (~15 MiB) and its LoRA (~4 MiB).
SMALL_GPU = fit.Gpu("NVIDIA H200", 10 * 2**20)


async def _fit_line(pilot) -> str:
    await settle(pilot)
    return str(pilot.app.screen.query_one("#config-fit").render())


async def test_the_estimate_line_follows_the_fields_that_matter(tui_env, tiny_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(fit, "this_gpu", lambda: calls.append(1) or SMALL_GPU)
    app = make_app(write_demo_config(tui_env, model=str(tiny_dir / "model")), "config")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, ConfigScreen) and app.screen.form.ready,
            30,
            what="the config form",
        )
        screen = app.screen
        full = await _fit_line(pilot)
        assert full == fit.fit(app.state.config, SMALL_GPU).line  # check's line, word for word
        assert "MiB peak of 0.0 GiB (NVIDIA H200) · does not fit: try gradient_checkpointing" in full  # fmt: skip
        screen.query_one("#field-train-method").focus()
        await pilot.press("enter", "down", "enter")  # full -> lora
        lora = await _fit_line(pilot)
        assert app.state.config.train.method == "lora"
        assert "· fits ·" in lora and lora.split(" peak")[0] != full.split(" peak")[0]
        screen.query_one("#field-train-resolution").focus()
        await pilot.press("ctrl+u", *"512")
        bigger = await _fit_line(pilot)
        assert app.state.config.train.resolution == 512
        assert bigger.split(" peak")[0] != lora.split(" peak")[0]  # more activations
        assert bigger == fit.fit(app.state.config, SMALL_GPU).line
    assert calls == [1]  # NVML asked once, however many edits


async def test_an_unreadable_model_then_no_gpu_are_said_plainly(tui_env, tiny_dir):
    app = make_app(write_demo_config(tui_env, model="no-such-user/no-such-model"), "config")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="config")
        await wait_for(pilot, lambda: app.state.gpu_checked, what="the GPU lookup")
        line = await _fit_line(pilot)
        assert line == "estimate: model not readable (not a local folder, nor a hub id in the Hub cache)"  # fmt: skip
        app.screen.query_one("#field-train-model").value = str(tiny_dir / "model")  # as pasted
        line = await _fit_line(pilot)
        assert " MiB peak GPU memory · no GPU here: fit not checked · under 1s for 20 steps on an H200" in line  # fmt: skip
