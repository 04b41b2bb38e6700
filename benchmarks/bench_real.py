"""The engine against diffusers' real DreamBooth scripts, each as its own process.

Both train the same model folder on the same images, prompt, resolution, batch, precision,
optimizer and learning rate. The scripts get the flags a careful user sets
(benchmarks/real_scripts.py: pre-computed text embeddings, grads set to None, TF32 on a GPU,
8-bit Adam and gradient checkpointing where the engine uses them); the engine runs as
`python -m engine run RUN_DIR` does, with sampling off (the scripts validate nothing either).
Both run under benchmarks/run_wrapped.py, which reads the process's peak memory at the end and
stops each one where its final save begins (training is over by then).

Steps/s is steady state: from the time step `--warmup` finished to the time the last one did,
read from the script's progress bar (tqdm's `N/M [` lines, timestamped as they are written) and
from the engine's `step` events (their `t`). The spread is over the per-step times between those
updates; `--repeats N` runs each side N times, alternating which goes first.

    python -m benchmarks.real_scripts prepare --git CLONE --ref v0.40.0-release   # once
    python -m benchmarks.bench_real --model tiny --resolution 32 --steps 10 --warmup 3
    python -m benchmarks.bench_real --model sd15-arch --resolution 512 --mixed-precision bf16 \\
        --method full --steps 30 --warmup 5 --json out.json
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
from benchmarks.real_scripts import BIG, DEST, script_argv, source_info

# Where each side's training is over: the engine samples at its last step (the config needs a
# prompt) and then saves; the scripts load a pipeline to save (full) or to run inference (LoRA).
ENGINE_STOPS = ["engine.training.samples:sample", "engine.training.final:save_final"]
SCRIPT_STOPS = ["diffusers:DiffusionPipeline.from_pretrained"]


#: The SDXL models the shared --model takes: diffusers' SD 1.x script cannot train them.
SDXL_MODELS = ("tiny-sdxl", "sdxl-arch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_real", description=__doc__.split("\n\n")[0])
    add_training_args(p, steps=20, warmup=3)
    p.add_argument("--torch-compile", action="store_true", help="train.torch_compile (engine)")
    p.add_argument("--repeats", type=int, default=1, help="processes per side")
    p.add_argument("--timeout", type=float, default=600, help="seconds per process")
    p.add_argument("--scripts", default=str(DEST), help="folder from `real_scripts prepare`")
    p.add_argument("--threads", type=int, default=None, help="OMP/torch CPU threads")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.model in SDXL_MODELS:
        p.error(
            f"--model {args.model}: the real scripts compared here are the SD 1.x/2.x ones; "
            "for SDXL use benchmarks.bench_train (the engine alone)"
        )
    return args


# ------------------------------------------------------------------------------ timing
def steady_state(points: list[tuple[float, int]], warmup: int) -> dict[str, Any]:
    """Steps/s and per-step spread from (time, steps done) pairs, after `warmup` steps."""
    pts = sorted((t, n) for t, n in points if n >= warmup)
    if len(pts) < 2 or pts[-1][1] == pts[0][1]:
        return {"error": f"fewer than 2 progress updates after step {warmup}", "points": len(pts)}
    (t0, n0), (t1, n1) = pts[0], pts[-1]
    per_step = [
        (tb - ta) / (nb - na) for (ta, na), (tb, nb) in zip(pts, pts[1:], strict=False) if nb > na
    ]
    rate = (n1 - n0) / (t1 - t0)
    return {
        "steps_per_s": rate,
        "step_ms": 1000 / rate,
        "step_ms_median": median(per_step) * 1000,
        "step_ms_min": min(per_step) * 1000,
        "step_ms_max": max(per_step) * 1000,
        "timed_steps": n1 - n0,
        "updates": len(pts),
    }


def engine_points(run_dir: Path) -> list[tuple[float, int]]:
    path = run_dir / "events.jsonl"
    out = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("type") == "step":
                out.append((float(ev["t"]), int(ev["step"])))
    return out


def compile_log(run_dir: Path) -> str | None:
    """The engine's `compiled ... in Xs (the first step; cache ...)` line, if it compiled."""
    path = run_dir / "events.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("type") == "log" and str(ev.get("message", "")).startswith("compiled "):
            return ev["message"]
    return None


# ------------------------------------------------------------------------------ the sides
def engine_config(args: argparse.Namespace, model_dir: Path, images: Path, out: Path):
    from benchmarks.bench_train import make_config

    cfg = make_config(args, model_dir, images, out)
    cfg.train.max_train_steps = args.warmup + args.steps
    cfg.train.validation_steps = BIG  # the wrapper stops the engine where it would sample
    return cfg


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    return env


