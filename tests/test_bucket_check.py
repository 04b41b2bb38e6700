"""The dataset check shows the aspect-ratio bucket each image falls into when the config trains
with buckets (issue 11): `check` lists each bucket's images (and, with prior preservation, the
class images each bucket has and will have), the Data screen's table gets a Bucket column."""

from __future__ import annotations

from pathlib import Path

from conftest_tui import (
    make_app,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
    write_demo_config,
)
from textual.widgets import DataTable

from engine.cli import main as cli_main
from tests.enginehelpers import write_config
from tests.imagefactory import concept_image
from tui.screens.data import DataScreen

# the tiny model's VAE halves each side: bucket sides are multiples of 16; at 64 px the buckets
# are 48x80, 64x64 and 80x48
SHAPES = {"a.png": (64, 64), "b.png": (96, 64), "c.png": (64, 100), "d.png": (100, 60)}
EXPECTED = {"a.png": "64×64", "b.png": "80×48", "c.png": "48×80", "d.png": "80×48"}


def _folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for n, (name, size) in enumerate(SHAPES.items()):
        concept_image(n, 128).resize(size).save(folder / name)
    concept_image(9, 128).resize((30, 20)).save(folder / "e-small.png")  # over 2x: no bucket
    return folder


def test_check_lists_the_bucket_of_each_image(tiny_dir, tmp_path, capsys):
    class_dir = tmp_path / "class"
    class_dir.mkdir()
    concept_image(20, 128).resize((100, 60)).save(class_dir / "wide.png")
    train = {
        "instance_data": str(_folder(tmp_path / "mixed")),
        "resolution": 64,
        "aspect_buckets": "on",
        "prior_preservation": True,
        "class_data": str(class_dir),
        "num_class_images": 4,
    }
    assert cli_main(["check", str(write_config(tmp_path, train=train))]) == 0
    out = capsys.readouterr().out
    assert "  aspect-ratio buckets: 3 of 3 in use (sides multiples of 16)" in out
    assert "  48×80: 1 image (c.png)" in out
    assert "  64×64: 1 image (a.png)" in out
    assert "  80×48: 2 images (b.png, d.png)" in out
    assert "  none: would be enlarged over 2x (skipped): 1 image (e-small.png)" in out
    # 4 class images over 1 tall, 1 square, 2 wide instance images; one wide one is there
    assert (
        "  class images by aspect-ratio bucket: 48×80: 0 of 1 (1 to make); "
        "64×64: 0 of 1 (1 to make); 80×48: 1 of 2 (1 to make)"
    ) in out
    assert "aspect buckets on" in out and "config OK" in out


def test_check_shows_no_buckets_when_the_config_trains_without(tiny_dir, tmp_path, capsys):
    train = {"instance_data": str(_folder(tmp_path / "mixed")), "resolution": 64}
    assert cli_main(["check", str(write_config(tmp_path, train=train))]) == 0  # auto, SD: off
    out = capsys.readouterr().out
    assert "aspect-ratio buckets" not in out and "aspect buckets off (auto" in out


def _rows(table: DataTable) -> dict[str, list[str]]:
    return {
        str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)]
        for i in range(table.row_count)
    }


async def test_data_table_shows_each_images_bucket(tiny_dir, tui_env):
    _folder(tui_env / "mixed")
    # the tiny model by its folder: tui_env points builtin:tiny at a cache without a model
    model = str(tiny_dir / "model")
    config = write_demo_config(
        tui_env, model=model, instance_data="./mixed", resolution="64", aspect_buckets="on"
    )
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DataScreen)
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        await settle(pilot)
        table = screen.query_one("#data-problems", DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "File",
            "Size",
            "Bucket",
            "Problem",
        ]
        rows = _rows(table)
        assert {name: row[2] for name, row in rows.items() if name in EXPECTED} == EXPECTED
        assert rows["e-small.png"][2].startswith("none: would be enlarged over 2x")
        assert rows["b.png"][1] == "96×64"


async def test_data_table_lists_problems_only_without_buckets(tiny_dir, tui_env):
    _folder(tui_env / "mixed")
    model = str(tiny_dir / "model")
    config = write_demo_config(tui_env, model=model, instance_data="./mixed", resolution="64")
    app = make_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.report is not None, what="the dataset check")
        await settle(pilot)
        table = screen.query_one("#data-problems", DataTable)
        assert [str(c.label) for c in table.columns.values()] == ["File", "Size", "Problem"]
        assert "a.png" not in _rows(table)  # no problem: not listed
