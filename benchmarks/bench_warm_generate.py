"""The warm Generate: a request's latency from the app's side, cold process against warm worker.

Each round times, in alternating order (ABBA over rounds):
  cold    `python -m engine generate ...` run to its exit (what the Generate screen did before:
          a process per request, the pipeline loaded each time);
  warm    one new `generate-worker` (tui/generate_worker.py, as the screen starts it): the first
          request (start, imports, load, images) and then a second prompt with the same model
          (no load: the worker says `loaded` only for the first).
Latency is submit -> `done` (the images, sidecars, grid and events.jsonl all written).

    python -m benchmarks.bench_warm_generate --rounds 3 --json benchmarks/results/cpu-generate-warm.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, median, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_warm_generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="builtin:tiny", help="hub id, folder or builtin:tiny")
    p.add_argument("--images", type=int, default=1, help="images per request")
    p.add_argument("--steps", type=int, default=25, help="inference steps")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def request_args(args: argparse.Namespace, prompt: str, out: Path) -> list[str]:
    return [
        "--model",
        args.model,
        "--prompt",
        prompt,
        "--num-images",
        str(args.images),
        "--num-inference-steps",
        str(args.steps),
        "--output-dir",
        str(out),
    ]


def cold(args: argparse.Namespace, out: Path) -> float:
    from tui.engine_client import engine_env

    cmd = [sys.executable, "-m", "engine", "generate", *request_args(args, "a cold prompt", out)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, capture_output=True, env=engine_env())
    return time.perf_counter() - start


def ask(worker: Any, argv: list[str]) -> tuple[float, list[str]]:
    """Seconds from submit to `done`, and the worker's message types for the request."""
    start = time.perf_counter()
    request_id = worker.submit(argv)
    seen: list[str] = []
    while True:
        message = worker.next_message(600)
        if message is None:
            raise RuntimeError("the worker did not answer in 10 minutes")
        if message.get("id") != request_id:
            continue
        seen.append(message["type"])
        if message["type"] == "exit" or (
            message["type"] == "done" and message.get("status") != "completed"
        ):
            raise RuntimeError(f"the request failed: {message}")
        if message["type"] == "done":
            return time.perf_counter() - start, seen


def warm(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tui.generate_worker import GenerateWorker

    worker = GenerateWorker(idle_s=600)
    try:
        first, first_seen = ask(worker, request_args(args, "a first prompt", out / "1"))
        second, second_seen = ask(worker, request_args(args, "a second prompt", out / "2"))
    finally:
        worker.close()
    return {
        "first_s": first,
        "second_s": second,
        "first_loaded": first_seen.count("loaded"),
        "second_loaded": second_seen.count("loaded"),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        for r in range(args.rounds):
            row: dict[str, Any] = {}
            order = ("cold", "warm") if r % 2 == 0 else ("warm", "cold")
            for side in order:
                out = Path(tmp) / f"{r}-{side}"
                if side == "cold":
                    row["cold_s"] = cold(args, out)
                else:
                    row.update(warm(args, out))
            rounds.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
            print(rounds[-1], flush=True)
    result = {
        "benchmark": "warm_generate",
        "command": "python -m benchmarks.bench_warm_generate " + " ".join(argv or sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "images_per_request": args.images,
        "steps": args.steps,
        "rounds": rounds,
        "median_s": {
            key: round(median([row[key] for row in rounds]), 3)
            for key in ("cold_s", "first_s", "second_s")
        },
    }
    print(result["median_s"])
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
