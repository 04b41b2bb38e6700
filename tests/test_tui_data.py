"""The Data screen, driven by keys: pick a folder, see its check and thumbnails; names shown
literally; hub dataset ids; "Use this folder"."""

from __future__ import annotations

from pathlib import Path

from conftest_tui import (
    make_app,
    notifications,
    screen_text,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from textual.widgets import DataTable, Input, Static

from engine.config import read_config
from engine.tiny import write_images
from tui.screens.data import DataScreen
from tui.widgets.modals import ChoiceModal
from tui.widgets.thumbnail_grid import Thumbnail


def _photos(folder, name="photos"):
    """The tiny model's concept images plus one file that is not an image."""
    target = folder / name
    write_images(target)
    (target / "bad.png").write_bytes(b"not an image")
    return target


async def _type_path(pilot, path: str) -> None:
    await pilot.press("slash")
    await pilot.pause()
    assert isinstance(pilot.app.focused, Input)
    await pilot.press("ctrl+u")  # clear what is there
    await pilot.press(*path)
    await pilot.press("enter")


async def test_pick_folder_shows_count_and_flags_the_bad_image(tui_env):
    photos = _photos(tui_env)
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        # type-ahead: "./pho" is completed to the folder by Tab
        await pilot.press("slash", "ctrl+u", *"./pho")
        path_input = screen.query_one("#folder-path", Input)
        await wait_for(pilot, lambda: path_input._suggestion == "./photos/", what="suggestion")
        await pilot.press("tab")
        assert path_input.value == "./photos/"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: screen.report is not None and screen.report.folder == photos,
            what="the dataset check",
        )
        await settle(pilot)
        assert screen.report.count == 6 and len(screen.report.images) == 7
        summary = str(screen.query_one("#data-summary").render())
        assert "7 images (1 unusable)" in summary
        assert "unreadable" in summary and "bad.png" in summary
        table = screen.query_one("#data-problems", DataTable)
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
        assert "bad.png" in rows
        assert str(rows["bad.png"][2]) == "unreadable (skipped)"
        # the thumbnails: one per file, the bad one without a picture and flagged
        await wait_for(pilot, lambda: len(screen.query(Thumbnail)) == 7, what="thumbnails")
        thumbs = {t._label: t for t in screen.query(Thumbnail)}
        assert thumbs["bad.png"].has_class("-flagged")
        assert thumbs["bad.png"].query(".thumb-missing")
        assert thumbs["shape-00.png"].query(".thumb-image")
        assert not isinstance(app.focused, Input)  # back to the tree: keys work again


async def test_duplicate_row_names_the_file_it_repeats(tui_env):
    photos = _photos(tui_env)
    (photos / "again.png").write_bytes((photos / "shape-00.png").read_bytes())
    app = make_app(write_demo_config(tui_env, instance_data="./photos"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        await settle(pilot)
        table = screen.query_one("#data-problems", DataTable)
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(table.row_count)}
        assert str(rows["shape-00.png"][2]) == "duplicate of again.png"
        assert "shape-00.png of again.png" in str(screen.query_one("#data-summary").render())


async def test_tree_picks_a_folder_and_names_show_literally(tui_env):
    _photos(tui_env, "[dim]photos")
    app = make_app(write_demo_config(tui_env, instance_data="./elsewhere"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        tree = screen.query_one("#folder-tree")
        await wait_for(pilot, lambda: len(tree.root.children) >= 1, what="the tree")
        labels = [str(node.label) for node in tree.root.children]
        assert "[dim]photos" in labels
        tree.focus()
        await pilot.press("down", "enter")  # the first folder under the root
        await wait_for(
            pilot,
            lambda: screen.report is not None and screen.report.folder.name == "[dim]photos",
            what="the dataset check",
        )
        await settle(pilot)
        text = screen_text(app)
        assert "Folder ./[dim]photos" in text
        assert "📂 [dim]photos" in text or "📁 [dim]photos" in text  # the tree
        assert screen.query_one("#folder-path", Input).value == "./[dim]photos"


async def test_hub_dataset_id_is_checked_when_training_starts_and_use_sets_the_config(tui_env):
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _type_path(pilot, "someone/dog-photos")
        await pilot.pause()
        assert screen.folder is None
        assert "hub dataset someone/dog-photos: checked when training starts" in screen_text(app)
        active = {b.binding.id for b in screen.active_bindings.values()}
        assert "data.use" in active and "data.push" not in active
        version = app.state.config_version
        await pilot.press("u")
        await pilot.pause()
        assert app.state.config.train.instance_data == "someone/dog-photos"
        assert app.state.modified and app.state.config_version > version
        assert any("train.instance_data = someone/dog-photos" in m for m in notifications(app))
        # the Config screen is told, and shows it
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.form.ready, what="the form")
        field = app.screen.query_one("#field-train-instance_data", Input)
        assert field.value == "someone/dog-photos"
        await pilot.press("1")
        await _type_path(pilot, "other/photos")
        await pilot.press("u")
        await wait_for(pilot, lambda: field.value == "other/photos", what="the form update")


async def test_use_this_folder_then_check_again(tui_env):
    _photos(tui_env)
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _type_path(pilot, "./photos")
        await wait_for(pilot, lambda: screen.report is not None and screen.folder.name == "photos")
        await pilot.press("u")
        await pilot.pause()
        assert app.state.config.train.instance_data == "./photos"
        assert app.state.num_images == 6
        # u is hidden now: the config already uses this folder
        assert "data.use" not in {b.binding.id for b in screen.active_bindings.values()}
        (tui_env / "photos" / "bad.png").unlink()
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: screen.report is not None and len(screen.report.images) == 6,
            what="the second check",
        )
        assert not screen.query_one("#data-problems", DataTable).row_count or all(
            str(screen.query_one("#data-problems", DataTable).get_row_at(i)[0]) != "bad.png"
            for i in range(screen.query_one("#data-problems", DataTable).row_count)
        )


async def test_push_dataset_asks_for_the_repo_and_runs_the_cli_in_a_worker(tui_env, monkeypatch):
    import subprocess

    _photos(tui_env)
    calls: list[list[str]] = []

    class FakePopen:
        def __init__(self, cmd, **kwargs):
            calls.append(cmd)
            assert kwargs["stdin"] is subprocess.DEVNULL
            self.stdout = iter(["writing README.md\n", "dry run: wrote [bold]out\n"])

        def wait(self):
            return 0

    monkeypatch.setattr("tui.screens.data_push.subprocess.Popen", FakePopen)
    app = make_app(write_demo_config(tui_env))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _type_path(pilot, "./photos")
        await wait_for(pilot, lambda: screen.report is not None and screen.folder.name == "photos")
        await pilot.press("p")
        await pilot.pause()
        await pilot.press(*"me/photos")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not screen.pushing and calls, what="the push")
        await pilot.pause()
        assert calls[0][-4:] == ["push-dataset", str(tui_env / "photos"), "me/photos", "--dry-run"]
        log = screen.query_one("#data-push-log")
        assert "dry run: wrote [bold]out" in "\n".join(log.lines)
        assert any("dry run to me/photos: done" in m for m in notifications(app))


