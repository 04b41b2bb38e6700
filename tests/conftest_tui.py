"""Shared helpers for the TUI tests (imported by them; not a conftest plugin).

Fake runs are written by hand (run.json + events.jsonl through EventWriter) with fixed times, so
tables and snapshots do not depend on the clock.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path

import pytest

from engine.events import EVENTS_FILE, EventWriter
from engine.runs import write_run_json

# 2025-01-02 03:04:05 UTC, and runs an hour apart from it
BASE_TIME = 1735787045.0


def make_fake_run(
    output_dir: Path,
    run_id: str,
    *,
    started: float = BASE_TIME,
    steps: int = 20,
    total_steps: int = 20,
    status: str = "completed",
    loss0: float = 0.5,
    duration: float = 95.0,
    error: str | None = None,
) -> Path:
    """A finished (or stopped/failed) run with `steps` step events and a smooth loss curve."""
    run_dir = output_dir / run_id
    run_dir.mkdir(parents=True)
    write_run_json(
        run_dir,
        {
            "run_id": run_id,
            "status": status,
            "pid": None,
            "host": "test",
            "started": started,
            "ended": started + duration,
            "total_steps": total_steps,
            "method": "full",
        },
    )
    with EventWriter(run_dir / EVENTS_FILE) as writer:
        writer.emit(
            "run_started",
            run_id=run_id,
            config={},
            total_steps=total_steps,
            device={"kind": "cpu", "name": "cpu", "total_mem": 0},
            resumed_from_step=None,
            world_size=1,
        )
        for step in range(1, steps + 1):
            loss = loss0 * math.exp(-step / 10) + 0.05 * math.sin(step)
            writer.emit(
                "step",
                step=step,
                loss=loss,
                lr=1e-4,
                grad_norm=1.0,
                it_s=2.0,
                samples_s=2.0,
                eta_s=0.0,
                mem={"allocated": 0, "reserved": 0, "peak": 0},
            )
        if error:
            writer.emit("error", kind="internal", message=error, hint="")
        writer.emit("finished", status=status, step=steps, outputs={}, duration_s=duration)
    # fixed mtimes too, in case anything sorts by them
    for path in (run_dir, run_dir / EVENTS_FILE):
        os.utime(path, (started, started))
    return run_dir


def make_live_run(output_dir: Path, run_id: str, *, started: float = BASE_TIME):
    """A run whose engine lock is held by this process (so it counts as live); returns
    (run_dir, lock): release the lock when done."""
    from engine.runs import RunLock

    run_dir = output_dir / run_id
    run_dir.mkdir(parents=True)
    write_run_json(
        run_dir,
        {
            "run_id": run_id,
            "status": "running",
            "pid": os.getpid(),
            "started": started,
            "total_steps": 20,
        },
    )
    with EventWriter(run_dir / EVENTS_FILE) as writer:
        writer.emit(
            "run_started",
            run_id=run_id,
            config={},
            total_steps=20,
            device={"kind": "cpu", "name": "cpu", "total_mem": 0},
            resumed_from_step=None,
            world_size=1,
        )
        writer.emit(
            "step",
            step=1,
            loss=0.4,
            lr=1e-4,
            grad_norm=1.0,
            it_s=2.0,
            samples_s=2.0,
            eta_s=10.0,
            mem={"allocated": 0, "reserved": 0, "peak": 0},
        )
    lock = run_lock = RunLock(run_dir).acquire()
    del run_lock
    return run_dir, lock


# ---------------------------------------------------------------------------------------------
# app fixtures

SAMPLE_DEMO = Path(__file__).resolve().parent / "base.yaml"  # the demo's settings, builtin:tiny


@pytest.fixture(name="tui_env")
def tui_env_fixture(tmp_path, monkeypatch):
    """A project folder as the working directory, half-cell images, the demo images cached,
    and no GPU (the Config screen's estimate line reads the same on every machine).

    Returns the project folder (tmp_path/project: its name shows in the folder tree).
    """
    from engine import fit
    from engine.tiny import builtin_path, write_images

    monkeypatch.setattr(fit, "this_gpu", lambda: None)

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    monkeypatch.setenv("DREAMBOOTH_TUI_CACHE", str(tmp_path / "cache"))
    write_images(builtin_path("images"))
    return project


def write_demo_config(folder: Path, name: str = "dreambooth.yaml", **replace: str) -> Path:
    """The demo sample config (comments and all) as `folder/name`; `replace` maps
    "key: old" lines to new ones, e.g. instance_data="./photos"."""
    text = SAMPLE_DEMO.read_text(encoding="utf-8")
    for key, value in replace.items():
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            stripped = line.lstrip()
            if stripped.startswith(f"{key}:"):
                indent = line[: len(line) - len(stripped)]
                comment = line[line.index("#") :] if "#" in line else "\n"
                lines[i] = f"{indent}{key}: {value}   {comment}"
                break
        text = "".join(lines)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def make_app(config: Path | None = None, start_mode: str | None = None, **state_fields):
    from tui.app import DreamBoothApp
    from tui.state import build_state

    state = build_state(config)
    for key, value in state_fields.items():
        setattr(state, key, value)
    return DreamBoothApp(state, start_mode=start_mode)


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until `condition()` holds (workers report back in their own time); a
    widget the condition queries that is not mounted yet counts as "not yet"."""
    from textual.css.query import NoMatches

    def holds() -> bool:
        try:
            return bool(condition())
        except NoMatches:
            return False

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not holds():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def settle(pilot, timeout: float = 10.0) -> None:
    """Wait until the app's own workers (not Textual's long-lived ones) are done."""
    from textual.worker import WorkerState

    def busy() -> bool:
        return any(
            w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            and str(w.group).split("-")[0] in ("data", "config", "runs", "app")
            for w in pilot.app.workers
        )

    await wait_for(pilot, lambda: not busy(), timeout, "the workers")
    await pilot.pause()


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


def screen_text(app) -> str:
    """What the terminal shows (plain text of the SVG screenshot)."""
    import html
    import re

    svg = app.export_screenshot()
    texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(texts)).replace("\xa0", " ")
