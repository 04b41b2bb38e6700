"""`dreambooth-tui export RUN_DIR`: a run's model in the format another tool loads.

Importing this module is cheap (no torch): the conversion is imported when the verb runs.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli_generate import _checkpoint, quiet_libraries

FORMAT_HELP = (
    "kohya: a LoRA for AUTOMATIC1111/Forge/ComfyUI; single-file: one original-layout "
    ".safetensors (full runs, or a LoRA with --fuse); diffusers: a diffusers copy"
)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="write a run's model for AUTOMATIC1111, ComfyUI or diffusers",
        description="Write a run's final model (or a checkpoint) in another tool's format. "
        "Without --output the file goes to RUN_DIR/exports/. An existing output is never "
        "replaced.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder")
    p.add_argument(
        "--format", required=True, choices=("kohya", "single-file", "diffusers"), help=FORMAT_HELP
    )
    p.add_argument(
        "--checkpoint",
        metavar="STEP",
        type=_checkpoint,
        help="export this checkpoint (a step or 'latest') instead of final/",
    )
    p.add_argument(
        "--fuse",
        action="store_true",
        help="a LoRA run: merge the LoRA into its base model (a full model)",
    )
    p.add_argument(
        "--dtype",
        choices=("fp16", "bf16", "fp32"),
        default="fp16",
        help="weights' precision (default fp16)",
    )
    p.add_argument(
        "--output",
        metavar="PATH",
        help="the file (or folder) to write; a file given an existing folder goes into it, "
        "under its default name",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.errors import DreamboothError
    from engine.export import resolve_request

    try:
        req = resolve_request(
            args.run_dir, args.format, args.checkpoint, args.fuse, args.dtype, args.output
        )
        quiet_libraries()
        from engine.export.run import export

        out = export(req)
    except DreamboothError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {out}")
    return 0
