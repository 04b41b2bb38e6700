"""The Runs screen with many runs: cells that grow widen their column, an idle refresh rewrites
nothing, runs are read again only when their files change, and tails are read in small steps."""

from __future__ import annotations

import io
import math
from pathlib import Path

from conftest_tui import (
    BASE_TIME,
    make_app,
    make_fake_run,
    settle,
    tui_env_fixture,  # noqa: F401 - the fixture `tui_env`
    wait_for,
)

import engine.runs
import tui.runs_index
from engine.events import EVENTS_FILE, EventWriter
from engine.runs import RunLock, run_info, write_run_json
from tui.runs_index import SWEEP, RunsIndex
from tui.screens.runs import RunsScreen, RunsTable


def _append_steps(run_dir: Path, steps: range, finished: str | None = None) -> None:
    with EventWriter(run_dir / EVENTS_FILE) as w:
        for step in steps:
            w.emit("step", step=step, loss=0.3 + 0.1 * math.sin(step), lr=1e-4)
        if finished:
            w.emit("finished", status=finished, step=steps[-1], outputs={}, duration_s=9.0)


async def _open_runs(pilot, rows: int) -> tuple[RunsScreen, RunsTable]:
    # The app's start-up lookup of live runs attaches to one (the Train screen) when it answers:
    # let it answer first, or it may switch away from Runs after the test got there.
    await settle(pilot)
    await pilot.pause()
    await pilot.press("5")
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the Runs screen")
    table = app.screen.query_one(RunsTable)
    await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} rows")
    await settle(pilot)
    return app.screen, table


def _shown_row(table: RunsTable, row: int) -> str:
    """The row as drawn on the screen (after the header line)."""
    return table.render_line(1 + row).text


async def test_a_cell_that_grows_on_refresh_widens_its_column(tui_env):
    run_dir = make_fake_run(tui_env / "runs", "20250102-030405-grow", steps=9, total_steps=400,
                            status="running")  # fmt: skip
    lock = RunLock(run_dir).acquire()
    try:
        app = make_app(None, start_mode="runs")
        async with app.run_test(size=(120, 40)) as pilot:
            screen, table = await _open_runs(pilot, 1)
            assert " live " in _shown_row(table, 0) and "9/400" in _shown_row(table, 0)
            _append_steps(run_dir, range(10, 401), finished="completed")
            write_run_json(run_dir, {**engine.runs.read_run_json(run_dir), "status": "completed"})
            lock.release()
            screen.refresh_runs()
            await wait_for(pilot, lambda: "completed" in str(table.get_row_at(0)[2]), what="done")
            await pilot.pause()
            shown = _shown_row(table, 0)
            assert " completed " in shown and " 400/400 " in shown, shown
    finally:
        lock.release()


async def test_an_idle_refresh_rewrites_no_cell_and_a_change_only_its_cells(tui_env, monkeypatch):
    runs = tui_env / "runs"
    dirs = [make_fake_run(runs, f"20250102-{i:02d}0405-run", started=BASE_TIME + 60 * i)
            for i in range(20)]  # fmt: skip
    writes: list[tuple[str, str]] = []
    real_update_cell = RunsTable.update_cell

    def update_cell(self, row_key, column_key, value, *, update_width=False):
        writes.append((str(row_key), str(column_key)))
        return real_update_cell(self, row_key, column_key, value, update_width=update_width)

    app = make_app(None, start_mode="runs")
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await _open_runs(pilot, 20)
        head = screen.query_one("#runs-head")
        head_updates: list[object] = []
        monkeypatch.setattr(RunsTable, "update_cell", update_cell)
        monkeypatch.setattr(head, "update", lambda *a, **k: head_updates.append(a))
        monkeypatch.setattr(screen, "refresh_bindings", lambda: head_updates.append("bindings"))
        for _ in range(2):
            screen.refresh_runs()
            await settle(pilot)
            await pilot.pause()
        assert writes == [] and head_updates == []
        _append_steps(dirs[3], range(21, 23))  # one run moves on: its step and loss change
        for _ in range(SWEEP):  # a quiet run is looked at once in SWEEP listings
            screen.refresh_runs()
            await settle(pilot)
            await pilot.pause()
        assert writes, "the changed cells"
        assert sorted(c for _, c in writes) == ["Loss", "Step"]
        assert {r for r, _ in writes} == {str(dirs[3])}
        assert head_updates == []


def test_the_index_reads_a_run_again_only_when_its_files_change(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    dirs = [make_fake_run(runs, f"run-{i:02d}", started=BASE_TIME + i) for i in range(20)]
    index = RunsIndex()
    assert len(index.list(runs)) == 20 and index.reads == 20
    locks: list[str] = []
    monkeypatch.setattr(tui.runs_index, "is_locked", lambda p: locks.append(p) or False)
    stats = index.stats
    for _ in range(SWEEP):
        index.list(runs)
    assert index.reads == 20  # nothing changed: nothing read
    assert index.stats - stats == 20  # each quiet run's files looked at once in SWEEP listings
    assert locks == []  # finished runs: no lock to look at
    _append_steps(dirs[5], range(21, 25))
    for _ in range(SWEEP):
        listed = {r.run_id: r for r in index.list(runs)}
    assert index.reads == 21 and listed["run-05"].step == 24
    write_run_json(dirs[7], {**engine.runs.read_run_json(dirs[7]), "status": "running"})
    for _ in range(SWEEP):
        listed = {r.run_id: r for r in index.list(runs)}
    assert index.reads == 22 and listed["run-07"].state == "crashed"
    locks.clear()
    index.list(runs)
    assert locks == [str(dirs[7])]  # a run.json that says running: its lock, every listing
    make_fake_run(runs, "run-new", started=BASE_TIME + 99)  # a new run: seen at once
    assert index.list(runs)[0].run_id == "run-new" and index.reads == 23


def test_run_info_reads_the_end_of_a_long_events_file_in_small_steps(tmp_path, monkeypatch):
    run_dir = make_fake_run(tmp_path, "long", steps=20)
    with open(run_dir / EVENTS_FILE, "a", encoding="utf-8") as fh:
        fh.write(('{"v":1,"t":1.0,"type":"log","level":"info","message":"x"}\n') * 60_000)
    _append_steps(run_dir, range(21, 31))
    read = [0]

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            read[0] += len(data)
            return data

    monkeypatch.setattr(engine.runs, "open", lambda p, mode="rb": Counting(p, "r"), raising=False)
    info = run_info(run_dir)
    assert info.step == 30 and info.last_loss is not None
    assert 0 < read[0] <= 32 << 10, read[0]  # not 256 KiB of a 3.5 MB file


def test_a_quiet_listing_sorts_and_builds_nothing(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    dirs = [make_fake_run(runs, f"run-{i:02d}", started=BASE_TIME + i) for i in range(12)]
    index = RunsIndex()
    first = index.entries(runs)
    version = index.version
    for _ in range(2 * SWEEP):  # every quiet run looked at twice meanwhile
        assert index.entries(runs) is first  # the same listing: not sorted or built again
    assert index.version == version
    _append_steps(dirs[4], range(21, 23))
    for _ in range(SWEEP):
        listed = index.entries(runs)
    assert index.version == version + 1 and listed is not first
    assert next(e for e in listed if e.info.run_id == "run-04").info.step == 22
