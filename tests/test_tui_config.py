"""The Config screen, driven by keys: a field validated as typed with its error next to it,
saving (refused while invalid; comments kept), the YAML tab, sample configs."""

from __future__ import annotations

import pytest
from conftest_tui import (
    make_app,
    notifications,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from textual.widgets import Input, Static, TextArea

from engine.config import FIELD_GROUPS, read_config
from tui.screens.config import ConfigScreen
from tui.widgets.config_form import FieldRow
from tui.widgets.modals import ChoiceModal, PickModal, PromptModal


async def _open_config(pilot) -> ConfigScreen:
    app = pilot.app
    if app.current_mode != "config":
        await pilot.press("2")
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, ConfigScreen) and app.screen.form.ready,
        what="the config form",
    )
    await settle(pilot)
    return app.screen


async def _go_to_field(pilot, name: str) -> Input:
    """`/` finds a field by name, as a user would (escape first leaves a field)."""
    await pilot.press("escape", "slash")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PromptModal), what="find")
    await pilot.press(*name, "enter")
    await pilot.pause()
    focused = pilot.app.focused
    assert isinstance(focused, Input) and focused.id.endswith(name.replace(".", "-"))
    return focused


async def test_form_has_one_field_per_schema_key_in_groups_and_edits_by_keys(tui_env):
    app = make_app(write_demo_config(tui_env), "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        rows = screen.query(FieldRow)
        expected = [(s, k) for fields in FIELD_GROUPS.values() for s, k in fields]
        assert [(r.section, r.key) for r in rows] == expected
        kinds = {r.key: r.kind for r in rows}
        assert kinds["method"] == "choice" and kinds["mixed_precision"] == "choice"
        assert kinds["center_crop"] == "bool" and kinds["learning_rate"] == "text"
        titles = [str(t.render()) for t in screen.query(".group-title")]
        assert titles == list(FIELD_GROUPS)
        summary = str(screen.query_one("#config-summary").render())
        assert "20 steps" in summary and "full fine-tune" in summary and "fp32" in summary
        assert not app.state.modified  # showing the config changed nothing
        # a switch and a choice, by keys
        screen.query_one("#field-train-center_crop").focus()
        await pilot.press("space")
        await pilot.pause()
        assert app.state.config.train.center_crop is False
        screen.query_one("#field-train-method").focus()
        await pilot.press("enter", "down", "enter")  # open, the next option (lora), choose
        await pilot.pause()
        assert app.state.config.train.method == "lora"
        assert "LoRA rank 4" in str(screen.query_one("#config-summary").render())
        assert app.state.modified


async def test_invalid_value_shows_error_next_to_field_then_valid_value_saves(tui_env):
    path = write_demo_config(tui_env)
    before = path.read_text()
    app = make_app(path, "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        await _go_to_field(pilot, "learning_rate")
        await pilot.press("ctrl+u", *"-1")
        await pilot.pause()
        row = screen.form.row("train", "learning_rate")
        error = row.query_one(".-error")
        assert "train.learning_rate" in str(error.render())
        assert row.widget.has_class("-field-error")
        assert "1 invalid field" in str(screen.query_one("#config-file").render())
        # saving is refused, naming the field; the file is untouched
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert any("Not saved" in m and "train.learning_rate" in m for m in notifications(app))
        assert path.read_text() == before
        # a valid value: the error goes, the summary follows, ctrl+s saves
        await pilot.press("ctrl+u", *"2e-4")
        await pilot.pause()
        assert not row.query(".-error")
        assert app.state.config.train.learning_rate == 2e-4
        await _go_to_field(pilot, "max_train_steps")
        await pilot.press("ctrl+u", *"30")
        await pilot.pause()
        assert "30 steps" in str(screen.query_one("#config-summary").render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
    after = path.read_text()
    assert after != before
    cfg, _ = read_config(path)
    assert cfg.train.learning_rate == 2e-4 and cfg.train.max_train_steps == 30
    # the comments are kept, on their lines
    for line in before.splitlines():
        if line.lstrip().startswith("#"):
            assert line in after
    assert "# a few seconds on a CPU" in after.split("max_train_steps")[1].splitlines()[0]
    assert "# high, so the tiny model visibly learns" in after


async def test_yaml_tab_follows_the_form_and_the_form_follows_the_yaml(tui_env):
    app = make_app(write_demo_config(tui_env), "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        await _go_to_field(pilot, "seed")
        await pilot.press("ctrl+u", *"7", "escape")
        await pilot.pause()
        assert app.focused is None  # escape leaves the field: keys work again
        await pilot.press("y")
        await pilot.pause()
        yaml = screen.query_one("#config-yaml", TextArea)
        assert screen.tabs.active == "yaml"
        assert "  seed: 7" in yaml.text
        assert "# The tests' base config" in yaml.text  # comments kept in the YAML view too
        # an edit of the text shows in the form
        yaml.text = yaml.text.replace("max_train_steps: 20", "max_train_steps: 44")
        await pilot.pause(0.6)  # parsed after a short pause in typing
        await pilot.press("escape", "f")  # escape leaves the text (y put the cursor there)
        await pilot.pause()
        assert screen.tabs.active == "form"
        assert screen.query_one("#field-train-max_train_steps", Input).value == "44"
        assert app.state.config.train.max_train_steps == 44
        # a broken text: its error shows under it and the form keeps the last valid config
        await pilot.press("y")
        await pilot.pause()
        yaml.text = yaml.text.replace("learning_rate:", "learnig_rate:")
        await pilot.pause(0.6)
        error = str(screen.query_one("#config-yaml-error").render())
        assert "learnig_rate" in error and "learning_rate" in error
        assert app.state.config.train.learning_rate == 1e-4


async def test_y_puts_the_cursor_in_the_yaml_text_and_escape_gives_the_keys_back(tui_env):
    path = write_demo_config(tui_env)
    app = make_app(path, "config")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_config(pilot)
        await pilot.press("escape", "y")
        await pilot.pause()
        yaml = screen.query_one("#config-yaml", TextArea)
        assert screen.tabs.active == "yaml" and app.focused is yaml
        await pilot.press(*"# my lora notes", "enter")  # typed into the text: l is no key here
        assert isinstance(app.screen, ConfigScreen)  # no sample dialog
        assert yaml.text.startswith("# my lora notes\n# The tests' base config")
        await pilot.pause(0.6)  # parsed after a short pause in typing
        await pilot.press("escape", "f")
        await pilot.pause()
        assert screen.tabs.active == "form"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
    assert path.read_text().startswith("# my lora notes\n# The tests' base config")


async def test_a_yaml_error_goes_when_the_text_is_put_back(tui_env):
    app = make_app(write_demo_config(tui_env), "config")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_config(pilot)
        await pilot.press("escape", "y", "ctrl+home", "x")  # 'x# The tests...': not a config
        await pilot.pause(0.6)  # parsed after a short pause in typing
        error = screen.query_one("#config-yaml-error", Static)
        assert error.display and "dreambooth.yaml" in str(error.render())
        await pilot.press("backspace")  # the text as it was
        await pilot.pause(0.6)
        assert not error.display
        assert not app.state.modified


async def test_without_config_a_sample_is_picked_and_saved_as_a_new_file(tui_env):
    app = make_app(None)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfigScreen)
        assert screen.query_one("#config-start").display
        samples = screen.query_one("#config-samples")
        await wait_for(pilot, lambda: samples.option_count >= 3, what="the samples")
        assert app.focused is samples  # Enter picks at once
        await pilot.press("enter")  # the first: demo.yaml
        await wait_for(pilot, lambda: app.state.config is not None, what="the sample")
        await wait_for(pilot, lambda: screen.form.ready, 30, what="the form")
        assert app.state.config.train.model == "builtin:tiny-shapes"
        assert screen.query_one("#field-train-model", Input).value == "builtin:tiny-shapes"
        assert not screen.query_one("#config-start").display
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="save as")
        await pilot.press("enter")  # ./dreambooth.yaml
        await wait_for(pilot, lambda: app.state.config_path is not None, what="the save")
    saved = tui_env / "dreambooth.yaml"
    assert saved.is_file()
    assert "# The offline demo" in saved.read_text()
    assert read_config(saved)[0].train.model == "builtin:tiny-shapes"


async def test_saving_a_new_config_never_replaces_a_file_that_is_there(tui_env):
    mine = tui_env / "mine.yaml"
    mine.write_text("my notes: keep them\n", encoding="utf-8")
    app = make_app(None)  # mine.yaml is not the default name: no config opens
    async with app.run_test(size=(80, 24)) as pilot:
        samples = app.screen.query_one("#config-samples")
        await wait_for(pilot, lambda: samples.option_count >= 3, what="the samples")
        await pilot.press("enter")  # demo.yaml
        await wait_for(pilot, lambda: app.state.config is not None, what="the sample")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="save as")
        await pilot.press("ctrl+u", *"mine.yaml", "enter")
        await wait_for(pilot, lambda: notifications(app), what="the refusal")
        assert "Not saved: mine.yaml exists already" in notifications(app)[-1]
        assert app.state.config_path is None  # still a new config
        await pilot.press("ctrl+s")  # another name: saved
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="save as")
        await pilot.press("ctrl+u", *"other.yaml", "enter")
        await wait_for(pilot, lambda: app.state.config_path is not None, what="the save")
    assert mine.read_text(encoding="utf-8") == "my notes: keep them\n"
    assert (tui_env / "other.yaml").read_text().startswith("# The offline demo")


