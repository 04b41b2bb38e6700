"""The Generate screen through the real app, driven by keys: two real images from the tiny
model appear in the grid with their literal prompt; history recall; a bad field; the push flow
(dry run first, then the real push only when confirmed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest_tui import wait_for
from rich.cells import cell_len
from rich.text import Text
from test_generate_worker import running as _running
from textual.widgets import Input, Select, Static
from tui_synthetic import TRICKY_PROMPT, write_finished_run

import tui.screens.generate as generate_screen
import tui.screens.generate_push as generate_push
from engine.config import parse_config_text
from tui.app import DreamBoothApp
from tui.screens.generate import GenerateScreen
from tui.state import AppState
from tui.widgets.image_grid import ImageGrid, ImageModal
from tui.widgets.modals import ChoiceModal, PromptModal

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "base.yaml"  # the demo's settings on builtin:tiny


def text_of(widget) -> str:
    content = widget.render()
    return content.plain if isinstance(content, Text) else str(content)


def demo_state(tmp_path: Path, run_dir: Path | None = None) -> AppState:
    text = DEMO.read_text(encoding="utf-8")
    overrides = {"train": {"output_dir": str(tmp_path / "runs")}}
    cfg, _ = parse_config_text(text, str(DEMO), overrides=overrides)
    state = AppState(config_path=DEMO, output_dir=tmp_path / "runs", image_protocol="halfcell")
    state.set_config(cfg, text)
    state.run_dir = run_dir
    return state


@pytest.fixture(autouse=True)
def private_history(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "prompt_history.json"
    monkeypatch.setattr(generate_screen, "history_path", lambda: path)
    return path


async def type_into(pilot, text: str) -> None:
    await pilot.press(*text)


async def test_generate_two_images_appear_in_the_grid(tiny_dir, tmp_path, private_history):
    app = DreamBoothApp(demo_state(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, GenerateScreen)
        assert screen.query_one("#model-source", Select).value == "custom"
        assert screen.query_one("#model-id", Input).value == "builtin:tiny"
        await pilot.press("slash")  # focus the prompt (its text is selected: typing replaces)
        assert screen.focused is screen.query_one("#prompt")
        await type_into(pilot, TRICKY_PROMPT)
        await pilot.press("tab", "tab")  # negative prompt, then count
        assert screen.focused is screen.query_one("#count")
        await type_into(pilot, "2")
        await pilot.press("tab")
        await type_into(pilot, "2")  # steps
        assert screen.query_one("#prompt", Input).value == TRICKY_PROMPT
        await pilot.press("ctrl+g")
        grid = screen.query_one("#images", ImageGrid)
        await wait_for(
            pilot,
            lambda: len(grid.tiles) == 2 and all(t.loaded for t in grid.tiles),
            180,
            "two generated images in the grid",
        )
        await wait_for(pilot, lambda: not screen.generating, 30, "the generator to exit")
        await wait_for(pilot, lambda: "2 image(s)" in text_of(screen.query_one("#gen-status")),
                       5, "the done line")  # fmt: skip
        captions = [text_of(t.query_one(".caption", Static)) for t in grid.tiles]
        assert captions == [f"seed 0 · {TRICKY_PROMPT}", f"seed 1 · {TRICKY_PROMPT}"]
        assert all(t.item.path.is_file() for t in grid.tiles)
        assert screen.out_dir is not None and (screen.out_dir / "generate.log").is_file()
        assert json.loads(private_history.read_text()) == [TRICKY_PROMPT]

        await pilot.press("escape", "o")  # leave the field; the newest image, large
        await wait_for(pilot, lambda: isinstance(app.screen, ImageModal), 5, "the large image")
        assert app.screen.item == grid.tiles[-1].item
        await pilot.press("escape")
        assert app.screen is screen


async def test_history_recall_and_a_bad_field(tmp_path, private_history):
    private_history.write_text(json.dumps(["an older prompt", "the last prompt"]))
    app = DreamBoothApp(demo_state(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        prompt = screen.query_one("#prompt", Input)
        await pilot.press("slash", "ctrl+u")
        await type_into(pilot, "draft")
        await pilot.press("up")
        assert prompt.value == "the last prompt"
        await pilot.press("up")
        assert prompt.value == "an older prompt"
        await pilot.press("down", "down")
        assert prompt.value == "draft"

        await pilot.press("tab", "tab")  # count
        await pilot.press("ctrl+u")
        await type_into(pilot, "0")
        await pilot.press("ctrl+g")
        await pilot.pause()
        error = screen.query_one("#gen-error")
        assert error.display and "count: at least 1" in text_of(error)
        assert screen.request_id is None and not screen.generating
        # escape leaves the field: single keys work again ("g" generates: still refused)
        await pilot.press("escape")
        assert screen.focused is None


async def test_push_asks_repo_runs_a_dry_run_then_pushes_when_confirmed(tmp_path, monkeypatch):
    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    calls: list[list[str]] = []

    def fake_run(cmd, cancelled, **kwargs):
        calls.append(cmd)
        out = "would upload:\n  README.md\n  model_index.json\n  unet/[weird] name.safetensors"
        if "--dry-run" not in cmd:
            out = "pushed to https://huggingface.co/me/sks-shape"
        return 0, out

    monkeypatch.setattr(generate_push, "run_polled", fake_run)
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert screen.query_one("#model-source", Select).value == "final"
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), 5, "the repo prompt")
        await type_into(pilot, "me/sks-shape")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceModal), 10, "the dry run")
        assert calls and calls[0][-4:] == [str(run_dir), "me/sks-shape", "--private", "--dry-run"]
        listing = text_of(app.screen.query_one(".dialog-message", Static))
        assert "unet/[weird] name.safetensors" in listing  # literal
        assert app.screen.focused.id == "choice-cancel"  # Enter alone does not push
        await pilot.press("p")  # "Push for real (p)"
        await wait_for(pilot, lambda: len(calls) == 2, 10, "the real push")
        assert "--dry-run" not in calls[1] and calls[1][-3:] == [
            str(run_dir),
            "me/sks-shape",
            "--private",
        ]
        await wait_for(pilot, lambda: "pushed" in text_of(screen.query_one("#gen-status")), 5, "")


async def test_quitting_during_a_push_stops_the_upload_at_once(tmp_path, monkeypatch):
    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    pidfile = tmp_path / "push.pid"
    slow_push = tmp_path / "slow-push"  # stands in for `python -m engine push-model ...`
    slow_push.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 120\n")
    slow_push.chmod(0o755)
    monkeypatch.setattr(generate_push.sys, "executable", str(slow_push))
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), 5, "the repo prompt")
        await type_into(pilot, "me/sks-shape")
        await pilot.press("enter")
        await wait_for(pilot, lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "")
        pid = int(pidfile.read_text())
        started_quit = time.monotonic()
        app.exit()
    assert time.monotonic() - started_quit < 10
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid), "the push child outlived the app"


async def test_without_an_attached_run_the_newest_run_with_a_model_is_offered(tmp_path):
    runs = tmp_path / "runs"
    older = write_finished_run(runs, name="20240101-000000-older")
    (older / "final").mkdir()
    newest_without_model = write_finished_run(runs, name="20240301-000000-no-model")
    newer = write_finished_run(runs, name="20240201-000000-newer")
    (newer / "checkpoints" / "step-000010").mkdir(parents=True)
    import json as _json

    for run, started in ((older, 1.0), (newer, 2.0), (newest_without_model, 3.0)):
        (run / "run.json").write_text(
            _json.dumps({"run_id": run.name, "status": "completed", "started": started})
        )
    app = DreamBoothApp(demo_state(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        select = app.screen.query_one("#model-source", Select)
        assert select.value == "ckpt:10"
        labels = [str(label) for label, _ in app.screen._choices]
        assert any("20240201-000000" in label for label in labels)  # its start time


async def test_the_picker_moves_to_the_final_model_the_attached_run_writes(tmp_path):
    # the app went to Generate while the run was saving: its newest model was a checkpoint
    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "checkpoints" / "step-000100").mkdir(parents=True)
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        select = app.screen.query_one("#model-source", Select)
        await wait_for(pilot, lambda: select.value == "ckpt:100", 10, "the checkpoint")
        (run_dir / "final").mkdir()  # the engine writes final/ while the screen shows
        await wait_for(pilot, lambda: select.value == "final", 10, "the final model picked")


async def test_a_model_picked_by_hand_stays_when_the_run_writes_more(tmp_path):
    run_dir = write_finished_run(tmp_path / "runs")
    for step in (100, 200):
        (run_dir / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        select = screen.query_one("#model-source", Select)
        await wait_for(pilot, lambda: select.value == "ckpt:200", 10, "the newest checkpoint")
        select.value = "ckpt:100"  # the user compares an earlier one
        (run_dir / "checkpoints" / "step-000300").mkdir()
        (run_dir / "final").mkdir()
        offered = lambda: [v for _, v in screen._choices]  # noqa: E731
        await wait_for(pilot, lambda: "final" in offered(), 10, "the new models offered")
        assert offered()[:4] == ["final", "ckpt:300", "ckpt:200", "ckpt:100"]
        assert select.value == "ckpt:100"


def test_generated_images_follow_the_one_rule(tmp_path):
    from tui.generate_request import output_dir_for

    run_dir = tmp_path / "runs" / "20240101-000000-x"
    assert output_dir_for(run_dir).parent == run_dir / "generated"  # as `generate --run`
    # no run (a hub id or a model folder): the config's evaluation.output_dir, as the CLI
    assert output_dir_for(None, tmp_path / "imgs").parent == tmp_path / "imgs"


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_model_picker_shows_which_model(tmp_path, size):
    run_dir = write_finished_run(tmp_path / "runs", name="20261129-053201-a-photo-of-sks-shape")
    (run_dir / "final").mkdir()
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        screen = app.screen
        select = screen.query_one("#model-source", Select)
        await wait_for(pilot, lambda: select.value == "final", 10, "the run's final model")
        await pilot.pause()
        label = select.query_one("SelectCurrent #label", Static)
        text = str(label.render())
        assert "final model" in text and "20261129-053201" in text
        assert cell_len(text) <= label.size.width, (text, label.size.width)  # not cut


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_generated_images_grow_to_fill_the_grid(tmp_path, size):
    from tui_synthetic import write_generate_output

    from tui.widgets.image_grid import ImageGrid, ImageItem

    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    out = write_generate_output(run_dir / "generated" / "fixed", n=3)
    items = [ImageItem(p, f"seed {i}") for i, p in enumerate(sorted(out.glob("*.png")))]
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        grid = app.screen.query_one("#images", ImageGrid)
        grid.add_images(items)
        await wait_for(pilot, lambda: len(grid.tiles) == 3 and all(t.loaded for t in grid.tiles),
                       10, "the three images")  # fmt: skip
        await pilot.pause()
        width, height = grid.content_size
        # all three in view (no scrolling) ...
        assert all(t.region.bottom <= grid.content_region.bottom for t in grid.tiles)
        # ... and as large as that allows: one row more would not fit
        bigger = grid.rows + 1
        columns = max(1, (width + 1) // (bigger * 2 + 3))
        lines = -(-3 // columns)
        assert grid.rows > 8 or lines * (bigger + grid.caption_lines) > height
        if size == (120, 40):
            assert grid.rows >= 14  # was 8: most of the screen stayed empty


async def test_a_lora_on_a_base_model_writes_to_the_images_folder_not_the_attached_run(
    tmp_path, monkeypatch
):
    """The images of a LoRA file on a base model come from no run: they go to
    evaluation.output_dir (./images) like a typed model's, as `generate --model --lora` does;
    they went into the attached run's generated/ folder, filed with a run that never made them."""
    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    submitted: list[list[str]] = []

    def submit(self, argv: list[str]) -> int:
        submitted.append(argv)
        return 1

    monkeypatch.setattr(generate_screen.GenerateWorker, "submit", submit)
    monkeypatch.chdir(tmp_path)
    app = DreamBoothApp(demo_state(tmp_path, run_dir=run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        screen = app.screen
        select = screen.query_one("#model-source", Select)
        assert select.value == "final"
        select.focus()
        await pilot.press("enter", "down", "down", "enter")  # final, hub id, LoRA file
        assert select.value == "lora"
        screen.query_one("#lora-file", Input).focus()
        await type_into(pilot, "my.safetensors")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: submitted, 5, "the request")
        assert "--lora" in submitted[0] and "--run" not in submitted[0]
        assert screen.out_dir is not None
        assert screen.out_dir.parent == tmp_path / "images"