async def test_quitting_after_picking_a_folder_asks_and_saves_it(tui_env):
    _photos(tui_env)
    config = write_demo_config(tui_env)
    app = make_app(config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        await _type_path(pilot, "./photos")
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        assert app.state.picked_data == "./photos"
        await pilot.press("q")  # the pick is not the training data yet: ask, do not lose it
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        shown = " ".join(str(s.render()) for s in app.screen.query(Static))
        assert "./photos" in shown and "instance_data" in shown
        await pilot.press("s")  # save and quit
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert read_config(config)[0].train.instance_data == "./photos"
    assert "# The tests' base config" in config.read_text(encoding="utf-8")  # comments kept


async def test_quitting_without_saving_leaves_the_file(tui_env):
    _photos(tui_env)
    config = write_demo_config(tui_env)
    before = config.read_text(encoding="utf-8")
    app = make_app(config)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await _type_path(pilot, "./photos")
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("c")  # cancel: still here
        await pilot.pause()
        assert app.is_running and app.screen is screen
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), what="the question")
        await pilot.press("d")  # quit without saving
        await wait_for(pilot, lambda: not app.is_running, what="the app to quit")
    assert config.read_text(encoding="utf-8") == before


async def test_a_file_name_too_long_for_its_thumbnail_ends_in_an_ellipsis(tui_env):
    photos = _photos(tui_env)
    long_name = "[best] my cat (2).png"
    (photos / long_name).write_bytes((photos / "shape-00.png").read_bytes())
    app = make_app(write_demo_config(tui_env, instance_data="./photos"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.query(Thumbnail)) == 8, what="thumbnails")
        await settle(pilot)
        thumb = next(t for t in screen.query(Thumbnail) if t._label == long_name)
        label = thumb.query_one(".thumb-label", Static)
        assert 0 < label.size.width < len(long_name)  # it does not fit
        shown = label.render_line(0).text.rstrip()
        assert shown.endswith("…") and long_name.startswith(shown[:-1])  # cut, and says so
        assert len(shown) == label.size.width


async def test_the_tree_starts_by_the_users_folders_and_follows_a_typed_one(tui_env):
    elsewhere = _photos(tui_env.parent / "elsewhere")
    app = make_app(write_demo_config(tui_env))  # the demo's images: builtin:tiny, in the cache
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        tree = screen.query_one("#folder-tree")
        assert Path(tree.path).resolve() == tui_env.resolve()  # not the cache's tiny-v1/
        await _type_path(pilot, str(elsewhere))
        await wait_for(
            pilot,
            lambda: screen.report is not None and screen.report.folder == elsewhere,
            what="the dataset check",
        )
        await settle(pilot)
        assert Path(tree.path).resolve() == elsewhere.parent.resolve()
        labels = [str(node.label) for node in tree.root.children]
        assert "photos" in labels


async def test_every_kind_of_problem_in_the_summary_can_be_scrolled_to_at_80_columns(tui_env):
    from PIL import Image

    photos = _photos(tui_env)  # + bad.png: unreadable
    (photos / "shape-00 copy.png").write_bytes((photos / "shape-00.png").read_bytes())
    Image.new("RGB", (8, 8), (0, 200, 0)).save(photos / "tiny.png")
    Image.new("RGB", (1600, 300), (200, 0, 0)).save(photos / "panorama.png")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(photos / "transparent.png")
    app = make_app(write_demo_config(tui_env, instance_data="./photos"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        await settle(pilot)
        last = screen.report.problem_lines()[-1]
        assert len(screen.report.problem_lines()) >= 5
        assert last[:30] not in screen_text(app)  # more kinds than the summary's rows
        screen.query_one("#data-summary").parent.scroll_end(animate=False)  # as a user scrolls
        await pilot.pause()
        assert last[:30] in screen_text(app)
