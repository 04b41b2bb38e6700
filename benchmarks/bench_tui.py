"""The app: time to the first frame, CPU while following a run, the event rate it keeps up with.

Each figure comes from the real app (tui.app.DreamBoothApp, Textual's headless driver, 120x40)
in a child process, so interpreter start-up and imports count:

- first frame: from spawning `python` to Textual's `Ready` event (posted once the first frame
  has been composed), opening sample_configs/demo.yaml as `dreambooth-tui --config` does;
  median of --launches.
- CPU: a fake live run (this process holds its lock) whose events.jsonl gets `step` events at
  --rate events/s from a writer thread, for --seconds; the app follows it on the Train screen.
  The app process's CPU time (utime + stime of /proc/PID/stat, all threads) over that window,
  as a share of one core.
- highest rate: the same at 1000, 2000, 4000, ... events/s for --probe-seconds each; the app
  samples the step its Train screen shows (the "step N/M" label) every 50 ms, and a rate passes
  when that step is never more than 1 s behind the step the writer had written (and the label
  reaches the last step within 1 s of the end). The highest passing rate is reported.

- at scale (benchmarks/tui_scale.py, issue 15): the plots' redraw at 100,000 steps, the idle
  Runs screen's CPU over 20/200/1,000 runs, and re-attaching to a 100,000-event run (time and
  peak memory).

    python -m benchmarks.bench_tui --json out.json
    python -m benchmarks.bench_tui --skip first_frame,cpu,rate --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine, median, write_json

DEMO = ROOT / "sample_configs" / "demo.yaml"
SIZE = (120, 40)


# ------------------------------------------------------------------------------ the child
def child_first_frame(config: str, out: str) -> None:
    """Open the app on `config` and write the wall time of its first frame to `out`."""
    from tui.app import DreamBoothApp
    from tui.state import build_state

    class Probe(DreamBoothApp):
        CSS_PATH = str(ROOT / "tui" / "app.tcss")  # resolved beside the subclass otherwise

        def on_ready(self) -> None:
            Path(out).write_text(json.dumps({"ready": time.time()}))
            self.exit()

    Probe(build_state(Path(config), images="halfcell")).run(headless=True, size=SIZE)


def child_follow(run_dir: str, out: str, sample_s: float, timeout: float) -> None:
    """Follow `run_dir` on the Train screen until its `finished` event is shown; write the
    displayed step every `sample_s` seconds (wall time, step) to `out`."""
    import re

    from textual.widgets import Static

    from tui.app import DreamBoothApp
    from tui.screens.train import TrainScreen
    from tui.state import AppState

    run = Path(run_dir)
    samples: list[tuple[float, int]] = []
    started = time.time()
    pattern = re.compile(r"step (\d+)")

    class Follow(DreamBoothApp):
        CSS_PATH = str(ROOT / "tui" / "app.tcss")

        def on_ready(self) -> None:
            self.attach_run(run, notify=False)
            self.set_interval(sample_s, self.sample)
            Path(out + ".ready").write_text(str(time.time()))

        def sample(self) -> None:
            screen = self.screen
            if not isinstance(screen, TrainScreen) or screen.model is None:
                return
            label = str(screen.query_one("#step-label", Static).render())
            found = pattern.search(label)
            if found:
                samples.append((time.time(), int(found.group(1))))
            model = screen.model
            done = model.status in ("completed", "stopped", "failed")
            if (done and found and int(found.group(1)) >= (model.total_steps or 0)) or (
                time.time() - started > timeout
            ):
                self.exit()

    state = AppState(output_dir=run.parent, run_dir=run, image_protocol="halfcell")
    Follow(state).run(headless=True, size=SIZE)
    Path(out).write_text(json.dumps(samples))


def _spawn(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXTUAL_ANIMATIONS": "none"}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_tui", "--child", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


# ------------------------------------------------------------------------------ the parent
def first_frame(launches: int, tmp: Path) -> dict[str, Any]:
    times = []
    for i in range(launches):
        out = tmp / f"ready-{i}.json"
        t0 = time.time()
        proc = _spawn("first-frame", str(DEMO), str(out))
        _, err = proc.communicate(timeout=60)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"the app did not start: {err.decode(errors='replace')[-2000:]}")
        times.append(json.loads(out.read_text())["ready"] - t0)
    return {"median_s": median(times), "all_s": [round(t, 3) for t in times]}


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fake_run(root: Path, name: str, total: int) -> Path:
    from engine.events import EVENTS_FILE, EventWriter

    run = root / name
    run.mkdir(parents=True)
    with EventWriter(run / EVENTS_FILE) as w:
        w.emit(
            "run_started",
            run_id=run.name,
            config={},
            total_steps=total,
            device={"kind": "cpu", "name": "cpu", "total_mem": 0},
            resumed_from_step=None,
            world_size=1,
        )
        w.emit("phase", name="training", detail=f"steps 1-{total}")
    return run


def _write_steps(run: Path, rate: float, total: int, written: list[tuple[float, int]]) -> None:
    """`total` step events at `rate` per second (in bursts of 10 ms), then `finished`."""
    from engine.events import EVENTS_FILE, EventWriter

    writer = EventWriter(run / EVENTS_FILE)
    t0 = time.time()
    step = 0
    while step < total:
        due = min(total, int((time.time() - t0) * rate) + 1)
        while step < due:
            step += 1
            writer.emit(
                "step",
                step=step,
                loss=1.0 / step,
                lr=1e-4,
                grad_norm=0.5,
                it_s=rate,
                samples_s=rate,
                eta_s=(total - step) / rate,
                mem={"allocated": 1 << 30, "reserved": 1 << 30, "peak": 1 << 30},
            )
        written.append((time.time(), step))
        time.sleep(min(0.01, 1.0 / rate))
    writer.emit("finished", status="completed", step=total, outputs={}, duration_s=0.0)
    writer.close()


def follow(rate: float, seconds: float, tmp: Path, sample_s: float) -> dict[str, Any]:
    """Run the app on a fake live run written at `rate` events/s for `seconds`."""
    from engine.runs import RunLock

    total = max(1, int(rate * seconds))
    run = _fake_run(tmp / f"rate-{int(rate)}", "20250101-000000-bench", total)
    out = tmp / f"follow-{int(rate)}.json"
    written: list[tuple[float, int]] = []
    with RunLock(run):  # the run looks live
        proc = _spawn("follow", str(run), str(out), str(sample_s), str(seconds + 60))
        ready = Path(str(out) + ".ready")
        deadline = time.time() + 60
        while not ready.exists():
            if proc.poll() is not None or time.time() > deadline:
                err = proc.stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"the app did not start: {err}")
            time.sleep(0.02)
        time.sleep(1.0)  # let the start-up settle
        cpu0, t0 = _proc_cpu_s(proc.pid), time.time()
        _write_steps(run, rate, total, written)
        cpu1, t1 = _proc_cpu_s(proc.pid), time.time()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shown = json.loads(out.read_text()) if out.exists() else []
    return {
        "rate": rate,
        "seconds": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        "cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "max_lag_s": _max_lag(written, shown, total),
        "events": total,
    }


def _max_lag(written: list[tuple[float, int]], shown: list[list[float]], total: int) -> float:
    """The longest time the shown step stayed behind a step the writer had already written."""
    if not shown:
        return float("inf")
    lag = 0.0
    wi = 0
    for t, step in shown:
        # the first write time at which the writer had passed the shown step
        while wi < len(written) and written[wi][1] <= step:
            wi += 1
        if wi < len(written) and written[wi][0] < t:
            lag = max(lag, t - written[wi][0])
    if shown[-1][1] < total:
        return float("inf")
    end = written[-1][0]
    reached = next((t for t, s in shown if s >= total), float("inf"))
    return max(lag, reached - end)


def highest_rate(tmp: Path, seconds: float, start: int = 1000, limit: int = 64000) -> dict:
    probes = []
    best = 0
    rate = start
    while rate <= limit:
        probe = follow(rate, seconds, tmp, 0.05)
        probes.append(probe)
        if probe["max_lag_s"] > 1.0:
            break
        best = rate
        rate *= 2
    return {"highest_rate": best, "probes": probes}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_tui", description=__doc__.split("\n\n")[0])
    p.add_argument("--launches", type=int, default=7)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--probe-seconds", type=float, default=5.0)
    p.add_argument(
        "--skip",
        default="",
        help="comma list of first_frame,cpu,rate,redraw,runs_idle,reattach to skip",
    )
    p.add_argument("--runs", default="20,200,1000", help="run counts for the idle Runs screen")
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--reattach-steps", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3, help="re-attach repeats")
    p.add_argument("--json", default=None)
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        mode, *rest = args.child
        if mode == "first-frame":
            child_first_frame(*rest)
        else:
            child_follow(rest[0], rest[1], float(rest[2]), float(rest[3]))
        return 0
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    result: dict[str, Any] = {
        "device": machine(),
        "code": os.environ.get("BENCH_TUI_CODE") or str(ROOT),
    }
    if "first_frame" not in skip:
        result["first_frame"] = first_frame(args.launches, tmp)
        print(f"first frame: {result['first_frame']['median_s'] * 1000:.0f} ms (median of "
              f"{args.launches}: {result['first_frame']['all_s']})", flush=True)  # fmt: skip
    if "cpu" not in skip:
        result["follow"] = follow(args.rate, args.seconds, tmp, 0.25)
        f = result["follow"]
        print(f"following {args.rate:g} events/s for {f['seconds']:.0f}s: "
              f"{f['cpu_share'] * 100:.2f}% of one core (max lag {f['max_lag_s']:.2f}s)",
              flush=True)  # fmt: skip
    if "rate" not in skip:
        result["rate"] = highest_rate(tmp, args.probe_seconds)
        for p in result["rate"]["probes"]:
            print(f"  {p['rate']:>6g} events/s: max lag {p['max_lag_s']:.2f}s, "
                  f"{p['cpu_share'] * 100:.0f}% of a core", flush=True)  # fmt: skip
        print(f"highest rate followed within 1 s: {result['rate']['highest_rate']} events/s")
    scale(args, skip, tmp, result)
    result["device"]["load_avg_end"] = machine()["load_avg"]
    shutil.rmtree(tmp, ignore_errors=True)
    write_json(args.json, result)
    return 0


def scale(args: argparse.Namespace, skip: set[str], tmp: Path, result: dict[str, Any]) -> None:
    from benchmarks import tui_scale

    if "redraw" not in skip:
        r = result["redraw"] = tui_scale.redraw(args.reattach_steps)
        print(f"plot redraw at {r['steps']} steps ({r['size'][0]}x{r['size'][1]} cells): loss "
              f"{r['loss']['median_ms']:.2f} ms (max {r['loss']['max_ms']:.2f}), lr "
              f"{r['lr']['median_ms']:.2f} ms (max {r['lr']['max_ms']:.2f})", flush=True)  # fmt: skip
    if "runs_idle" not in skip:
        counts = [int(c) for c in args.runs.split(",") if c]
        result["runs_idle"] = tui_scale.runs_idle(counts, args.idle_seconds, tmp)
        for r in result["runs_idle"]:
            print(f"idle Runs screen, {r['runs']} runs: {r['cpu_share'] * 100:.2f}% of a core "
                  f"over {r['seconds']:.0f} s (listed in {r['listed_s']:.1f} s)", flush=True)  # fmt: skip
    if "reattach" not in skip:
        r = result["reattach"] = tui_scale.reattach(args.reattach_steps, args.repeats, tmp)
        print(f"re-attach to {r['steps']} steps ({r['events_bytes'] / 2**20:.0f} MiB): "
              f"{r['median_s']:.2f} s median of {r['seconds']} (app CPU {r['cpu_s']} s); peak RSS {r['peak_rss_mib']} "
              f"MiB (+{r['peak_increase_mib']} over the app before the attach)", flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
