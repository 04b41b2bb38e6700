"""Training step: the engine against a re-created reference step, alternating, in one process.

This is the second, labelled row of the GPU comparison: the first is diffusers' real scripts
run as their own processes (benchmarks/bench_real.py). Here (a) the engine's step as `dreambooth-tui train` runs it (engine.train.Trainer: cached latents and
text embeddings, fused/foreach AdamW, channels_last on a GPU, one `step` event per update
written to a real events.jsonl), and (b) a reference step that does what diffusers'
examples/dreambooth/train_dreambooth.py (train_dreambooth_lora.py for LoRA) does for each
update, written from the script and not from the engine's code: decode and transform the image
and tokenize the prompt (its Dataset), encode the image
with the VAE and the prompt with the text encoder, fp32 trainable weights under autocast, the
same optimizer class with its default implementation, clip_grad_norm_, zero_grad with
set_to_none=False (the script's default) and `loss.item()` for the progress bar.

Both load the same model folder and train the same data with the same settings. The one thing
the reference takes from the engine is which random numbers to draw (engine.recipe.step_seed,
for its generator): so on the same weights the engine's recipe (cached latent distributions,
cached text embeddings, its own image pipeline) must compute the script's loss, which
tests/test_benchmarks.py checks. That is a check of the engine's recipe against the script's,
not of the timing's fairness: the re-created step is not the script (no DataLoader, no
accelerate.accumulate, no tracker), which is why the real scripts are the first row.

Timing: warm-up steps, then `--steps` timed steps of each side, alternating (ABBA order); the
median step time. Peak memory is measured for each side with the other absent: the engine's
before the reference is built, the reference's after the engine is freed (GPU:
torch.cuda.max_memory_allocated; CPU: the process's peak RSS, VmHWM, reset in between).

    python -m benchmarks.bench_train --model tiny --resolution 32 --json out.json
    python -m benchmarks.bench_train --model sd15-arch --resolution 512 --mixed-precision bf16
    python -m benchmarks.bench_train --model sdxl-arch --resolution 1024 --method lora \
        --mixed-precision bf16 --gradient-checkpointing

SDXL (`tiny-sdxl`, `sdxl-arch`, an SDXL folder): the engine row alone. The re-created reference
is SD 1.x/2.x's script (one text encoder, no added conditioning), so it is skipped and says so
(`reference_skipped`); SDXL's comparison is a peer's published figure (issue 11).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import ROOT, add_training_args, machine, median, write_json
from benchmarks.reference_step import PROMPT, ReferenceStep
from benchmarks.step_measure import (
    peak_flops,
    plain_unet,
    read_peak,
    reset_peak,
    sync,
    unet_train_flops,
)

DEMO = ROOT / "sample_configs" / "demo.yaml"
REFERENCE_SKIPPED = "no reference row: the re-created step is SD 1.x/2.x's script"


# ------------------------------------------------------------------------------ setup
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_train", description=__doc__.split("\n\n")[0])
    add_training_args(p, steps=20, warmup=3)
    p.add_argument("--torch-compile", action="store_true", help="train.torch_compile (engine)")
    p.add_argument("--mem-steps", type=int, default=2, help="steps of the isolated peak")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument(
        "--ab-channels-last",
        type=int,
        default=0,
        metavar="N",
        help="LoRA only: also time N engine steps each with the UNet in channels_last and in "
        "contiguous format, alternating (the frozen convolutions are what changes)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args(argv)


def model_and_images(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.model == "tiny":
        from engine.tiny import ensure_tiny

        root = ensure_tiny()
        return root / "model", root / "images"
    if args.model == "sd15-arch":
        from benchmarks.sd15_arch import ensure_sd15_arch

        root = ensure_sd15_arch(args.model_dir)
        return root / "model", root / "images"
    from engine.tiny import ensure_tiny

    if args.model == "tiny-sdxl":
        from engine.tiny_sdxl import ensure_tiny_sdxl

        return ensure_tiny_sdxl() / "model", ensure_tiny() / "images"
    if args.model == "sdxl-arch":
        from benchmarks.sdxl_arch import ensure_sdxl_arch

        root = ensure_sdxl_arch(args.model_dir)
        return root / "model", root / "images"
    return Path(args.model), ensure_tiny() / "images"


def make_config(args: argparse.Namespace, model_dir: Path, images: Path, out: Path):
    from engine.config import load_config

    big = 1_000_000
    train = {
        "model": str(model_dir),
        "instance_data": str(images),
        "instance_prompt": PROMPT,
        "resolution": args.resolution,
        "center_crop": True,
        "random_flip": False,
        "shuffle": False,  # images in folder order, so the re-created step can take the same
        "method": args.method,
        "lora_rank": args.lora_rank,
        "lora_alpha": args.lora_rank,
        "train_batch_size": args.batch_size,
        "gradient_accumulation_steps": 1,
        "optimizer": args.optimizer,
        "mixed_precision": args.mixed_precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "torch_compile": args.torch_compile,
        "cache_latents": True,
        "max_train_steps": big,
        "validation_steps": big,
        "validation_at_start": False,  # the demo samples at step 0: not in a speed benchmark
        "checkpointing_steps": big,
        "output_dir": str(out),
    }
    return load_config(DEMO, {"train": train})


# ------------------------------------------------------------------------------ the engine
def engine_trainer(cfg, run_dir: Path):
    """A Trainer set up exactly as `dreambooth-tui train` sets it up, events to run_dir."""
    from engine.events import EventWriter
    from engine.train import Trainer

    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(run_dir, None, ["bench_train"])
    trainer.cfg = cfg
    trainer.events = EventWriter(run_dir / "events.jsonl")
    trainer.setup()
    trainer.prepare()
    trainer.unet.train()
    return trainer


def engine_step(trainer, step: int) -> tuple[float, float]:
    """One iteration of the training loop (engine.training.loop) without its sampling/checkpoint branches.

    Returns the loss and the seconds spent writing the step event."""
    trainer.check_stop()
    t0 = time.perf_counter()
    loss, parts, grad_norm, lr = trainer.train_step(step)
    trainer.state.step_times.append(time.perf_counter() - t0)
    trainer.state.step = step
    t1 = time.perf_counter()
    trainer.step_event(step, loss, parts, grad_norm, lr)
    return loss, time.perf_counter() - t1


def channels_last_ab(engine, args, device: torch.device, step: int) -> dict[str, Any]:
    """Engine steps with the UNet in channels_last vs contiguous format, alternating."""
    if args.method != "lora":  # converting trained weights would desync the optimizer state
        return {"skipped": "LoRA only (its convolutions are frozen)"}
    unet = plain_unet(engine.unet)
    times: dict[str, list[float]] = {"channels_last": [], "contiguous": []}
    formats = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
    for i in range(args.ab_channels_last):
        order = ("contiguous", "channels_last") if i % 2 == 0 else ("channels_last", "contiguous")
        for name in order:
            unet.to(memory_format=formats[name])
            sync(device)
            t0 = time.perf_counter()
            step += 1
            engine_step(engine, step)
            sync(device)
            times[name].append(time.perf_counter() - t0)
    unet.to(memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    return {f"{k}_ms": median(v) * 1000 for k, v in times.items()}


# ------------------------------------------------------------------------------ the run
def summary(times: list[float], peak: int, flops: int | None, peak_f: float | None) -> dict:
    step_s = median(times)
    out: dict[str, Any] = {
        "steps_per_s": 1.0 / step_s,
        "step_ms": step_s * 1000,
        "peak_mem": peak,
        "step_ms_min": min(times) * 1000,
        "step_ms_max": max(times) * 1000,
    }
    if flops:
        out["tflop_s"] = flops / step_s / 1e12
        out["mfu"] = flops / step_s / peak_f if peak_f else None
    return out


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir, images = model_and_images(args)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    cfg = make_config(args, model_dir, images, work / "runs")
    log(f"model {model_dir} · {args.method} · {args.resolution}px · batch {args.batch_size} · "
        f"{args.mixed_precision} · {args.optimizer} · checkpointing {args.gradient_checkpointing}")  # fmt: skip

    t_load = time.perf_counter()
    engine = engine_trainer(cfg, work / "run")
    log(f"engine ready in {time.perf_counter() - t_load:.1f}s")
    step_e = 0
    for _ in range(args.warmup):
        step_e += 1
        engine_step(engine, step_e)
    sync(device)
    reset_peak(device)
    for _ in range(args.mem_steps):
        step_e += 1
        engine_step(engine, step_e)
    sync(device)
    engine_peak = read_peak(device)
    flops = None
    if not args.no_flops:
        flops = unet_train_flops(engine.unet, cfg, device)
        log(f"UNet forward+backward: {flops / 1e9:.4g} GFLOP")
    attention = sorted({type(p).__name__ for p in plain_unet(engine.unet).attn_processors.values()})
    log(f"attention processors: {', '.join(attention)}")
    peak_f, peak_note = peak_flops(device, args.mixed_precision)

    # The re-created reference is SD 1.x/2.x's script: other families time the engine alone.
    family = engine.models.family
    skipped = None if family.name == "sd" else f"{REFERENCE_SKIPPED} ({family.label})"
    ref, step_r = None, 0
    if skipped is None:
        t_load = time.perf_counter()
        ref = ReferenceStep(cfg, device, model_dir, images)
        log(f"reference ready in {time.perf_counter() - t_load:.1f}s")
        for _ in range(args.warmup):
            step_r += 1
            ref.train_step(step_r)
        sync(device)
    else:
        log(skipped)

    times: dict[str, list[float]] = {"engine": [], "reference": []}
    event_s: list[float] = []
    losses: dict[str, list[float]] = {"engine": [], "reference": []}
    for i in range(args.steps):
        order = ("engine", "reference") if i % 2 == 0 else ("reference", "engine")
        for side in order if ref is not None else ("engine",):
            t0 = time.perf_counter()
            if side == "engine":
                step_e += 1
                loss, ev = engine_step(engine, step_e)
                event_s.append(ev)
            else:
                step_r += 1
                loss = ref.train_step(step_r)
            sync(device)
            times[side].append(time.perf_counter() - t0)
            losses[side].append(loss)

    ab = channels_last_ab(engine, args, device, step_e) if args.ab_channels_last else None
    engine.accelerator.free_memory()
    engine.events.close()
    del engine
    ref_peak = None
    if ref is not None:
        reset_peak(device)
        for _ in range(args.mem_steps):
            step_r += 1
            ref.train_step(step_r)
        sync(device)
        ref_peak = read_peak(device)
        ref.release()
        del ref
    gc.collect()

    result: dict[str, Any] = {
        "engine": summary(times["engine"], engine_peak, flops, peak_f),
        "reference": None if skipped else summary(times["reference"], ref_peak, flops, peak_f),
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "device": {
            **machine(device.type),
            "device": device.type,
            "threads": torch.get_num_threads(),
        },
    }
    if skipped:
        result["reference_skipped"] = skipped
        result["ratio"] = None
    else:
        result["ratio"] = result["engine"]["steps_per_s"] / result["reference"]["steps_per_s"]
    result["mem_ratio"] = engine_peak / ref_peak if ref_peak else None
    ev_ms = median(event_s) * 1000
    result["engine"]["event_ms"] = ev_ms
    result["engine"]["event_fraction"] = ev_ms / result["engine"]["step_ms"]
    result["flops"] = {
        "unet_fwd_bwd": flops,
        "peak_flops": peak_f,
        "peak_source": peak_note,
        "note": "MFU = UNet forward+backward FLOPs (FlopCounterMode, without recomputation) "
        "/ median step time / peak; the reference's VAE and text-encoder work is not counted",
    }
    result["attention_processors"] = attention
    if ab is not None:
        result["channels_last_ab"] = ab
    result["losses"] = {k: [round(x, 6) for x in v[:5]] for k, v in losses.items()}
    shutil.rmtree(work, ignore_errors=True)
    return result


def report(result: dict[str, Any]) -> str:
    e, r = result["engine"], result["reference"]
    gib = 1 << 30
    lines = [
        f"{'':10} {'steps/s':>9} {'step ms':>9} {'peak GiB':>9} {'MFU':>6}",
    ]
    for name, s in (("engine", e), ("reference", r)) if r else (("engine", e),):
        mfu = f"{s['mfu'] * 100:5.1f}%" if s.get("mfu") else "   - "
        lines.append(
            f"{name:10} {s['steps_per_s']:9.2f} {s['step_ms']:9.1f} {s['peak_mem'] / gib:9.2f} {mfu}"
        )
    events = f"event writing {e['event_ms']:.3f} ms ({e['event_fraction'] * 100:.2f}% of a step)"
    if r:
        lines.append(
            f"ratio (engine/reference steps/s): {result['ratio']:.2f}x · peak memory "
            f"{result['mem_ratio']:.2f}x · {events}"
        )
    else:
        lines.append(f"{result['reference_skipped']} · {events}")
    d = result["device"]
    lines.append(
        f"{d.get('gpu') or d['cpu']} · load {d['load_avg']} · torch {d.get('torch')} · {d['date']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_json(args.json, result)
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
