"""The headless CLI's view of a run: its event stream rendered with rich (torch-free)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from engine.events import EVENTS_FILE, EventTail


def fmt_bytes(n: float | None) -> str:
    """1288490188 -> '1.20 GiB'; 5242880 -> '5.0 MiB'; None -> '–' (the CLI and the app)."""
    if n is None or not isinstance(n, (int, float)) or not math.isfinite(n) or n < 0:
        return "–"
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{int(n)} B"


def fmt_duration(seconds: float | None) -> str:
    """A duration as the app and the CLI show it: 73 -> '1m 13s'; 3700 -> '1h 01m'; None -> '–'."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def event_line(e: dict[str, Any], run_dir: Path | None = None) -> str | None:
    """What a phase, sample, checkpoint or finished event says, in one line, as the CLI prints
    it and the app's log shows it (paths under `run_dir`; relative to the run without one).
    None for the other events (steps draw a bar or a plot; logs and errors say themselves)."""
    base = run_dir or Path()
    kind = e.get("type")
    if kind == "phase":
        return f"· {e.get('name')} {e.get('detail') or ''}".rstrip()
    if kind == "sample":
        paths = e.get("paths") or []
        if not paths or not isinstance(paths, list):
            return None
        where = base / Path(str(paths[0])).parent
        return f"samples at step {e.get('step')}: {len(paths)} image(s) for {e.get('prompt')!r} in {where}"
    if kind == "checkpoint":
        return f"checkpoint {base / str(e.get('path', ''))}"
    if kind == "finished":
        line = f"{e.get('status')} at step {e.get('step')} in {fmt_duration(e.get('duration_s'))}"
        final = (e.get("outputs") or {}).get("final")
        return line + (f"; model: {base / str(final)}" if final else "")
    return None


class ProgressRenderer:
    """Follows RUN_DIR/events.jsonl; prints phases, logs, samples, errors; a live bar for steps."""

    def __init__(self, run_dir: Path, quiet: bool = False, console: Console | None = None) -> None:
        self.run_dir = run_dir
        self.tail = EventTail(run_dir / EVENTS_FILE)
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.finished: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self.progress = Progress(
            TextColumn("[bold]step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
        )
        self.task = None

    def __enter__(self) -> ProgressRenderer:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def say(self, text: str | Text, style: str = "") -> None:
        if not self.quiet:
            self.progress.console.print(text if isinstance(text, Text) else Text(text, style=style))

    def update(self) -> None:
        for event in self.tail.poll():
            self.handle(event)

    def handle(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "run_started":
            total = int(e.get("total_steps") or 0)
            dev = e.get("device") or {}
            resumed = e.get("resumed_from_step")
            self.say(
                f"run {e.get('run_id')} on {dev.get('name', '?')}"
                + (f", resumed from step {resumed}" if resumed else "")
                + f"  ({self.run_dir})",
                "bold",
            )
            if self.task is None:
                self.task = self.progress.add_task(
                    "train", total=total, stats="", completed=resumed or 0
                )
            else:
                self.progress.update(self.task, total=total, completed=resumed or 0)
        elif kind == "phase":
            self.say(event_line(e, self.run_dir) or "", "cyan")
        elif kind == "step" and self.task is not None:
            mem = (e.get("mem") or {}).get("peak")
            loss = e.get("loss")
            stats = f"loss {loss:.4f}" if isinstance(loss, (int, float)) else f"loss {loss}"
            stats += f"  {e.get('it_s') or 0:.2f} it/s  mem {fmt_bytes(mem)}"
            self.progress.update(self.task, completed=e.get("step", 0), stats=stats)
        elif kind in ("sample", "checkpoint"):
            line = event_line(e, self.run_dir)
            self.say(f"  {line}" if line else "", "green")
        elif kind == "log":
            level = e.get("level", "info")
            if level in ("warning", "error"):
                self.say(f"  {level}: {e.get('message')}", "yellow")
            elif not self.quiet:
                self.say(f"  {e.get('message')}", "dim")
        elif kind == "error":
            self.errors.append(e)
            self.progress.console.print(Text(f"error: {e.get('message')}", style="bold red"))
            if e.get("hint"):
                self.progress.console.print(Text(f"hint: {e.get('hint')}", style="red"))
        elif kind == "finished":
            self.finished = e
            if self.task is not None and not e.get("step"):
                self.progress.remove_task(self.task)  # nothing trained: no empty bar
                self.task = None
            status = e.get("status")
            line = event_line(e, self.run_dir) or ""
            style = {"completed": "bold green", "stopped": "bold yellow"}.get(status, "bold red")
            self.progress.console.print(Text(line, style=style))
            if status == "stopped":
                self.progress.console.print(
                    Text(
                        f"resume with: dreambooth-tui train {self.run_dir / 'config.yaml'} "
                        "--resume latest",
                        style="yellow",
                    )
                )
