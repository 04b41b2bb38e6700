"""`dreambooth-tui push-dataset` and `push-model` (also `python -m engine ...`).

Importing this module is cheap (no torch, no datasets): engine.hub is imported when a verb runs.
"""

from __future__ import annotations

import argparse
import sys


def _common(p: argparse.ArgumentParser, default_dir: str) -> None:
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="write what would be uploaded into a folder and list it; no network",
    )
    p.add_argument(
        "--output-dir", metavar="DIR", help=f"the dry run's folder (default: {default_dir})"
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "push-dataset",
        help="upload an image folder (with .txt captions) as a Hub dataset",
        description="Build an image dataset (image column, plus text where .txt captions "
        "exist) from FOLDER and push it to the Hub dataset repo REPO_ID. The token comes from "
        "HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("repo_id", metavar="REPO_ID", help="NAMESPACE/NAME")
    _common(p, "FOLDER-hub-dry-run beside the folder")
    p.set_defaults(func=run_push_dataset)

    p = subparsers.add_parser(
        "push-model",
        help="upload a run's final model or LoRA with a model card",
        description="Upload the final model (or LoRA file) of RUN_DIR to the Hub model repo "
        "REPO_ID with a model card (README.md) and a grid of the run's samples. The token "
        "comes from HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("repo_id", metavar="REPO_ID", help="NAMESPACE/NAME")
    _common(p, "RUN_DIR/hub-dry-run")
    p.set_defaults(func=run_push_model)


def _quiet() -> None:
    from engine.cli_generate import quiet_libraries

    quiet_libraries()


def _log(line: str) -> None:
    print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout, flush=True)


def _run(push, target: str, args: argparse.Namespace) -> int:
    _quiet()
    from engine.hub import HubError

    try:
        push(
            target,
            args.repo_id,
            private=args.private,
            dry_run=args.dry_run,
            output_dir=args.output_dir,
            log=_log,
        )
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def run_push_dataset(args: argparse.Namespace) -> int:
    from engine.hub import push_dataset

    return _run(push_dataset, args.folder, args)


def run_push_model(args: argparse.Namespace) -> int:
    from engine.hub import push_model

    return _run(push_model, args.run_dir, args)
