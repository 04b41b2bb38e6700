"""What every benchmark records beside its figures: the machine, the load, the versions, the date."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else "unknown"


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine(device: str = "cpu") -> dict[str, Any]:
    """CPU model and count, load average, Python/torch versions, the accelerator if any."""
    out: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_avg": load_average(),
        "python": platform.python_version(),
    }
    if "torch" in sys.modules or device != "cpu":
        import torch

        out["torch"] = torch.__version__
        if device.startswith("cuda") and torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name()
            out["cuda"] = torch.version.cuda
    return out


def peak_rss() -> int:
    """The process's peak resident set in bytes (VmHWM; getrusage where /proc is absent)."""
    try:
        text = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) * 1024
    except (OSError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_json(path: str | Path | None, data: dict[str, Any]) -> None:
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def add_training_args(p: argparse.ArgumentParser, steps: int, warmup: int) -> None:
    """The training setup every training benchmark takes: model, method, shape, precision."""
    p.add_argument(
        "--model",
        default="tiny",
        help="tiny | sd15-arch | tiny-sdxl | sdxl-arch | a diffusers folder",
    )
    p.add_argument("--model-dir", default=None, help="where sd15-arch/sdxl-arch is built (cached)")
    p.add_argument("--method", choices=("full", "lora"), default="full")
    p.add_argument("--lora-rank", type=int, default=4)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    p.add_argument("--optimizer", choices=("adamw", "adamw8bit"), default="adamw")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=steps, help="timed steps after the warm-up")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
