"""The app's first frame on two checkouts, their launches interleaved so both see the same load.

Each round runs `python -m benchmarks.bench_tui --skip <all but first_frame> --launches K` in
each tree (its own code, PYTHONPATH set to it), the order alternating round by round (ABBA...),
and records the load average before each. Usage:

    git worktree add /tmp/before 97927e5
    python -m benchmarks.ab_first_frame --before /tmp/before --rounds 8 --launches 2 \
        --json benchmarks/results/cpu-tui-first-frame-reshape.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import quantiles
from typing import Any

from benchmarks.common import load_average, machine, median, write_json

ROOT = Path(__file__).resolve().parent.parent
SKIP = "cpu,rate,redraw,runs_idle,reattach"


def _commit(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def launch(tree: Path, launches: int) -> list[float]:
    """First-frame times (s) of `launches` app starts on `tree`."""
    with tempfile.TemporaryDirectory(prefix="ab-first-frame-") as tmp:
        out = Path(tmp) / "r.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        cmd = [sys.executable, "-m", "benchmarks.bench_tui", "--skip", SKIP]
        cmd += ["--launches", str(launches), "--json", str(out)]
        subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        return list(json.loads(out.read_text())["first_frame"]["all_s"])


def spread(times: list[float]) -> dict[str, Any]:
    q = quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {
        "n": len(times),
        "median_s": round(median(times), 3),
        "q1_s": round(q[0], 3),
        "q3_s": round(q[2], 3),
        "min_s": min(times),
        "max_s": max(times),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=True, help="the checkout to compare with")
    p.add_argument("--after", type=Path, default=ROOT, help="default: this checkout")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--launches", type=int, default=2, help="app starts per tree per round")
    p.add_argument("--json")
    args = p.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: dict[str, list[float]] = {"before": [], "after": []}
    rounds = []
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for name in order:
            load = load_average()
            got = launch(trees[name], args.launches)
            times[name] += got
            rounds.append({"round": r, "tree": name, "load_avg_at_start": load, "all_s": got})
            print(f"round {r} {name:6} load {load}: {got}", flush=True)
    result = {
        "command": "python -m benchmarks.ab_first_frame " + " ".join(argv or sys.argv[1:]),
        "device": machine(),
        "trees": {name: f"{tree} ({_commit(tree)})" for name, tree in trees.items()},
        "before": spread(times["before"]),
        "after": spread(times["after"]),
        "rounds": rounds,
    }
    for name in ("before", "after"):
        s = result[name]
        print(f"{name}: median {s['median_s']:.3f} s (IQR {s['q1_s']:.3f}-{s['q3_s']:.3f}, "
              f"min {s['min_s']:.3f}, max {s['max_s']:.3f}, n {s['n']})")  # fmt: skip
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
