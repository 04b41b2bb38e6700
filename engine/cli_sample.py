"""`dreambooth-tui sample RUN_DIR [--prompt P ...]`: ask a live run for samples at its next step.

It writes the run's sample request (engine.sample_request), which the engine takes at its next
step boundary; the samples appear in RUN_DIR/samples/step-NNNNNN-asked/ and as `sample` events
(the app shows them with the others). Works over shared storage: no signal is sent. Torch-free.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sample",
        help="ask a live run for validation samples at its next step (it keeps training)",
        description="Ask the engine of a live run for validation samples at its next step, "
        "without stopping it. Without --prompt it samples the config's evaluation.prompts.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a live training run folder")
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="P",
        help="a prompt to sample (repeat for several; default: evaluation.prompts)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from engine.sample_request import SampleRequestError, request_samples

    try:
        path = request_samples(args.run_dir, args.prompt)
    except SampleRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    what = f"{len(args.prompt)} prompt(s)" if args.prompt else "the config's prompts"
    print(f"asked for samples with {what} at the next step ({path})")
    return 0
