"""End-to-end check of the real CLI on the SD1.5 architecture (random weights) at 512 px.

What a user runs first, run as a user runs it (`python -m engine ...` subprocesses), from the
sample configs with only the model, the data and the length changed:

1. full   sd15-full.yaml: full fine-tune, prior preservation with class images generated first
          (an empty class folder), bf16, 8-bit AdamW, gradient checkpointing; samples and a
          checkpoint on the way.
2. lora   sd15-lora.yaml with train_text_encoder: true (LoRA on the UNet and the text encoder).
3. fp16   the LoRA config in fp16, stopped with SIGINT after step 2 (stop = save) and resumed
          with --resume latest to the end.
4. generate from the full run's final/, from its checkpoint, and the LoRA on the base model.

For each training run it records the whole-run peak GPU memory (NVML's used memory of the
device, polled every 0.1 s while the CLI runs: class generation, sampling and saving included;
and the engine's own torch peak from its step events) next to the README's "fits" claim of the
sample config, and writes one JSON file. `fits_claim_holds` compares NVML's peak (the card's
whole used memory, CUDA context and allocator cache included) with the card size the claim
names, in GiB.

    python -m benchmarks.gpu_e2e --json benchmarks/results/h200-e2e.json      # on a CUDA box
    python -m benchmarks.gpu_e2e --tiny --json /tmp/e2e-cpu.json              # its logic, CPU

`--tiny` runs the same steps on the built-in tiny model at 32 px, fp32 and AdamW (a CPU has no
fp16 or bitsandbytes): a check of the script, not a measurement; it records no GPU figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_configs"
PROMPT = "a photo of sks dog on the beach"


# ------------------------------------------------------------------------------ GPU memory
class NvmlPeak:
    """Polls the used memory of every NVML device in a thread; `peak` is the highest total.
    Through pynvml where it is installed, else nvidia-smi (every 0.25 s); neither: None."""

    def __init__(self, interval: float = 0.1) -> None:
        import shutil

        self.interval, self.peak, self.baseline = interval, None, None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: list[Any] = []
        self._smi = None
        try:
            import pynvml

            pynvml.nvmlInit()
            n = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
            self._pynvml = pynvml
        except Exception:  # no pynvml or no driver: nvidia-smi, if any
            self._smi = shutil.which("nvidia-smi")
            self.interval = max(interval, 0.25)
            if self._smi and self._read_smi() is None:
                self._smi = None

    def _read_smi(self) -> int | None:
        try:
            out = subprocess.run(
                [self._smi, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            return sum(int(v) for v in out.split()) << 20  # MiB
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    def used(self) -> int | None:
        if self._smi:
            return self._read_smi()
        if not self._handles:
            return None
        info = self._pynvml.nvmlDeviceGetMemoryInfo
        return sum(int(info(h).used) for h in self._handles)

    def __enter__(self) -> NvmlPeak:
        self.baseline = self.peak = self.used()
        if self._handles or self._smi:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            used = self.used()
            if used is not None and (self.peak is None or used > self.peak):
                self.peak = used

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ------------------------------------------------------------------------------ the claims
def fits_claims(readme: Path = ROOT / "README.md") -> dict[str, dict[str, Any]]:
    """The README's "Which sample config" table: config file -> {claim, gib} (gib: the card
    size the claim names, None for "a CPU")."""
    claims = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`sample_configs/([\w.-]+)`\s*\|[^|]*\|\s*([^|]+?)\s*\|$", line)
        if m:
            gb = re.search(r"(\d+)\s*GB", m.group(2))
            claims[m.group(1)] = {"claim": m.group(2), "gib": int(gb.group(1)) if gb else None}
    return claims


# ------------------------------------------------------------------------------ configs
def write_config(
    name: str, out: Path, sample: str, train: dict[str, Any], evaluation: dict[str, Any]
) -> Path:
    from engine.config import dump_config, load_config

    src = SAMPLES / sample
    cfg = load_config(src, {"train": train, "evaluation": evaluation})
    path = out / f"{name}.yaml"
    path.write_text(dump_config(cfg, src.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def cases(out: Path, model: Path, images: Path, tiny: bool) -> dict[str, Path]:
    """The configs: the samples with the model, data, length (and on a CPU precision) changed."""
    common: dict[str, Any] = {
        "model": str(model),
        "instance_data": str(images),
        "max_train_steps": 4,
        "validation_steps": 2,
        "checkpointing_steps": 2,
    }
    if tiny:  # a CPU: tiny resolution, fp32, plain AdamW (no bitsandbytes on a CPU)
        common.update(resolution=32, mixed_precision="no", optimizer="adamw")
    ev = {"num_inference_steps": 4} if tiny else {}
    full = {**common, "output_dir": str(out / "runs-full"), "class_data": str(out / "class")}
    full["num_class_images"] = 2 if tiny else 4
    lora = {**common, "output_dir": str(out / "runs-lora"), "train_text_encoder": True}
    fp16 = {
        **common,
        "output_dir": str(out / "runs-fp16"),
        "mixed_precision": "no" if tiny else "fp16",  # fp16 needs CUDA
        "max_train_steps": 6,
        "checkpointing_steps": 100,
        "validation_steps": 100,
    }
    return {
        "full": write_config("full", out, "sd15-full.yaml", full, ev),
        "lora": write_config("lora", out, "sd15-lora.yaml", lora, ev),
        "fp16": write_config("fp16", out, "sd15-lora.yaml", fp16, ev),
    }


# ------------------------------------------------------------------------------ running
def engine(*args: str, log: Path, timeout: float) -> tuple[int, float]:
    t0 = time.monotonic()
    with open(log, "a") as fh:
        fh.write(f"\n$ python -m engine {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run(
            [sys.executable, "-m", "engine", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            timeout=timeout,
        )
    return proc.returncode, time.monotonic() - t0


def run_dir_of(output_dir: Path) -> Path:
    (run,) = [p for p in output_dir.iterdir() if (p / "events.jsonl").exists()]
    return run


def events_of(run: Path) -> list[dict[str, Any]]:
    from engine.events import read_events

    return read_events(run / "events.jsonl")


def engine_peak(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The engine's own peak from its step events: torch's max_memory_allocated on a GPU (class
    generation included, the last sampling not), the process's peak RSS on a CPU."""
    peaks = [(e.get("mem") or {}).get("peak") for e in events if e["type"] == "step"]
    peaks = [p for p in peaks if isinstance(p, int)]
    kind = next((e["device"].get("kind") for e in events if e["type"] == "run_started"), None)
    return {
        "engine_peak_bytes": max(peaks) if peaks else None,
        "engine_peak_kind": "torch max_memory_allocated" if kind == "cuda" else "process RSS",
    }