async def test_l_loads_a_sample_over_the_open_config(tui_env):
    path = write_demo_config(tui_env, max_train_steps="99")
    app = make_app(path, "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        assert app.state.config.train.max_train_steps == 99
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, PickModal), what="the list")
        options = app.screen.query_one("#pick-list")
        names = [
            str(options.get_option_at_index(i).prompt).split()[0]
            for i in range(options.option_count)
        ]
        assert "demo.yaml" in names and "sd15-lora.yaml" in names
        await pilot.press("enter")  # demo.yaml
        await wait_for(pilot, lambda: app.state.config.train.max_train_steps == 200)
        await pilot.pause()
        assert screen.query_one("#field-train-max_train_steps", Input).value == "200"
        assert app.state.modified  # the open file is not overwritten until ctrl+s
        assert app.state.config_path == path


async def test_path_check_runs_in_a_worker_and_names_the_field(tui_env):
    app = make_app(write_demo_config(tui_env, instance_data="./missing-folder"), "config")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _open_config(pilot)
        await wait_for(pilot, lambda: screen._paths_error is not None, what="the path check")
        paths = str(screen.query_one("#config-paths").render())
        assert "train.instance_data" in paths and "missing-folder" in paths
        row = screen.form.row("train", "instance_data")
        assert "image folder not found" in str(row.query_one(".-error").render())
        (tui_env / "missing-folder").mkdir()
        await _go_to_field(pilot, "instance_data")
        await pilot.press("ctrl+u", *"./missing-folder")
        await wait_for(pilot, lambda: screen._paths_error is None, what="the second check")
        assert not row.query(".-error")


