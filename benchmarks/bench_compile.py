"""`train.torch_compile` (regional): compile time on a first run and on a second run (cache), and
the step time eager vs compiled.

Two child processes, one after the other, share one fresh compile cache folder
(TORCHINDUCTOR_CACHE_DIR): the first compiles (cold), the second should load (warm). Each child
sets up the engine (benchmarks.bench_train.engine_trainer), times `--steps` eager steps after
`--warmup`, compiles the UNet's repeated blocks in place (engine.compile.compile_unet, as the
engine does), times the first step (the compile) and `--steps` compiled steps, and reads torch's
FX-graph cache counters.

    python -m benchmarks.bench_compile --model tiny --resolution 32 --steps 5
    python -m benchmarks.bench_compile --model sd15-arch --resolution 512 --mixed-precision bf16 \\
        --method lora --json out.json
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

from benchmarks.common import ROOT, add_training_args, machine, median, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_compile", description=__doc__.split("\n\n")[0])
    add_training_args(p, steps=8, warmup=2)
    p.add_argument("--runs", type=int, default=2, help="child processes sharing the cache")
    p.add_argument("--cache-dir", default=None, help="default: a fresh temporary folder")
    p.add_argument("--timeout", type=float, default=400, help="seconds per child")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def child(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from benchmarks import bench_train as bt
    from benchmarks.step_measure import sync
    from engine.compile import cache_counters, compile_unet, compiled_blocks

    args.torch_compile = False  # compiled below, after the eager steps, as the engine does it
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model_dir, images = bt.model_and_images(args)
    work = Path(tempfile.mkdtemp(prefix="bench-compile-"))
    try:
        cfg = bt.make_config(args, model_dir, images, work / "runs")
        trainer = bt.engine_trainer(cfg, work / "run")
        step = 0

        def timed(n: int) -> list[float]:
            nonlocal step
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                step += 1
                bt.engine_step(trainer, step)
                sync(device)
                out.append(time.perf_counter() - t0)
            return out

        timed(args.warmup)
        eager = timed(args.steps)
        before = cache_counters()
        t0 = time.perf_counter()
        trainer.models.unet, what = compile_unet(trainer.models.unet)
        timed(1)  # compile_unet only wraps the blocks; this step compiles them
        first = time.perf_counter() - t0
        after = cache_counters()
        compiled = timed(args.steps)
        return {
            "compiled": what,
            "compiled_blocks": compiled_blocks(trainer.unet),
            "first_step_s": first,
            "eager_step_ms": median(eager) * 1000,
            "eager_step_ms_range": [min(eager) * 1000, max(eager) * 1000],
            "compiled_step_ms": median(compiled) * 1000,
            "compiled_step_ms_range": [min(compiled) * 1000, max(compiled) * 1000],
            "speedup": median(eager) / median(compiled),
            "cache_hits": after.get("hit", 0) - before.get("hit", 0),
            "cache_misses": after.get("miss", 0) - before.get("miss", 0),
            "cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="inductor-"))
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    runs = []
    for i in range(args.runs):
        out = cache / f"child-{i}.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.bench_compile",
            *_child_args(args),
            "--child",
            str(out),
        ]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=args.timeout, stdin=subprocess.DEVNULL)  # fmt: skip
            rc: int | str = proc.returncode
            tail = (proc.stderr or "")[-2000:]
        except subprocess.TimeoutExpired:
            rc, tail = "timeout", ""
        res: dict[str, Any] = {"run": i + 1, "rc": rc, "process_s": time.perf_counter() - t0}
        if out.exists():
            res.update(json.loads(out.read_text()))
        if rc != 0:
            res["log_tail"] = tail
        runs.append(res)
        if "first_step_s" in res:
            log(f"run {i + 1}: first step (compile) {res['first_step_s']:.1f}s · cache "
                f"{res['cache_hits']} hits {res['cache_misses']} misses · eager "
                f"{res['eager_step_ms']:.1f} ms -> compiled {res['compiled_step_ms']:.1f} ms "
                f"({res['speedup']:.2f}x)")  # fmt: skip
        else:
            log(f"run {i + 1}: rc {rc}\n{tail}")
    if not args.cache_dir:
        shutil.rmtree(cache, ignore_errors=True)
    import torch  # noqa: F401 - for machine()'s versions

    return {
        "runs": runs,
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "child")},
        "device": machine("cuda" if torch.cuda.is_available() else "cpu"),
    }


def _child_args(args: argparse.Namespace) -> list[str]:
    out = [
        f"--model={args.model}", f"--method={args.method}", f"--lora-rank={args.lora_rank}",
        f"--resolution={args.resolution}", f"--batch-size={args.batch_size}",
        f"--mixed-precision={args.mixed_precision}", f"--optimizer={args.optimizer}",
        f"--steps={args.steps}", f"--warmup={args.warmup}",
    ]  # fmt: skip
    if args.model_dir:
        out.append(f"--model-dir={args.model_dir}")
    if args.gradient_checkpointing:
        out.append("--gradient-checkpointing")
    if args.threads:
        out.append(f"--threads={args.threads}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        write_json(args.child, child(args))
        return 0
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_json(args.json, result)
    ok = all("first_step_s" in r for r in result["runs"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