def train(name: str, cfg: Path, log: Path, timeout: float) -> dict[str, Any]:
    with NvmlPeak() as nvml:
        code, wall = engine("train", str(cfg), "--quiet", log=log, timeout=timeout)
    from engine.config import load_config

    run = run_dir_of(Path(load_config(cfg).train.output_dir))
    events = events_of(run)
    finished = [e for e in events if e["type"] == "finished"]
    return {
        "case": name,
        "ok": code == 0 and bool(finished) and finished[-1]["status"] == "completed",
        "rc": code,
        "wall_s": round(wall, 1),
        "run_dir": str(run),
        "device": next((e["device"] for e in events if e["type"] == "run_started"), None),
        "peak_nvml_used_bytes": nvml.peak,
        "nvml_baseline_bytes": nvml.baseline,
        **engine_peak(events),
        "checkpoints": sorted(p.name for p in (run / "checkpoints").glob("step-*")),
        "samples": sorted(p.name for p in (run / "samples").glob("step-*")),
        "class_images": len(list((cfg.parent / "class").glob("*.png"))) if name == "full" else None,
    }


def stop_and_resume(cfg: Path, log: Path, timeout: float) -> dict[str, Any]:
    """Train, SIGINT after step 2 (the CLI stops the engine, which checkpoints), resume."""
    from engine.config import load_config

    output_dir = Path(load_config(cfg).train.output_dir)
    t0 = time.monotonic()
    with NvmlPeak() as nvml:
        with open(log, "a") as fh:
            fh.write(f"\n$ python -m engine train {cfg} --quiet   (SIGINT after step 2)\n")
            fh.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine", "train", str(cfg), "--quiet"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
            sent = False
            while proc.poll() is None and time.monotonic() - t0 < timeout:
                runs = list(output_dir.glob("*/events.jsonl")) if output_dir.is_dir() else []
                if runs and not sent:
                    steps = [e["step"] for e in events_of(runs[0].parent) if e["type"] == "step"]
                    if steps and steps[-1] >= 2:
                        proc.send_signal(signal.SIGINT)
                        sent = True
                time.sleep(0.05)
            first = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        run = run_dir_of(output_dir)
        stopped = [e for e in events_of(run) if e["type"] == "finished"]
        code, _ = engine(
            "train", str(cfg), "--resume", "latest", "--quiet", log=log, timeout=timeout
        )
    events = events_of(run)
    finished = [e for e in events if e["type"] == "finished"]
    started = [e for e in events if e["type"] == "run_started"]
    stop_step = stopped[-1]["step"] if stopped else None
    return {
        "case": "fp16_stop_resume",
        "ok": first == 0
        and code == 0
        and bool(stopped)
        and stopped[-1]["status"] == "stopped"
        and started[-1].get("resumed_from_step") == stop_step
        and finished[-1]["status"] == "completed",
        "rc": [first, code],
        "wall_s": round(time.monotonic() - t0, 1),
        "run_dir": str(run),
        "mixed_precision": load_config(cfg).train.mixed_precision,
        "stopped_at": stop_step,
        "resumed_from_step": started[-1].get("resumed_from_step") if started else None,
        "final_status": finished[-1]["status"] if finished else None,
        "peak_nvml_used_bytes": nvml.peak,
        "nvml_baseline_bytes": nvml.baseline,
        **engine_peak(events),
    }


