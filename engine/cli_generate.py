"""`dreambooth-tui generate` / `python -m engine generate`.

Importing this module is cheap (no torch): engine.generate is imported when the verb runs.
"""

from __future__ import annotations

import argparse
import sys

from engine.schedulers import SCHEDULERS


def _checkpoint(value: str) -> int | str:
    if value == "latest":
        return value
    try:
        step = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a step number or 'latest'") from None
    if step < 0:
        raise argparse.ArgumentTypeError("a step number or 'latest'")
    return step


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "generate",
        help="make images with a trained run, a LoRA or any Stable Diffusion model",
        description="Make images with a trained run (its final model or a checkpoint), a LoRA "
        "file on a base model, or any hub id or local diffusers folder. Without a value, "
        "options come from the run's evaluation section (or the config defaults). Image i "
        "uses seed+i.",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    w = subparsers.add_parser(
        "generate-worker",
        help="(internal) the app's warm generate process: requests on stdin, JSON lines",
        description="Reads generate requests as JSON lines on stdin and keeps the last pipeline "
        "loaded between them (engine/generate/worker.py has the protocol). Exits when stdin "
        "closes, its parent goes, or after --idle-timeout seconds without a request.",
    )
    w.add_argument("--idle-timeout", type=float, default=300.0, metavar="SECONDS")
    w.set_defaults(func=run_worker)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `generate` options (the command line's and a worker request's)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN_DIR", help="a training run folder")
    src.add_argument(
        "--model", metavar="ID_OR_DIR", help="a hub id, a local diffusers folder or builtin:tiny"
    )
    p.add_argument("--lora", metavar="FILE", help="LoRA safetensors to apply (with --model)")
    p.add_argument(
        "--checkpoint",
        metavar="STEP",
        type=_checkpoint,
        help="with --run: use the checkpoint of this step (or 'latest') instead of the final model",
    )
    p.add_argument(
        "--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt (repeatable)"
    )
    p.add_argument("--prompts-file", metavar="FILE", help="prompts, one per line (# comments)")
    p.add_argument("--negative-prompt", metavar="TEXT")
    p.add_argument("--num-images", type=int, metavar="N", help="images per prompt")
    p.add_argument("--num-inference-steps", type=int, metavar="N")
    p.add_argument("--guidance-scale", type=float, metavar="X")
    p.add_argument("--seed", type=int, help="image i uses seed+i")
    p.add_argument("--scheduler", choices=SCHEDULERS)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per forward")
    p.add_argument(
        "--output-dir",
        metavar="DIR",
        help="where images go (default: RUN_DIR/generated/<yyyymmdd-hhmmss> with --run, "
        "else <evaluation.output_dir>/<yyyymmdd-hhmmss>)",
    )
    p.add_argument("--device", help="cuda, cuda:1, cpu, mps (default: the GPU if any)")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), help="default: bf16/fp16 on GPU")
    p.add_argument("--show", action="store_true", help="print the images in the terminal")
    p.add_argument(
        "--images",
        choices=("auto", "kitty", "sixel", "halfcell", "unicode"),
        help="how --show draws (default: $DREAMBOOTH_TUI_IMAGES, else what the terminal has)",
    )


def parse_request(argv: list[str]) -> argparse.Namespace:
    """`generate` arguments (a worker request) parsed as the command line would be. Raises
    GenerateError (exit code 2) instead of exiting."""
    from engine.generate.errors import usage_error

    parser = argparse.ArgumentParser(prog="generate", add_help=False, exit_on_error=False)
    add_arguments(parser)

    def refuse(message: str):
        raise usage_error(f"bad request: {message}")

    parser.error = refuse  # type: ignore[method-assign]
    try:
        return parser.parse_args(argv)
    except argparse.ArgumentError as exc:
        raise usage_error(f"bad request: {exc}") from None


def run_worker(args: argparse.Namespace) -> int:
    quiet_libraries()
    from engine.generate.worker import serve

    return serve(idle_timeout=args.idle_timeout)


def quiet_libraries() -> None:
    """Keep library chatter (bitsandbytes, transformers, diffusers warnings) off stderr, so a
    failure reads as the one line we print."""
    import logging
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    # huggingface_hub sets its logger's level from this when first imported (after us): without
    # it, every retry of a failing push prints two lines ("HTTP Error 500 thrown ...")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")
    for name in ("bitsandbytes", "transformers", "diffusers", "huggingface_hub", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)


def options_from_args(args: argparse.Namespace):
    """The GenerateOptions of parsed `generate` arguments. Raises GenerateError (one line)."""
    from engine.generate import resolve_options
    from engine.generate.errors import usage_error

    if args.lora and args.run:
        raise usage_error("--lora goes with --model; a LoRA run's file is used already")
    if args.checkpoint is not None and not args.run:
        raise usage_error("--checkpoint needs --run RUN_DIR")
    return resolve_options(
        run_dir=args.run,
        model=args.model,
        lora=args.lora,
        checkpoint=args.checkpoint,
        prompts=args.prompts,
        prompts_file=args.prompts_file,
        negative_prompt=args.negative_prompt,
        num_images=args.num_images,
        num_inference_steps=args.num_inference_steps,
        guidance_scale=args.guidance_scale,
        seed=args.seed,
        scheduler=args.scheduler,
        height=args.height,
        width=args.width,
        batch_size=args.batch_size,
        output_dir=args.output_dir,
        device=args.device,
        dtype=args.dtype,
        show=args.show,
        images=args.images,
    )


def run(args: argparse.Namespace) -> int:
    quiet_libraries()
    from engine.generate import GenerateError, generate

    try:
        opts = options_from_args(args)
        outputs = generate(opts)
    except GenerateError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    n = len(outputs) - 1
    print(f"{n} image{'' if n == 1 else 's'} and a grid in {opts.output_dir}")
    return 0
