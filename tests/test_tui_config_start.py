"""The Config screen as it opens: the sample list, shown only while there is no config, never
keeps the keys once a config (or the text of one that did not load) is shown."""

from __future__ import annotations

from conftest_tui import (
    make_app,
    screen_text,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)

from tui.screens import config_samples
from tui.screens.config import ConfigScreen


async def test_enter_does_not_load_a_sample_over_a_config_that_did_not_load(tui_env, monkeypatch):
    # The sample list can arrive before the screen hides it (a fast disk, a busy machine): here
    # it always does.
    def listed_at_once(self: config_samples.SamplePicker) -> None:
        self.post_message(self.Listed(config_samples.sample_configs()))

    monkeypatch.setattr(config_samples.SamplePicker, "list_samples", listed_at_once)
    path = write_demo_config(tui_env, learning_rate="-1")
    before = path.read_text()
    app = make_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, ConfigScreen) and screen.tabs.active == "yaml"
        picker = screen.query_one("#config-start")
        assert picker.query_one("#config-samples").option_count >= 3  # the list did arrive
        assert not picker.display and not picker.has_focus_within
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.state.config is None and not app.state.modified  # no sample loaded
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
    assert path.read_text() == before


async def test_the_sample_list_says_which_card_each_sample_is_sized_for(tui_env):
    app = make_app(None)
    async with app.run_test(size=(80, 24)) as pilot:
        samples = app.screen.query_one("#config-samples")
        await wait_for(pilot, lambda: samples.option_count >= 6, what="the samples")
        await pilot.pause()
        labels = {
            str(samples.get_option_at_index(i).prompt).split()[0]: str(
                samples.get_option_at_index(i).prompt
            )
            for i in range(samples.option_count)
        }
        assert not [label for label in labels.values() if "…" in label]  # none cut
        assert "fits a 24 GB card" in labels["sd15-full.yaml"]
        assert "a card of 40 GB or more" in labels["sdxl-full.yaml"]
        assert "for a 16 GB card" in labels["sdxl-lora.yaml"]
        shown = screen_text(app)  # wrapped, whole, at 80 columns
        for words in ("fits a 24 GB card", "40 GB or more", "for a 16 GB card"):
            assert words in shown
