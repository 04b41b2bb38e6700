"""The app at scale (issue 15), measured for benchmarks/bench_tui.py:

- redraw: one render of the Train screen's two plots (loss with its smoothed twin, learning
  rate) holding a 100,000-step run, at the size they have in a 120x40 terminal (77x12 cells);
  in this process, through LossPlot's own API (so the same code times older checkouts).
- runs idle: the app on its Runs screen over N runs (a real run's run.json and a 400 KiB
  events.jsonl each, hard links to one file so 1,000 runs fit any disk), doing nothing: the
  app process's CPU time over a window, as a share of one core.
- re-attach: the app opened on a finished 100,000-step run (step events as the engine writes
  them): the wall time from the attach to the Train screen showing `step 100000/100000` with
  the run completed and both plots drawn, the app process's CPU time over it (all threads: on
  a busy machine the wall time counts the other processes too), and its peak RSS (VmHWM),
  also less its peak before the attach.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

STEP_FIELDS = {"grad_norm": 0.5, "it_s": 3.1, "samples_s": 3.1, "eta_s": 100.0,
               "mem": {"allocated": 1 << 30, "reserved": 1 << 31, "peak": 1 << 31}}  # fmt: skip


def loss_at(step: int) -> float:
    return 0.2 + 0.5 * math.exp(-step / 20_000) + 0.05 * math.sin(step * 1.3)


# ------------------------------------------------------------------------------ redraw
def redraw(steps: int = 100_000, repeats: int = 30, size: tuple[int, int] = (77, 12)) -> dict:
    from tui.widgets.loss_plot import LossPlot, render_plot

    loss, lr = LossPlot(), LossPlot(smoothing=None)
    loss.set_series("loss", [(s, loss_at(s)) for s in range(1, steps + 1)], refresh=False)
    lr.set_series("lr", [(s, 1e-4 * min(1, s / 500)) for s in range(1, steps + 1)], refresh=False)
    out: dict[str, Any] = {"steps": steps, "size": list(size), "repeats": repeats}
    for name, plot in (("loss", loss), ("lr", lr)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            render_plot(plot.build_series(), *size)
            times.append(time.perf_counter() - t0)
        out[name] = _spread(times)
    return out


def _spread(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {"median_ms": round(statistics.median(ms), 3), "min_ms": round(ms[0], 3),
            "max_ms": round(ms[-1], 3)}  # fmt: skip


# ------------------------------------------------------------------------------ fake runs
def write_step_events(path: Path, run_id: str, steps: int, finished: bool = True) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        head = {"v": 1, "t": 1.0, "type": "run_started", "run_id": run_id, "config": {},
                "total_steps": steps, "device": {"kind": "cuda", "name": "H200"},
                "resumed_from_step": None, "world_size": 1}  # fmt: skip
        fh.write(json.dumps(head) + "\n")
        for s in range(1, steps + 1):
            event = {"v": 1, "t": 1.0 + s, "type": "step", "step": s, "loss": loss_at(s),
                     "lr": 1e-4, **STEP_FIELDS}  # fmt: skip
            fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        if finished:
            fh.write(json.dumps({"v": 1, "t": 2.0 + steps, "type": "finished",
                                 "status": "completed", "step": steps, "outputs": {},
                                 "duration_s": float(steps)}) + "\n")  # fmt: skip


def make_runs(root: Path, count: int, steps: int = 2000) -> Path:
    """`count` completed runs under root/runs; events.jsonl hard-linked to one shared file."""
    from engine.runs import write_run_json

    runs = root / "runs"
    runs.mkdir(parents=True)
    shared = root / "shared-events.jsonl"
    write_step_events(shared, "shared", steps)
    for i in range(count):
        run_dir = runs / f"20250101-{i:06d}-run"
        run_dir.mkdir()
        write_run_json(run_dir, {"run_id": run_dir.name, "status": "completed", "pid": None,
                                 "started": 1.7e9 + i * 60, "ended": 1.7e9 + i * 60 + 95,
                                 "total_steps": steps, "method": "lora"})  # fmt: skip
        os.link(shared, run_dir / "events.jsonl")
    return runs


# ------------------------------------------------------------------------------ children
def child_runs_idle(runs_dir: str, count: int, out: str) -> None:
    """The app on its Runs screen over `runs_dir`; writes `out` once all rows are shown, then
    idles until killed."""
    from benchmarks.common import ROOT
    from tui.app import DreamBoothApp
    from tui.state import AppState

    class Idle(DreamBoothApp):
        CSS_PATH = str(ROOT / "tui" / "app.tcss")

        def on_ready(self) -> None:
            self.probe = self.set_interval(0.1, self.check)

        def check(self) -> None:
            table = self.screen.query("#runs-table")
            if table and table.first().row_count == count:
                # The probe stops here: its DOM query 10 times a second cost more than the
                # app's own idle (it ran through the whole window before 2026-11-29 17:00).
                self.probe.stop()
                Path(out).write_text(str(time.time()))

    state = AppState(output_dir=Path(runs_dir), image_protocol="halfcell")
    Idle(state, start_mode="runs").run(headless=True, size=(120, 40))


def child_reattach(run_dir: str, steps: int, out: str) -> None:
    from textual.widgets import Static

    from benchmarks.common import ROOT
    from tui.app import DreamBoothApp
    from tui.screens.train import TrainScreen
    from tui.state import AppState

    run = Path(run_dir)
    result: dict[str, Any] = {}

    class Reattach(DreamBoothApp):
        CSS_PATH = str(ROOT / "tui" / "app.tcss")

        def on_ready(self) -> None:
            self.call_later(self.start)

        def start(self) -> None:
            result["hwm_before_mib"] = _vm("VmHWM")
            result["rss_before_mib"] = _vm("VmRSS")
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()
            self.attach_run(run, notify=False)
            self.set_interval(0.05, self.check)

        def check(self) -> None:
            screen = self.screen
            if not isinstance(screen, TrainScreen) or screen.model is None:
                return
            label = str(screen.query_one("#step-label", Static).render())
            plot = screen.query_one("#loss-plot")
            if (label == f"step {steps}/{steps}" and screen.model.status == "completed"
                    and plot.count("loss") == steps):  # fmt: skip
                result["seconds"] = time.perf_counter() - self.t0
                result["cpu_s"] = time.process_time() - self.cpu0  # all threads of the app
                result["hwm_mib"] = _vm("VmHWM")
                result["rss_after_mib"] = _vm("VmRSS")
                Path(out).write_text(json.dumps(result))
                self.exit()

    state = AppState(output_dir=run.parent, image_protocol="halfcell")
    Reattach(state, start_mode="train").run(headless=True, size=(120, 40))


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# ------------------------------------------------------------------------------ the parent
def spawn(mode: str, *args: str) -> Any:
    """This file as a child process; PYTHONPATH is $BENCH_TUI_CODE when set (an older checkout
    of the app, for a before/after), else this checkout."""
    import subprocess
    import sys

    from benchmarks.common import ROOT

    code = os.environ.get("BENCH_TUI_CODE") or str(ROOT)
    env = {**os.environ, "PYTHONPATH": code, "TEXTUAL_ANIMATIONS": "none"}
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), mode, *args],
        cwd=code, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for(path: Path, proc: Any, timeout: float) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            err = proc.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the app did not get there: {err}")
        time.sleep(0.05)


def runs_idle(counts: list[int], seconds: float, tmp: Path, settle_s: float = 5.0) -> list:
    from benchmarks.bench_tui import _proc_cpu_s

    results = []
    for count in counts:
        runs = make_runs(tmp / f"runs-{count}", count)
        ready = tmp / f"idle-{count}.ready"
        started = time.time()
        proc = spawn("runs-idle", str(runs), str(count), str(ready))
        try:
            _wait_for(ready, proc, 300)
            shown_s = float(ready.read_text())
            time.sleep(settle_s)  # the first refreshes after the listing
            cpu0, t0 = _proc_cpu_s(proc.pid), time.time()
            time.sleep(seconds)
            cpu1, t1 = _proc_cpu_s(proc.pid), time.time()
        finally:
            proc.kill()
            proc.wait()
        results.append({"runs": count, "seconds": round(t1 - t0, 2), "cpu_s": round(cpu1 - cpu0, 3),
                        "cpu_share": round((cpu1 - cpu0) / (t1 - t0), 5),
                        "listed_s": round(shown_s - started, 2)})  # fmt: skip
    return results


def reattach(steps: int, repeats: int, tmp: Path) -> dict:
    run = tmp / "reattach" / "runs" / "20250101-000000-long"
    run.mkdir(parents=True)
    write_step_events(run / "events.jsonl", run.name, steps)
    tries = []
    for i in range(repeats):
        out = tmp / f"reattach-{i}.json"
        proc = spawn("reattach", str(run), str(steps), str(out))
        _, err = proc.communicate(timeout=300)
        if not out.exists():
            raise RuntimeError(f"re-attach did not finish: {err.decode(errors='replace')[-2000:]}")
        tries.append(json.loads(out.read_text()))
    return {"steps": steps, "events_bytes": (run / "events.jsonl").stat().st_size,
            "seconds": [round(t["seconds"], 3) for t in tries],
            "median_s": round(statistics.median(t["seconds"] for t in tries), 3),
            "cpu_s": [round(t["cpu_s"], 3) for t in tries],
            "peak_rss_mib": [t["hwm_mib"] for t in tries],
            "peak_before_attach_mib": [t["hwm_before_mib"] for t in tries],
            "peak_increase_mib": [round(t["hwm_mib"] - t["hwm_before_mib"], 1) for t in tries]}  # fmt: skip


if __name__ == "__main__":
    import sys

    mode, *rest = sys.argv[1:]
    if mode == "runs-idle":
        child_runs_idle(rest[0], int(rest[1]), rest[2])
    elif mode == "reattach":
        child_reattach(rest[0], int(rest[1]), rest[2])
    elif mode == "redraw":
        print(json.dumps(redraw(int(rest[0]) if rest else 100_000)))