def run_side(
    args: argparse.Namespace,
    name: str,
    target: list[str],
    stops: list[str],
    result_json: Path,
    log: Path,
) -> dict[str, Any]:
    cmd = [args.python, "-m", "benchmarks.run_wrapped", "--out", str(result_json)]
    for stop in stops:
        cmd += ["--stop-at", stop]
    cmd += target
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        try:
            proc = subprocess.run(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_env(args), cwd=ROOT, timeout=args.timeout,
            )  # fmt: skip
            rc: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    out: dict[str, Any] = {"side": name, "rc": rc, "process_s": time.perf_counter() - t0}
    if result_json.exists():
        out.update(json.loads(result_json.read_text(encoding="utf-8")))
    if rc != 0 or out.get("error"):
        out["log_tail"] = log.read_text(encoding="utf-8", errors="replace")[-3000:]
    return out


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    from benchmarks.bench_train import model_and_images
    from engine.launch import prepare_run

    cuda = _cuda_available(args)
    scripts = Path(args.scripts)
    source = source_info(scripts)
    model_dir, images = model_and_images(args)
    work = Path(tempfile.mkdtemp(prefix="bench-real-"))
    cfg = engine_config(args, model_dir, images, work / "runs")
    total = args.warmup + args.steps
    script_name, flags = script_argv(cfg, model_dir, images, work / "script-out", total, cuda)
    log(f"{args.method} · {args.resolution}px · batch {args.batch_size} · {args.mixed_precision}"
        f" · {args.optimizer} · checkpointing {args.gradient_checkpointing} · {total} steps"
        f" · script {script_name} ({source.get('ref')})")  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"engine": [], "script": []}
    for r in range(args.repeats):
        order = ("engine", "script") if r % 2 == 0 else ("script", "engine")
        for side in order:
            if side == "engine":
                run_dir = prepare_run(cfg)
                res = run_side(
                    args, side, ["--module", "engine", "--", "run", str(run_dir)], ENGINE_STOPS,
                    work / f"engine-{r}.json", work / f"engine-{r}.log",
                )  # fmt: skip
                res["progress"] = engine_points(run_dir)
                res["compile_log"] = compile_log(run_dir)
            else:
                shutil.rmtree(work / "script-out", ignore_errors=True)
                res = run_side(
                    args, side, ["--script", str(scripts / script_name), "--", *flags],
                    SCRIPT_STOPS, work / f"script-{r}.json", work / f"script-{r}.log",
                )  # fmt: skip
            res["steady"] = steady_state(res.get("progress", []), args.warmup)
            runs[side].append(res)
            s = res["steady"]
            log(f"  {side:7} rc {res['rc']} · "
                + (f"{s['steps_per_s']:.2f} steps/s" if "steps_per_s" in s else s["error"])
                + f" · peak {res.get('peak_mem', 0) / 2**30:.2f} GiB · {res['process_s']:.0f}s")  # fmt: skip
    result: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "json"}}
    for side, rs in runs.items():
        rates = [x["steady"]["steps_per_s"] for x in rs if "steps_per_s" in x["steady"]]
        result[side] = {
            "steps_per_s": median(rates) if rates else None,
            "steps_per_s_runs": rates,
            "peak_mem": max((x.get("peak_mem") or 0) for x in rs) or None,
            "peak_reserved": max((x.get("peak_reserved") or 0) for x in rs) or None,
            "runs": [{k: v for k, v in x.items() if k != "progress"} for x in rs],
        }
    e, s = result["engine"], result["script"]
    result["ratio"] = (
        e["steps_per_s"] / s["steps_per_s"] if e["steps_per_s"] and s["steps_per_s"] else None
    )
    result["mem_ratio"] = e["peak_mem"] / s["peak_mem"] if e["peak_mem"] and s["peak_mem"] else None
    result["script"]["name"] = script_name
    result["script"]["flags"] = flags
    result["script"]["source"] = source
    result["device"] = machine("cuda" if cuda else "cpu")
    result["notes"] = (
        "steps/s: steady state from step `warmup` to the last; peak: the process's "
        "torch.cuda.max_memory_allocated (CPU: peak RSS) up to the start of the final save"
    )
    shutil.rmtree(work, ignore_errors=True)
    return result


def _cuda_available(args: argparse.Namespace) -> bool:
    import torch

    return torch.cuda.is_available()


def report(result: dict[str, Any]) -> str:
    gib = 1 << 30
    lines = [f"{'':8} {'steps/s':>9} {'runs':>22} {'peak GiB':>9}"]
    for side in ("engine", "script"):
        s = result[side]
        rate = f"{s['steps_per_s']:9.2f}" if s["steps_per_s"] else "      n/a"
        runs = ", ".join(f"{x:.2f}" for x in s["steps_per_s_runs"])
        peak = f"{s['peak_mem'] / gib:9.2f}" if s["peak_mem"] else "      n/a"
        lines.append(f"{side:8} {rate} {runs:>22} {peak}")
    if result["ratio"]:
        lines.append(f"engine/script steps/s {result['ratio']:.2f}x · peak memory "
                     f"{(result['mem_ratio'] or float('nan')):.2f}x")  # fmt: skip
    d = result["device"]
    lines.append(f"{d.get('gpu') or d['cpu']} · load {d['load_avg']} · {d['date']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_json(args.json, result)
    print(report(result))
    ok = result["engine"]["steps_per_s"] and result["script"]["steps_per_s"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
