"""The Runs screen's listing, cheap to repeat every 2 s with hundreds of runs.

`engine.runs.list_runs` reads every run's run.json and the end of its events.jsonl. Here each
run is read again only when one of those two files changed (size, mtime or inode), and the
engine lock is checked only for runs whose run.json says `running` (or has none): an engine
writes `running` into run.json right after taking the lock, so a resumed run shows as live
one refresh later at most. A quiet folder of 1,000 old runs costs a directory scan and two
stat calls per run.

`table_row` is what the table shows for a run, as plain values: the screen compares them
with what it drew and touches only the cells that changed.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from pathlib import Path

from engine.events import EVENTS_FILE
from engine.progress import fmt_duration
from engine.runs import RUN_JSON, RUNNING, RunInfo, is_locked, run_info

__all__ = ["COLUMNS", "RunsIndex", "table_row"]

COLUMNS = ("", "Run", "Status", "Step", "Loss", "Started (UTC)", "Duration")

_Stamp = tuple[int, int, int] | None  # (size, mtime_ns, inode), None when absent


def _stamp(path: str) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


class RunsIndex:
    """list_runs, newest first, with each run cached by its files' stamps."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[_Stamp, _Stamp], RunInfo]] = {}
        self.reads = 0  # runs read from disk (not from the cache), ever

    def list(self, output_dir: str | Path) -> list[RunInfo]:
        try:
            entries = [e for e in os.scandir(output_dir) if e.is_dir()]
        except OSError:
            return []
        runs: list[RunInfo] = []
        seen: set[str] = set()
        for entry in entries:
            stamps = (_stamp(os.path.join(entry.path, RUN_JSON)),
                      _stamp(os.path.join(entry.path, EVENTS_FILE)))  # fmt: skip
            if stamps == (None, None):
                continue  # not a run directory
            seen.add(entry.path)
            cached = self._cache.get(entry.path)
            if cached is not None and cached[0] == stamps:
                info = cached[1]
                live = is_locked(entry.path) if info.status in (RUNNING, "unknown") else False
                if live != info.live:
                    info = dataclasses.replace(info, live=live)
            else:
                info = run_info(Path(entry.path))
                self.reads += 1
                self._cache[entry.path] = (stamps, info)
            runs.append(info)
        for gone in set(self._cache) - seen:
            del self._cache[gone]
        runs.sort(key=lambda r: (r.started or 0.0, r.run_id), reverse=True)
        return runs


def _fmt_loss(loss: float | None) -> str:
    return "–" if loss is None else f"{loss:.4f}"


def fmt_started(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M")


def fmt_step(info: RunInfo) -> str:
    total = info.total_steps
    return f"{info.step}/{total}" if total else str(info.step)


def table_row(info: RunInfo) -> tuple[str, ...]:
    """The table's cells for a run, after the mark column: id, state, step, loss, start,
    duration."""
    return (
        info.run_id,
        info.state,
        fmt_step(info),
        _fmt_loss(info.last_loss),
        fmt_started(info.started),
        fmt_duration(info.duration),
    )
