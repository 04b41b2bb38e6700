"""The warm Generate screen through the real app: two prompts in a row are made by one worker
process that loads the tiny model once; the worker ends when the app quits (q, an exception,
and SIGHUP/SIGTERM to the real app on a pseudo-terminal)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from test_generate_worker import running, wait_gone
from test_tui_generate import DEMO, demo_state, text_of, wait_for
from test_tui_terminal_restore import _read, spawn_app

import tui.screens.generate as generate_screen
from tui.app import DreamBoothApp
from tui.screens.generate import GenerateScreen, GenNote
from tui.widgets.image_grid import ImageGrid

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_history(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "prompt_history.json"
    monkeypatch.setattr(generate_screen, "history_path", lambda: path)
    return path


async def generate(pilot, screen: GenerateScreen, prompt: str) -> None:
    before = screen.out_dir
    await pilot.press("escape", "slash")  # the prompt's text is selected: typing replaces it
    await pilot.press(*prompt)
    await pilot.press("tab", "tab", "1", "tab", "2", "ctrl+g")  # 1 image, 2 steps
    await wait_for(pilot, lambda: screen.out_dir != before, 10, "the request to start")
    await wait_for(pilot, lambda: not screen.generating, 300, f"the images of {prompt!r}")


async def test_two_prompts_in_a_row_load_the_model_once_and_the_worker_ends_on_quit(
    tiny_dir, tmp_path
):
    notes: list[dict] = []
    app = DreamBoothApp(demo_state(tmp_path))

    def record(message) -> None:
        if isinstance(message, GenNote) and not any(n is message.note for n in notes):
            notes.append(message.note)  # once, though the hook sees it bubble to the app

    async with app.run_test(size=(120, 40), message_hook=record) as pilot:
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, GenerateScreen)
        await generate(pilot, screen, "a first prompt")
        status = text_of(screen.query_one("#gen-status"))
        assert "1 image(s)" in status and "loaded in" in status, status
        pid = screen.worker.pid
        assert pid is not None and running(pid)

        await generate(pilot, screen, "a second prompt")
        status = text_of(screen.query_one("#gen-status"))
        assert "1 image(s)" in status and "model already loaded" in status, status
        assert screen.worker.pid == pid
        assert [n["type"] for n in notes] == ["loading", "loaded"]  # once, for the first
        grid = screen.query_one("#images", ImageGrid)
        assert [t.item.path.name for t in grid.tiles] == ["000-a-second-prompt-s0.png"]
        await pilot.press("escape", "q")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to quit")
    assert wait_gone(pid, 10), "the generate worker outlived the app"


async def test_the_worker_ends_when_the_app_fails(tmp_path):
    app = DreamBoothApp(demo_state(tmp_path))
    with pytest.raises(RuntimeError, match="boom"):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("4")
            worker = app.screen.worker
            worker.submit(["--prompt", "no model"])  # answered at once; the process stays
            await wait_for(pilot, lambda: worker.pid is not None, 10, "the worker")
            pid = worker.pid

            def boom() -> None:
                raise RuntimeError("boom")

            app.call_later(boom)
            await pilot.pause(1)
    assert wait_gone(pid, 10), "the generate worker outlived the app"


def _worker_of(parent: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"generate-worker" in cmdline:
            return int(entry.name)
    return None


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_the_worker_ends_when_the_real_app_gets(tiny_dir, tmp_path, signum):
    # the demo's own config names builtin:tiny-shapes (built once, a minute): the tests' base
    # config, on builtin:tiny, stands in as the demo's config
    (tmp_path / "dreambooth-demo.yaml").write_text(DEMO.read_text(encoding="utf-8"))
    proc, parent = spawn_app(tmp_path, ["demo"], 40, 120)
    try:
        _read(parent, time.monotonic() + 60, stop=b"dreambooth-tui")
        time.sleep(1.0)
        os.write(parent, b"4")
        _read(parent, time.monotonic() + 2)
        os.write(parent, b"g")  # generate with the demo's settings: the worker starts
        deadline = time.monotonic() + 30
        while (pid := _worker_of(proc.pid)) is None and time.monotonic() < deadline:
            _read(parent, time.monotonic() + 0.2)
        assert pid is not None, "no generate worker started"
        proc.send_signal(signum)
        _read(parent, time.monotonic() + 5)
        assert proc.wait(timeout=20) == 128 + signum
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    assert wait_gone(pid, 10), "the generate worker outlived the app"