async def test_a_config_that_does_not_load_opens_in_yaml_with_its_error(tui_env):
    path = write_demo_config(tui_env, learning_rate="-1")
    app = make_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfigScreen) and app.state.config is None
        assert screen.tabs.active == "yaml"
        error = str(screen.query_one("#config-summary").render())
        assert "train.learning_rate" in error
        yaml = screen.query_one("#config-yaml", TextArea)
        assert "learning_rate: -1" in yaml.text
        yaml.text = yaml.text.replace("learning_rate: -1", "learning_rate: 3e-5")
        await wait_for(pilot, lambda: app.state.config is not None, what="the fixed config")
        assert app.state.config.train.learning_rate == 3e-5
        await pilot.press("f")
        await wait_for(pilot, lambda: screen.form.ready, 30, what="the form")
        assert screen.query_one("#field-train-learning_rate", Input).value == "3e-05"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
    assert "learning_rate: 3e-5" in path.read_text()


async def test_find_enter_takes_the_highlighted_suggestion(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="Config")
        screen = app.screen
        await wait_for(pilot, lambda: screen.form.ready, 30, what="the form")
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="Find")
        await pilot.press(*"gradient_acc")
        field = app.screen.query_one(Input)
        await wait_for(pilot, lambda: field._suggestion == "gradient_accumulation_steps")
        await pilot.press("enter")  # not "no field 'gradient_acc'": the suggestion shown
        await wait_for(pilot, lambda: app.screen is screen, what="Find to close")
        assert app.focused is screen.query_one("#field-train-gradient_accumulation_steps")