def generate(name: str, args: list[str], out: Path, log: Path, timeout: float) -> dict[str, Any]:
    folder = out / f"gen-{name}"
    code, wall = engine(
        "generate", *args, "--prompt", PROMPT, "--num-images", "1", "--output-dir", str(folder),
        log=log, timeout=timeout,
    )  # fmt: skip
    pngs = [p for p in folder.glob("*.png") if p.name != "grid.png"] if folder.is_dir() else []
    return {"case": f"generate_{name}", "ok": code == 0 and len(pngs) == 1, "rc": code,
            "wall_s": round(wall, 1), "images": len(pngs)}  # fmt: skip


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="the tiny model at 32 px (CPU check)")
    ap.add_argument("--out", default="/tmp/gpu-e2e", help="work folder (runs, images, log)")
    ap.add_argument("--json", help="where the results go (default OUT/e2e.json)")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per command")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
    )
    out = Path(args.out)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = out / "log.txt"
    t0 = time.monotonic()
    if args.tiny:
        from engine.tiny import ensure_tiny

        base = ensure_tiny()
    else:
        from benchmarks.sd15_arch import ensure_sd15_arch

        base = ensure_sd15_arch()
    model, images = base / "model", base / "images"
    built_s = time.monotonic() - t0
    configs = cases(out, model, images, args.tiny)
    claims = fits_claims()
    results: list[dict[str, Any]] = []

    def report(entry: dict[str, Any]) -> None:
        results.append(entry)
        peak = entry.get("peak_nvml_used_bytes")
        peak_text = f", peak {peak / 2**30:.2f} GiB (NVML)" if isinstance(peak, int) else ""
        status = "ok" if entry["ok"] else f"FAILED (rc {entry['rc']}; see {log})"
        print(f"{entry['case']}: {status} in {entry['wall_s']} s{peak_text}", flush=True)

    for name, sample in (("full", "sd15-full.yaml"), ("lora", "sd15-lora.yaml")):
        try:
            entry = train(name, configs[name], log, args.timeout)
        except Exception as exc:  # noqa: BLE001 - one failed case leaves the others' figures
            entry = {"case": name, "ok": False, "rc": repr(exc), "wall_s": None}
        claim = claims.get(sample, {})
        entry.update(sample_config=sample, fits_claim=claim.get("claim"))
        peak = entry.get("peak_nvml_used_bytes")
        if isinstance(peak, int) and claim.get("gib"):
            entry["fits_claim_holds"] = peak <= claim["gib"] * 2**30
        report(entry)
    try:
        report(stop_and_resume(configs["fp16"], log, args.timeout))
    except Exception as exc:  # noqa: BLE001
        report({"case": "fp16_stop_resume", "ok": False, "rc": repr(exc), "wall_s": None})

    full_run = next((r.get("run_dir") for r in results if r["case"] == "full"), None)
    lora_run = next((r.get("run_dir") for r in results if r["case"] == "lora"), None)
    lora_file = Path(lora_run or "-") / "final" / "pytorch_lora_weights.safetensors"
    for name, gen_args in (
        ("final", ["--run", str(full_run)]),
        ("checkpoint", ["--run", str(full_run), "--checkpoint", "latest"]),
        ("lora", ["--model", str(model), "--lora", str(lora_file)]),
    ):
        try:
            report(generate(name, gen_args, out, log, args.timeout))
        except Exception as exc:  # noqa: BLE001
            report({"case": f"generate_{name}", "ok": False, "rc": repr(exc), "wall_s": None})

    summary = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "mode": "tiny (CPU check, not a measurement)" if args.tiny else "sd15-arch 512 px",
        "model_build_s": round(built_s, 1),
        "total_s": round(time.monotonic() - t0, 1),
        "all_ok": all(r["ok"] for r in results),
        "results": results,
    }
    target = Path(args.json) if args.json else out / "e2e.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{'all ok' if summary['all_ok'] else 'FAILURES'} in {summary['total_s']} s -> {target}")
    return 0 if summary["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
