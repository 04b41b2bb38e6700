"""Preparing the demo: `dreambooth-tui demo` (its config written, the builtin model it names built
in a child process, then the app opened by the console script) and `tiny` (the builtin models)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from engine import sample_configs_dir
from engine.cli import fail


def ensure_tiny_subprocess(model: str = "builtin:tiny") -> int:
    """Build the tiny model (and builtin:tiny-shapes when MODEL is it) in a child process, so this
    (app) process never imports torch."""
    from engine.sources import BUILTIN_TINY_SHAPES, builtin_model_path
    from engine.tiny import is_built

    shapes = model == BUILTIN_TINY_SHAPES
    if is_built() and (not shapes or (builtin_model_path(model) / "model_index.json").exists()):
        return 0
    if not is_built():  # builtin:tiny-shapes says so itself, when it builds
        print("building the tiny demo model (once, about 15 s)...", file=sys.stderr)
    command = [sys.executable, "-m", "engine", "tiny", "--cache", *(["--shapes"] if shapes else [])]
    return subprocess.run(command, stdin=subprocess.DEVNULL).returncode


def demo_model(config: Path) -> str:
    """The model a demo config names (the tiny model when it cannot be read: `train` says why)."""
    from engine.config import ConfigError, read_config

    try:
        return read_config(config)[0].train.model
    except (ConfigError, OSError):
        return "builtin:tiny"


def cmd_demo(args: argparse.Namespace) -> int:
    config = Path(args.config or "dreambooth-demo.yaml")
    if not config.exists():
        text = (sample_configs_dir() / "demo.yaml").read_text(encoding="utf-8")
        # its comments name the file they are in: the copy's own name, not the sample's
        config.write_text(text.replace("sample_configs/demo.yaml", str(config)), encoding="utf-8")
        print(f"wrote {config} (the demo config: tiny model, CPU)", file=sys.stderr)
    if ensure_tiny_subprocess(demo_model(config)):
        return fail("could not build the tiny demo model", 1)
    if args.no_app:
        return 0
    if args.open_app is None:  # `python -m engine demo`: the engine does not open the app
        print(f"open it with: dreambooth-tui demo {config}", file=sys.stderr)
        return 0
    return args.open_app(config, demo=True, images=args.images)


def cmd_tiny(args: argparse.Namespace) -> int:
    from engine import tiny

    if args.shapes:
        from engine import tiny_shapes

        cached = args.cache or not args.dir
        folder = tiny_shapes.ensure_tiny_shapes() if cached else tiny_shapes.build(args.dir)
        print(f"tiny-shapes model: {folder / 'model'}")
        return 0
    if args.cache or not args.dir:
        folder = tiny.ensure_tiny(args.dir or None)
    else:
        folder = tiny.build(args.dir)
    print(f"tiny model: {folder / 'model'}\nimages:     {folder / 'images'}")
    return 0
