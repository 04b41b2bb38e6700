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

__all__ = ["COLUMNS", "RunsIndex", "fit_columns", "table_row"]

COLUMNS = ("", "Run", "Status", "Step", "Loss", "Started (UTC)", "Duration")

_Stamp = tuple[int, int, int] | None  # (size, mtime_ns, inode), None when absent


def _stamp(path: str) -> _Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


SWEEP = 5  # a quiet run's files are looked at every SWEEP listings (10 s on the Runs screen)


@dataclasses.dataclass
class _Entry:
    stamps: tuple[_Stamp, _Stamp]
    info: RunInfo
    row: tuple[str, ...]


class RunsIndex:
    """list_runs, newest first, with each run cached by its files' stamps.

    A listing stats the output folder (a run added or removed changes its mtime: then every run
    is looked at), the files of every run that is live or says `running`, and the files of one
    in SWEEP of the quiet ones (finished, stopped, failed), in turn: a quiet run that changes
    behind the app's back (resumed from another terminal) shows within SWEEP listings.
    """

    def __init__(self) -> None:
        self._cache: dict[str, _Entry] = {}
        self._folder: tuple[str, _Stamp] | None = None
        self._paths: list[str] = []
        self._turn = 0
        self._listed: list[_Entry] | None = None  # the last listing, sorted
        self.version = 0  # goes up when a listing differs from the one before
        self.reads = 0  # runs read from disk (not from the cache), ever
        self.stats = 0  # run folders whose files were stat'ed, ever

    def list(self, output_dir: str | Path) -> list[RunInfo]:
        """The runs (RunInfo), newest first."""
        return [entry.info for entry in self.entries(output_dir)]

    def rows(self, output_dir: str | Path) -> list[tuple[RunInfo, tuple[str, ...]]]:
        """(run, table_row(run)) per run, newest first; rows of quiet runs are cached too."""
        return [(entry.info, entry.row) for entry in self.entries(output_dir)]

    def entries(self, output_dir: str | Path) -> list[_Entry]:
        """The runs' entries, newest first. When no run's entry changed, the previous listing
        itself is returned (`version` unchanged): nothing is sorted or built again."""
        folder = (str(output_dir), _stamp(str(output_dir)))
        full = folder != self._folder
        if full:
            try:
                self._paths = [e.path for e in os.scandir(output_dir) if e.is_dir()]
            except OSError:
                self._paths = []
            self._folder = folder
        self._turn += 1
        changed = full or self._listed is None
        for n, path in enumerate(self._paths):
            entry = self._cache.get(path)
            quiet = entry is not None and not entry.info.live and entry.info.status not in (
                RUNNING, "unknown")  # fmt: skip
            if quiet and not full and (n + self._turn) % SWEEP:
                continue
            if self._look(path, entry) is not entry:
                changed = True
        if full:
            for gone in set(self._cache) - set(self._paths):
                del self._cache[gone]
        if changed or self._listed is None:
            out = [self._cache[p] for p in self._paths if p in self._cache]
            out.sort(key=lambda e: (e.info.started or 0.0, e.info.run_id), reverse=True)
            if out != self._listed:
                self.version += 1
            self._listed = out
        return self._listed

    def _look(self, path: str, entry: _Entry | None) -> _Entry | None:
        self.stats += 1
        stamps = (_stamp(os.path.join(path, RUN_JSON)), _stamp(os.path.join(path, EVENTS_FILE)))
        if stamps == (None, None):
            self._cache.pop(path, None)
            return None  # not a run directory
        if entry is not None and entry.stamps == stamps:
            info = entry.info
            live = is_locked(path) if info.status in (RUNNING, "unknown") else False
            if live != info.live:
                info = dataclasses.replace(info, live=live)
            if info is entry.info and not live:
                return entry
        else:
            info = run_info(Path(path))
            self.reads += 1
        entry = _Entry(stamps, info, table_row(info))
        self._cache[path] = entry
        return entry


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


# Columns given up first when the table is too narrow (the run id, its state and step stay).
DROP_ORDER = ("Started (UTC)", "Duration", "Loss")


def fit_columns(rows: list[tuple[str, ...]], width: int, padding: int = 1) -> tuple[str, ...]:
    """The columns (of COLUMNS) that fit `width` cells with these rows: the less important
    ones (DROP_ORDER) are left out, in that order, until the others fit whole."""

    def cell_width(name: str) -> int:
        i = COLUMNS.index(name)
        cells = [len(name)] + [len(row[i - 1]) for row in rows] if i else [1]
        return max(cells) + 2 * padding

    shown = list(COLUMNS)
    for name in DROP_ORDER:
        if sum(cell_width(c) for c in shown) <= width:
            break
        shown.remove(name)
    return tuple(shown)
