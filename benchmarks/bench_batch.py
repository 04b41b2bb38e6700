"""The engine's training step at several batch sizes: images/s and model FLOP utilisation.

For each batch size a fresh engine (benchmarks.bench_train.engine_trainer: the Trainer set up as
`dreambooth-tui train` sets it up) takes `--warmup` steps, then `--steps` timed steps, each
synchronised. MFU = UNet forward+backward FLOPs at that batch (FlopCounterMode, without
gradient-checkpointing recomputation) / median step time / peak, against two peaks: the
datasheet's dense bf16 figure and the bf16 matmul rate measured on this card at the start
(an 8192^3 product, 10 timed after 3 warm-up). Peak memory: torch.cuda.max_memory_allocated over
the timed steps (CPU: peak RSS).

    python -m benchmarks.bench_batch --model tiny --resolution 32 --batch-sizes 1,4 --steps 3
    python -m benchmarks.bench_batch --model sd15-arch --resolution 512 --mixed-precision bf16 \\
        --method lora --batch-sizes 1,4,8 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import bench_train as bt
from benchmarks import step_measure as sm
from benchmarks.common import machine, median, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="tiny | sd15-arch | a diffusers folder")
    p.add_argument("--model-dir", default=None)
    p.add_argument("--method", choices=("full", "lora"), default="full")
    p.add_argument("--lora-rank", type=int, default=4)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch-sizes", default="1,4,8")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--optimizer", choices=("adamw", "adamw8bit"), default="adamw")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--torch-compile", action="store_true")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def measured_bf16_peak(device: torch.device, n: int = 8192) -> float | None:
    """FLOP/s of a large bf16 matmul on this GPU (None on a CPU)."""
    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize(device)
    secs = (time.perf_counter() - t0) / 10
    del a, b
    torch.cuda.empty_cache()
    return 2 * n**3 / secs


def one_batch_size(args: argparse.Namespace, bs: int, device: torch.device, work: Path) -> dict:
    a = copy.copy(args)
    a.batch_size = bs
    model_dir, images = bt.model_and_images(a)
    cfg = bt.make_config(a, model_dir, images, work / f"runs-{bs}")
    trainer = bt.engine_trainer(cfg, work / f"run-{bs}")
    step = 0
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step += 1
        bt.engine_step(trainer, step)
    sm.sync(device)
    warmup_s = time.perf_counter() - t0
    sm.reset_peak(device)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step += 1
        bt.engine_step(trainer, step)
        sm.sync(device)
        times.append(time.perf_counter() - t0)
    peak = sm.read_peak(device)
    flops = sm.unet_train_flops(trainer.unet, cfg, device)
    trainer.accelerator.free_memory()
    trainer.events.close()
    del trainer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    step_s = median(times)
    return {
        "batch_size": bs,
        "step_ms": step_s * 1000,
        "step_ms_min": min(times) * 1000,
        "step_ms_max": max(times) * 1000,
        "images_per_s": bs / step_s,
        "unet_fwd_bwd_flops": flops,
        "tflop_s": flops / step_s / 1e12,
        "peak_mem": peak,
        "warmup_s": warmup_s,
        "timed_steps": len(times),
    }


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    measured = measured_bf16_peak(device)
    datasheet, note = sm.peak_flops(device, args.mixed_precision)
    if measured:
        log(f"measured bf16 matmul peak {measured / 1e12:.0f} TFLOP/s; datasheet: {note}")
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    rows = []
    try:
        for bs in sizes:
            row = one_batch_size(args, bs, device, work)
            row["mfu_datasheet"] = row["tflop_s"] * 1e12 / datasheet if datasheet else None
            row["mfu_measured"] = row["tflop_s"] * 1e12 / measured if measured else None
            rows.append(row)
            mfu = f" · MFU {row['mfu_measured'] * 100:.1f}%" if row["mfu_measured"] else ""
            log(f"batch {bs}: {row['step_ms']:.1f} ms ({row['step_ms_min']:.1f}-"
                f"{row['step_ms_max']:.1f}) · {row['images_per_s']:.2f} images/s · "
                f"{row['tflop_s']:.3g} TFLOP/s{mfu} · peak {row['peak_mem'] / 2**30:.2f} GiB")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "rows": rows,
        "measured_bf16_peak_flops": measured,
        "datasheet_peak_flops": datasheet,
        "datasheet_note": note,
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "device": {**machine(device.type), "device": device.type},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_json(args.json, result)
    for r in result["rows"]:
        print(
            f"batch {r['batch_size']}: {r['images_per_s']:.2f} images/s, {r['tflop_s']:.3g} TFLOP/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
