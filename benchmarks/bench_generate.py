"""Generation: images/s of engine.generate against a plain diffusers StableDiffusionPipeline call.

Both load the same model folder in the same dtype on the same device and make the same images:
the same prompts, seeds (one CPU generator per image, seed + i), scheduler (DPM-Solver++ 2M by
default), steps, guidance scale, size and batch size. The engine's figure includes everything
`dreambooth-tui generate` does after loading (PNGs with metadata, JSON sidecars, the grid,
events.jsonl); the plain call only returns PIL images. Rounds alternate between the two (ABBA);
the median round gives images/s. Loading time is reported beside it.

    python -m benchmarks.bench_generate --model tiny --images 4 --steps 25 --rounds 6
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

from benchmarks.common import machine, median, write_json

PROMPT = "a photo of sks shape on the beach"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="tiny | sd15-arch | a diffusers folder")
    p.add_argument("--images", type=int, default=4, help="images per round")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, default=25, help="inference steps")
    p.add_argument("--scheduler", default="dpmpp_2m")
    p.add_argument("--guidance-scale", type=float, default=7.5)
    p.add_argument("--size", type=int, default=None, help="height = width (default: the model's)")
    p.add_argument("--rounds", type=int, default=6, help="timed rounds per side")
    p.add_argument("--dtype", default=None, help="fp32 | fp16 | bf16 (default: the engine's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def model_dir(name: str) -> Path:
    if name == "tiny":
        from engine.tiny import ensure_tiny

        return ensure_tiny() / "model"
    if name == "sd15-arch":
        from benchmarks.sd15_arch import ensure_sd15_arch

        return ensure_sd15_arch() / "model"
    return Path(name)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    import torch
    from diffusers import StableDiffusionPipeline

    from engine import generate as gen
    from engine.generate import pipeline as gen_pipeline
    from engine.schedulers import make_scheduler

    if args.threads:
        torch.set_num_threads(args.threads)
    device = gen.default_device()
    dtype = gen_pipeline._dtype(args.dtype) or gen.default_dtype(device)
    folder = model_dir(args.model)
    size = args.size or (32 if args.model == "tiny" else 512)
    out_root = Path(tempfile.mkdtemp(prefix="bench-generate-"))

    t0 = time.perf_counter()
    engine_pipe = gen.load_pipeline(model=str(folder), device=device, dtype=dtype)
    sync(device)
    engine_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = StableDiffusionPipeline.from_pretrained(
        str(folder), torch_dtype=dtype, safety_checker=None, requires_safety_checker=False
    ).to(device)
    plain.set_progress_bar_config(disable=True)
    plain.scheduler = make_scheduler(args.scheduler, plain.scheduler.config)
    sync(device)
    plain_load = time.perf_counter() - t0
    log(f"loaded: engine {engine_load:.2f}s, plain {plain_load:.2f}s ({device}, {dtype})")

    def engine_round(r: int) -> None:
        opts = gen.resolve_options(
            model=str(folder),
            prompts=[PROMPT],
            num_images=args.images,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance_scale,
            seed=0,
            scheduler=args.scheduler,
            height=size,
            width=size,
            batch_size=args.batch_size,
            output_dir=out_root / f"round-{r:03d}",
            device=device,
        )
        gen.generate(opts, pipe=engine_pipe, log=lambda _m: None)

    def plain_round(r: int) -> None:
        for start in range(0, args.images, args.batch_size):
            n = min(args.batch_size, args.images - start)
            generators = [torch.Generator("cpu").manual_seed(start + i) for i in range(n)]
            _images = plain(
                [PROMPT] * n,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance_scale,
                height=size,
                width=size,
                generator=generators,
            ).images

    sides = {"engine": engine_round, "plain": plain_round}
    for fn in sides.values():  # warm-up
        fn(-1)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.rounds):
        order = ("engine", "plain") if r % 2 == 0 else ("plain", "engine")
        for name in order:
            gc.collect()
            sync(device)
            t0 = time.perf_counter()
            sides[name](r)
            sync(device)
            times[name].append(time.perf_counter() - t0)

    def summary(name: str, load_s: float) -> dict[str, Any]:
        t = median(times[name])
        return {
            "images_per_s": args.images / t,
            "round_s": t,
            "round_s_all": [round(x, 4) for x in times[name]],
            "load_s": load_s,
        }

    result = {
        "engine": summary("engine", engine_load),
        "plain": summary("plain", plain_load),
        "config": {**{k: v for k, v in vars(args).items() if k != "json"}, "size": size},
        "device": {
            **machine(device),
            "device": device,
            "dtype": str(dtype),
            "threads": torch.get_num_threads(),
        },
    }
    result["ratio"] = result["engine"]["images_per_s"] / result["plain"]["images_per_s"]
    shutil.rmtree(out_root, ignore_errors=True)
    return result


def report(result: dict[str, Any]) -> str:
    e, p = result["engine"], result["plain"]
    d = result["device"]
    return "\n".join(
        [
            f"engine.generate   {e['images_per_s']:7.2f} images/s (load {e['load_s']:.2f}s)",
            f"plain pipeline    {p['images_per_s']:7.2f} images/s (load {p['load_s']:.2f}s)",
            f"ratio (engine/plain): {result['ratio']:.3f}x",
            f"{d.get('gpu') or d['cpu']} · load {d['load_avg']} · torch {d.get('torch')} · "
            f"{d['date']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_json(args.json, result)
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
