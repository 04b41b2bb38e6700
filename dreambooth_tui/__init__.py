"""`dreambooth-tui`, the console script: the app (no verb, or a config path), `demo`, and the
engine's headless verbs.

It sits above both packages so that neither reaches into the other: the engine (engine/) never
imports the app (tui/), and the app imports only the engine's contract modules
(tests/test_import_boundary.py). Verbs go to engine.cli; `demo` is prepared there and opened here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")


def is_app_call(argv: list[str], verbs: tuple[str, ...]) -> bool:
    """No verb, a config path, or only `--images`: open the app."""
    return (
        not argv or (argv[0] not in verbs and not argv[0].startswith("-")) or argv[0] == "--images"
    )


def open_app(
    config_path: Path | None = None, *, demo: bool = False, images: str | None = None
) -> int:
    """Run the app until it quits; its exit code."""
    from tui.app import run_app

    return run_app(config_path=config_path, demo=demo, images=images) or 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from engine.cli import VERBS, fail
    from engine.cli import main as engine_main

    if not is_app_call(argv, VERBS):
        return engine_main(argv, open_app=open_app)
    parser = argparse.ArgumentParser(prog="dreambooth-tui")
    parser.add_argument("config", nargs="?")
    parser.add_argument("--images", choices=IMAGE_PROTOCOLS)
    args = parser.parse_args(argv)
    config = Path(args.config) if args.config else None
    if config is not None and not config.exists():
        return fail(f"{config}: config file not found")
    return open_app(config, images=args.images)
