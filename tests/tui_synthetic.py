"""Synthetic run directories for the TUI tests: events written with the real EventWriter at fixed
timestamps, sample PNGs drawn with the tiny model's concept images. No torch."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from unittest import mock

from engine.events import EVENTS_FILE, EventWriter
from engine.runs import write_run_json
from engine.tiny import concept_image

T0 = 1_700_000_000.0

TRICKY_PROMPT = "[bold red]x[/] a photo of sks shape"


def _clock(start: float = T0, step: float = 0.5):
    counter = itertools.count()
    return lambda: start + step * next(counter)


def write_sample_png(path: Path, index: int = 0, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    concept_image(index, size).save(path)
    return path


def loss_at(step: int) -> float:
    return 0.05 + 0.4 * math.exp(-step / 15) + 0.03 * math.sin(step * 1.7)


def write_finished_run(
    output_dir: Path,
    name: str = "20240101-000000-sks-shape",
    total: int = 40,
    status: str = "completed",
    prompt: str = TRICKY_PROMPT,
    device: dict | None = None,
    error: bool = False,
    before: bool = False,
) -> Path:
    """A run directory whose events.jsonl tells a whole (CPU) run, deterministic to the byte;
    samples every 20 steps, and at step 0 too with BEFORE (validation_at_start)."""
    run_dir = output_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    device = device or {"kind": "cpu", "name": "CPU (2 cores)", "total_mem": 8 << 30}
    with mock.patch("engine.events.time.time", _clock()):
        w = EventWriter(run_dir / EVENTS_FILE)
        w.emit(
            "run_started",
            run_id=name,
            config={"train": {"max_train_steps": total}},
            total_steps=total,
            device=device,
            resumed_from_step=None,
            world_size=1,
        )
        w.emit("phase", name="loading_models", detail="builtin:tiny")
        w.emit("phase", name="training", detail="")
        if before:
            paths = [f"samples/step-000000/{i:02d}.png" for i in range(2)]
            for i, rel in enumerate(paths):
                write_sample_png(run_dir / rel, index=i + 100)
            w.emit("sample", step=0, prompt=prompt, paths=paths, seed=0)
        for step in range(1, total + 1):
            w.emit(
                "step",
                step=step,
                loss=loss_at(step),
                lr=1e-4 * min(1.0, step / 10),
                grad_norm=0.5,
                it_s=4.0,
                samples_s=4.0,
                eta_s=(total - step) / 4.0,
                mem={"allocated": (300 + step) << 20, "reserved": 400 << 20, "peak": 512 << 20},
            )
            if step % 20 == 0:
                rel = f"samples/step-{step:06d}"
                paths = []
                for i in range(2):
                    write_sample_png(run_dir / rel / f"{i:02d}.png", index=i + step)
                    paths.append(f"{rel}/{i:02d}.png")
                w.emit("sample", step=step, prompt=prompt, paths=paths, seed=0)
            if step % 20 == 0:
                w.emit("checkpoint", step=step, path=f"checkpoints/step-{step:06d}")
                if step > 20:
                    w.log(f"removed old checkpoint step-{step - 20:06d}", level="debug")
        if error:
            w.emit(
                "error",
                kind="oom",
                message="CUDA out of memory [tried to allocate 2.00 GiB]",
                hint="lower train_batch_size or turn on gradient_checkpointing",
            )
        w.emit("phase", name="saving", detail="final model")
        w.emit(
            "finished",
            status=status,
            step=total,
            outputs={"final": "final", "lora": None},
            duration_s=12.5,
        )
        w.close()
    write_run_json(
        run_dir,
        {
            "run_id": name,
            "status": status,
            "pid": None,
            "started": T0,
            "ended": T0 + 20,
            "total_steps": total,
        },
    )
    return run_dir


def write_generate_output(out_dir: Path, prompt: str = TRICKY_PROMPT, n: int = 2) -> Path:
    """What `python -m engine generate` leaves: PNGs + events.jsonl (sample per image)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with mock.patch("engine.events.time.time", _clock()):
        w = EventWriter(out_dir / EVENTS_FILE)
        for i in range(n):
            p = write_sample_png(out_dir / f"{i:04d}.png", index=i + 3)
            (out_dir / f"{i:04d}.json").write_text(json.dumps({"prompt": prompt, "seed": i}))
            w.emit("sample", step=None, prompt=prompt, paths=[p.name], seed=i)
        w.emit("finished", status="completed", step=None, outputs={}, duration_s=1.0)
        w.close()
    return out_dir


def write_step_burst(events_file: str | Path, total: int, seconds: float) -> None:
    """Append `total` step events (and a log line every 97 steps) at an even pace over
    `seconds`: a fast engine, for the responsiveness test (run it in its own process)."""
    import time

    writer = EventWriter(events_file)
    per_tick = max(1, int(total / (seconds * 100)))
    step = 0
    t0 = time.monotonic()
    while step < total:
        for _ in range(per_tick):
            step += 1
            writer.emit(
                "step",
                step=step,
                loss=1.0 / step,
                lr=1e-4,
                it_s=1000.0,
                eta_s=0.0,
                mem={"allocated": step, "reserved": step, "peak": step},
            )
            if step % 97 == 0:
                writer.log(f"[bold]step {step}[/bold]")
        time.sleep(max(0.0, t0 + step / total * seconds - time.monotonic()))
    writer.close()
