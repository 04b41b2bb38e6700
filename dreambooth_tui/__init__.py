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
        if config.suffix or any(sep in args.config for sep in "/\\"):  # a path, not a word
            return fail(f"{config}: config file not found")
        return fail(not_a_verb(args.config, VERBS))
    return open_app(config, images=args.images)


INTERNAL_VERBS = ("run", "generate-worker")  # what the app launches, not for users


def not_a_verb(word: str, verbs: tuple[str, ...]) -> str:
    """The error for a bare word that is neither a verb nor a file (`dreambooth-tui init`):
    the closest verb, or the verbs and how a config is made."""
    import difflib

    from engine import sample_configs_dir

    public = [v for v in verbs if v not in INTERNAL_VERBS]
    close = difflib.get_close_matches(word, public, n=1)
    if close:
        return f"{word}: no such verb or config file; did you mean '{close[0]}'?"
    return (
        f"{word}: no such verb or config file (verbs: {', '.join(public)}). A new config: "
        f"open the app (`dreambooth-tui`), l picks a sample config, ctrl+s saves it; or copy "
        f"one from {sample_configs_dir()}"
    )
