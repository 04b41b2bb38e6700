"""`train.aspect_buckets` (issue 11): `auto`, the default, is on for SDXL and off for SD 1.x/2.x
(the model family decides); true/false read as on/off; `check` and the Config screen's summary
say which applies."""

from __future__ import annotations

import pytest
from conftest_tui import (
    make_app,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)

from engine.buckets import buckets_on
from engine.cli import main as cli_main
from engine.config import ConfigError, load_config
from engine.families import SD, SDXL
from tests.enginehelpers import DEMO, prepare, write_config

SDXL_SAYS = "aspect buckets on (auto for Stable Diffusion XL)"
SD_SAYS = "aspect buckets off (auto for Stable Diffusion 1.x/2.x)"


def test_auto_is_the_default_and_true_false_read_as_on_off():
    assert load_config(DEMO).train.aspect_buckets == "auto"
    for raw, value in (
        (True, "on"),
        (False, "off"),
        ("yes", "on"),
        ("Off", "off"),
        ("AUTO", "auto"),
    ):
        assert load_config(DEMO, {"train": {"aspect_buckets": raw}}).train.aspect_buckets == value
    with pytest.raises(ConfigError) as err:
        load_config(DEMO, {"train": {"aspect_buckets": "sometimes"}})
    assert "train.aspect_buckets" in str(err.value) and "auto, on, off" in str(err.value)
    assert "\n" not in str(err.value)


def test_auto_means_on_for_sdxl_and_off_for_sd():
    assert buckets_on("auto", SDXL) and not buckets_on("auto", SD)
    assert buckets_on("on", SD) and not buckets_on("off", SDXL)


@pytest.mark.parametrize(
    ("model", "setting", "said"),
    [
        ("builtin:tiny-sdxl", "auto", SDXL_SAYS),
        ("builtin:tiny", "auto", SD_SAYS),
        ("builtin:tiny-sdxl", "off", "prior preservation off · aspect buckets off\n"),
    ],
)
def test_check_says_which_applies(tiny_sdxl_dir, tmp_path, capsys, model, setting, said):
    path = write_config(tmp_path, train={"model": model, "aspect_buckets": setting})
    assert cli_main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert said in out


@pytest.mark.parametrize(
    ("model", "bucketed"), [("builtin:tiny-sdxl", True), ("builtin:tiny", False)]
)
def test_a_run_with_auto_buckets_by_its_family(tiny_sdxl_dir, tmp_path, model, bucketed):
    from engine.config import load_config as load
    from engine.runs import CONFIG_FILE
    from engine.train import Trainer

    run_dir = prepare(tmp_path, train={"model": model, "max_train_steps": 1})
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load(run_dir / CONFIG_FILE)
    assert trainer.cfg.train.aspect_buckets == "auto"
    trainer.setup()
    trainer.prepare()
    assert (trainer.batches.instances.buckets is not None) is bucketed


@pytest.mark.parametrize(
    ("model", "said"), [("builtin:tiny-sdxl", SDXL_SAYS), ("builtin:tiny", SD_SAYS)]
)
async def test_config_summary_says_which_applies(tui_env, model, said):
    app = make_app(write_demo_config(tui_env, model=model), "config")
    async with app.run_test(size=(200, 40)) as pilot:
        # the whole form (its Selects mount late: leaving earlier tears them down half-made)
        await wait_for(pilot, lambda: app.screen.form.ready, timeout=60, what="the form")
        await settle(pilot)
        assert said in str(app.screen.query_one("#config-summary").render())