async def test_find_names_the_fields_a_name_that_is_none_was_meant_for(tui_env):
    app = make_app(write_demo_config(tui_env), "config")
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_config(pilot)
        for typed, meant in [
            ("lerning", "did you mean 'learning_rate'?"),  # a typo
            ("rate", "did you mean 'learning_rate'?"),  # part of a name
            ("train.lora_rnk", "did you mean 'lora_rank'"),
        ]:
            await pilot.press("escape", "slash")
            await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), what="find")
            await pilot.press(*typed, "enter")
            await pilot.pause()
            error = str(app.screen.query_one("#prompt-error", Static).render())
            assert error.startswith(f"no field {typed!r}; ") and meant in error
            await pilot.press("escape")  # cancel
            await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="closed")


async def test_changing_the_instance_prompt_offers_to_update_the_sample_prompts(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="Config")
        screen = app.screen
        await wait_for(pilot, lambda: screen.form.ready, 30, what="the form")
        old = app.state.config.train.instance_prompt
        assert "sks" in old and any("sks" in p for p in app.state.config.evaluation.prompts)
        field = screen.query_one("#field-train-instance_prompt", Input)
        field.focus()
        field.value = old.replace("sks", "zwx")
        await pilot.pause()
        await pilot.press("tab")  # leaving the field asks
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        shown = " ".join(str(label.render()) for label in app.screen.query(Static))
        assert "evaluation.prompts" in shown and "a photo of zwx shape" in shown
        await pilot.press("enter")  # "Update them" (the default)
        await wait_for(pilot, lambda: app.screen is screen, what="the dialog to close")
        prompts = app.state.config.evaluation.prompts
        assert prompts and all("zwx" in p and "sks" not in p for p in prompts)
        # saved as the user would: the file has the new prompts
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.state.modified, what="the save")
        saved = read_config(app.state.config_path)[0]
        assert saved.evaluation.prompts == prompts
        assert saved.train.instance_prompt == old.replace("sks", "zwx")


def test_updated_prompts_replaces_the_changed_token_only():
    from tui.screens.prompt_sync import updated_prompts

    old, new = "a photo of sks dog", "a photo of zwx dog"
    assert updated_prompts(old, new, ["a photo of sks dog on the beach", "sks dog, oil"]) == [
        "a photo of zwx dog on the beach",
        "zwx dog, oil",
    ]
    assert updated_prompts(old, new, ["a cat"]) is None  # nothing uses the old one
    assert updated_prompts(old, "my dog", ["a photo of sks dog in snow"]) == ["my dog in snow"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_field_name_fits_its_label(tui_env, size):
    from rich.cells import cell_len
    from textual.widgets import Label

    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=size) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfigScreen), what="Config")
        screen = app.screen
        await wait_for(pilot, lambda: screen.form.ready, 30, what="the form")
        await pilot.pause()
        labels = list(screen.query(".field-key").results(Label))
        assert len(labels) == sum(len(fields) for fields in FIELD_GROUPS.values())
        for label in labels:
            text = str(label.render())
            needed = cell_len(text) + label.styles.padding.left + label.styles.padding.right
            assert label.size.width >= needed, (text, label.size.width)
