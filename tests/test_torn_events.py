"""Torn and garbage lines anywhere in events.jsonl: the reader, the tail, `runs`, the CLI's
progress renderer and the app skip them and show the rest, exactly as for the clean file
(docs/reliability.md, "Event stream")."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from conftest_tui import wait_for
from rich.console import Console
from tui_synthetic import write_finished_run

from engine.events import EVENTS_FILE, MAX_LINE, EventTail, read_events
from engine.progress import ProgressRenderer
from engine.runs import run_info

ROOT = Path(__file__).resolve().parent.parent

GARBAGE: list[bytes] = [
    b'{"v":1,"t":1.0,"type":"step","step":3,"lo',  # a line torn by a killed writer
    b"\x00" * 4096,  # a block of NULs (power loss on some filesystems)
    b'\xff\xfe{"type":"step","step":2}',  # not UTF-8
    b"[1, 2, 3]",
    b"42",
    b'"step"',
    b"null",
    b'{"type": 5, "step": 7}',
    b'{"no_type": true}',
    b'{"type":"step","step":"seven","loss":"x"}',
    b'{"type":"step","step":true,"loss":0.5}',
    b'{"type":"step","step":9.5,"loss":0.5}',
    b'{"type":"step","step":41,"loss":[1]}',
    b'{"type":"step","step":41,"loss":0.1,"mem":{"peak":"lots"}}',
    b'{"type":"step","step":' + b"9" * 5000 + b"}",
    b'{"type":"step","step":1}{"type":"step","step":2}',  # two writers on one line
    b'{"type":"sample","step":2,"prompt":"p","paths":[1,2]}',
    b'{"type":"sample","step":2,"prompt":"p"}',
    b'{"type":"checkpoint","step":2,"path":{}}',
    b'{"type":"log","level":"info","message":{"a":1}}',
    b'{"type":"error","kind":"oom","message":null}',
    b'{"type":"gpu","util":"hot","mem_used":1}',
    b'{"type":"run_started","run_id":"x","total_steps":"many"}',
    b'{"type":"finished","status":["completed"],"step":3}',
    b'{"type":"finished","status":"failed","duration_s":"long"}',
    b"[" * 100_000,  # deep enough to make json recurse
    b"x" * (MAX_LINE + 10),  # a line longer than any event
]


def garble(run_dir: Path) -> list[dict]:
    """Put every garbage line between the run's real lines, and a torn one at the end.
    Returns the events the clean file held."""
    path = run_dir / EVENTS_FILE
    clean = read_events(path)
    lines = path.read_bytes().splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        out.append(GARBAGE[i % len(GARBAGE)] + b"\n")
        out.append(line)
    out.extend(g + b"\n" for g in GARBAGE)
    out.append(b'{"v":1,"t":2.0,"type":"finished","status":"fai')  # torn, no newline
    path.write_bytes(b"".join(out))
    return clean


def test_reader_and_tail_skip_garbage_and_keep_every_event(tmp_path):
    run_dir = write_finished_run(tmp_path / "runs")
    clean = garble(run_dir)
    assert len(clean) > 40
    assert read_events(run_dir / EVENTS_FILE) == clean
    tail = EventTail(run_dir / EVENTS_FILE, max_bytes=4093)  # reads end mid-line all the time
    size = (run_dir / EVENTS_FILE).stat().st_size
    followed: list[dict] = []
    while tail.offset < size:
        followed.extend(tail.poll())
    assert followed == clean
    assert len(tail._partial) <= MAX_LINE + 1  # the torn last line, bounded


def test_runs_lists_a_garbled_run_as_the_clean_one(tmp_path):
    clean_dir = write_finished_run(tmp_path / "clean")
    garbled_dir = write_finished_run(tmp_path / "garbled")
    garble(garbled_dir)
    for field in ("status", "step", "last_loss", "total_steps", "error"):
        assert getattr(run_info(garbled_dir), field) == getattr(run_info(clean_dir), field)
    outputs = []
    for folder in ("clean", "garbled"):
        proc = subprocess.run(
            [sys.executable, "-m", "engine", "runs", "--output-dir", str(tmp_path / folder)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert "completed" in outputs[1] and "40/40" in outputs[1]


def render(run_dir: Path) -> tuple[str, ProgressRenderer]:
    console = Console(file=io.StringIO(), width=200, record=True, force_terminal=False)
    renderer = ProgressRenderer(run_dir, console=console)
    renderer.tail.max_bytes = 4093
    size = (run_dir / EVENTS_FILE).stat().st_size
    with renderer:
        while renderer.tail.offset < size:
            renderer.update()
    lines = console.export_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("step ")), renderer  # the bar


def test_cli_progress_renders_a_garbled_run_as_the_clean_one(tmp_path):
    clean_dir = write_finished_run(tmp_path / "clean", error=True)
    garbled_dir = write_finished_run(tmp_path / "garbled", error=True)
    garble(garbled_dir)
    clean_text, _ = render(clean_dir)
    text, renderer = render(garbled_dir)
    assert text.replace("garbled", "clean") == clean_text
    assert renderer.finished["status"] == "completed" and renderer.finished["step"] == 40
    assert [e["message"] for e in renderer.errors] == [
        "CUDA out of memory [tried to allocate 2.00 GiB]"
    ]


async def test_app_shows_a_garbled_run_in_full(tmp_path, monkeypatch):
    from textual.widgets import Static

    from tui.app import DreamBoothApp
    from tui.state import AppState
    from tui.widgets.loss_plot import LossPlot

    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir = write_finished_run(tmp_path / "runs", total=40, error=True)
    garble(run_dir)
    state = AppState(output_dir=tmp_path / "runs", run_dir=run_dir, image_protocol="halfcell")
    app = DreamBoothApp(state)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        screen = app.screen
        await wait_for(pilot, lambda: screen.model and screen.model.status == "completed", 10)
        model = screen.model
        label = screen.query_one("#step-label", Static)
        await wait_for(pilot, lambda: str(label.render()) == "step 40/40", 10, "the step label")
        assert [s for s, _ in model.losses] == list(range(1, 41))
        assert len(screen.query_one("#loss-plot", LossPlot).points("loss")) == 40
        assert len(model.samples) == 2 and [c[0] for c in model.checkpoints] == [20, 40]
        assert [e.message for e in model.errors] == [
            "CUDA out of memory [tried to allocate 2.00 GiB]"
        ]
        messages = [message for _, message in model.log]
        assert "· saving final model" in messages
        assert sum(m.startswith("samples at step ") for m in messages) == 2
        assert not any("{'a': 1}" in m or "None" in m for m in messages)  # no garbage logged


def test_garbage_lines_are_really_in_the_file(tmp_path):
    """The fixture itself: the garbled file holds every garbage line, whole."""
    run_dir = write_finished_run(tmp_path / "runs")
    garble(run_dir)
    data = (run_dir / EVENTS_FILE).read_bytes()
    assert all(g in data for g in GARBAGE)
    assert not data.endswith(b"\n")
