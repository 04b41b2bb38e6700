"""What the Generate screen shows of a request as it runs: the images its `sample` events name,
the status line and the error panel (from its events, then from how it ended)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text

from tui.screens.generate_follow import GenDone

__all__ = ["EventsRead", "done_status", "read_events"]


@dataclass
class EventsRead:
    """One batch of a request's events as the screen shows them."""

    images: list[tuple[Path, str]] = field(default_factory=list)  # (path, caption), in order
    status: Text | None = None  # the status line the batch ends on; None: unchanged
    error: str | None = None  # the last error event; None: unchanged
    warnings: list[str] = field(default_factory=list)  # warning/error log lines, to notify


def read_events(
    events: list[dict[str, Any]], out_dir: Path, made: int, expected: int
) -> EventsRead:
    """The images, status, error and warnings of `events`, `made` images already shown of
    `expected` (a phase shows only before the first image; relative paths are under out_dir)."""
    read = EventsRead()
    for event in events:
        kind = event.get("type")
        if kind == "sample":
            paths = event.get("paths") or []
            seed = event.get("seed")
            prompt = str(event.get("prompt") or "")
            for rel in paths if isinstance(paths, list) else [paths]:
                path = Path(rel) if Path(rel).is_absolute() else out_dir / rel
                caption = f"seed {seed} · {prompt}" if seed is not None else prompt
                read.images.append((path, caption))
            shown = made + len(read.images)
            read.status = Text(f"generating: {shown}/{expected} made", style="bold")
        elif kind == "phase" and made + len(read.images) == 0:
            phase = str(event.get("name") or "").replace("_", " ")
            detail = str(event.get("detail") or "")
            read.status = Text(f"{phase}: {detail}…" if detail else f"{phase}…")
        elif kind == "error":
            msg = f"{event.get('kind', 'error')}: {event.get('message', '')}"
            if event.get("hint"):
                msg += f"\n→ {event['hint']}"
            read.error = msg
        elif kind == "log" and str(event.get("level")) in ("warning", "error"):
            read.warnings.append(str(event.get("message", "")))
    return read


def done_status(
    message: GenDone, made: int, took: float, load_s: float | None
) -> tuple[Text, str | None]:
    """The status line for a request that ended, and the error to show (None: none to show):
    images made, time taken and load time (the screen adds the folder); cancelled; or failed
    with the log's last lines."""
    if message.status == "completed":
        text = Text(f"{made} image(s) in {took:.1f}s · ", style="bold")
        loaded = "model already loaded" if load_s is None else f"loaded in {load_s:.1f}s"
        text.append(f"{loaded} · ", style="bold")
        return text, None  # the screen adds the images' folder (its end kept at 80 columns)
    if message.status == "stopped":
        return Text("cancelled", style="yellow"), None
    tail = [line for line in message.log if line.strip()][-6:]
    error = "\n".join([message.error, *tail]).strip() if message.error or tail else None
    return Text(f"failed · {made} image(s) made", style="red"), error
