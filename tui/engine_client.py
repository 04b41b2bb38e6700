"""The TUI's side of the engine: start, stop, resume and delete runs; follow their event streams.

Torch-free (DESIGN.md): this module imports only engine.events, engine.runs, engine.runstop and
(lazily) engine.launch. Nothing here touches Textual either, so it is unit-tested without an app.

`RunModel` (tui/run_model.py, re-exported here) is the state of a run as derived from its
events. `tui.follower.RunFollower` pairs a model with an `EventTail`: a worker thread reads,
the UI thread applies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.runs import is_locked, read_run_json
from engine.runstop import StopRefusedError
from engine.runstop import stop_run as _stop_run
from tui.run_model import (  # re-exported: the run model lives in tui/run_model.py
    HISTORY_LEN,
    LOG_LEN,
    TAIL_CHUNK,
    ErrorInfo,
    RunModel,
    SampleInfo,
    fmt_duration,
    load_loss_history,
    points_after,
)

__all__ = [
    "HISTORY_LEN",
    "LOG_LEN",
    "TAIL_CHUNK",
    "ErrorInfo",
    "RunModel",
    "SampleInfo",
    "delete_run",
    "engine_env",
    "fmt_duration",
    "load_loss_history",
    "points_after",
    "resume_run",
    "start_generate",
    "start_run",
    "StopRefusedError",
    "stop_run",
]


def engine_env() -> dict[str, str]:
    """The environment for an engine child (engine.launch.engine_env)."""
    from engine.launch import engine_env as launch_env

    return launch_env()


def start_run(cfg: Any, template_text: str | None = None, base: Path | None = None) -> Path:
    """Create a run directory for `cfg` (an engine.config.Config; relative paths taken against
    `base`, the config file's folder) and start the engine on it, detached. Returns the run
    directory."""
    from engine.launch import prepare_run, spawn_engine
    from tui.follower import remember_process

    run_dir = prepare_run(cfg, template_text, base)
    proc = spawn_engine(run_dir, num_processes=int(getattr(cfg.train, "num_processes", 1) or 1))
    remember_process(run_dir, proc)  # so the Train screen sees an engine that dies at start
    return run_dir


def resume_run(run_dir: str | Path) -> subprocess.Popen:
    """Start the engine again on a stopped or crashed run, from its latest checkpoint."""
    from engine.launch import spawn_engine

    run_dir = Path(run_dir)
    if is_locked(run_dir):
        raise RuntimeError(f"{run_dir.name} is live already")
    try:
        from engine.config import load_config

        num_processes = int(load_config(run_dir / "config.yaml").train.num_processes or 1)
    except Exception:  # an unreadable config: the engine itself will report it
        num_processes = int(read_run_json(run_dir).get("num_processes") or 1)
    from tui.follower import remember_process

    proc = spawn_engine(run_dir, num_processes=num_processes, resume="latest")
    remember_process(run_dir, proc)
    return proc


def stop_run(run_dir: str | Path) -> bool:
    """SIGTERM to a live run's engine (it finishes the step, checkpoints, emits finished).
    False: not live. Raises StopRefusedError (one line) where it could reach another process."""
    return _stop_run(run_dir, once=True)  # two apps on one run: one SIGTERM, one checkpoint


def delete_run(run_dir: str | Path) -> None:
    """Remove a run directory. Refuses a live run."""
    run_dir = Path(run_dir)
    if is_locked(run_dir):
        raise RuntimeError(f"{run_dir.name} is live: stop it before deleting it")
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run")
    shutil.rmtree(run_dir)


GENERATE_LOG = "generate.log"


def start_generate(args: list[str], output_dir: str | Path) -> subprocess.Popen:
    """Run `python -m engine generate ARGS --output-dir DIR` as a child of the app.

    stdin from /dev/null, stdout+stderr into DIR/generate.log; it writes DIR/events.jsonl
    (`sample` per image, then `finished`), which the caller follows with an EventTail.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "engine", "generate", *args, "--output-dir", str(output_dir)]
    with open(output_dir / GENERATE_LOG, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=engine_env(),
            close_fds=True,
        )


def log_tail(path: str | Path, max_lines: int = 20) -> list[str]:
    """The last lines of a log file (for an error message when a child died)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 16384))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-max_lines:]
