"""`dreambooth-tui check CONFIG`: validate the config and the data, estimate the run; train nothing.

It prints what `train` would use (each data folder's report, aspect-ratio buckets, the model and
the run's summary) and the estimate of its peak GPU memory and time (engine.estimate), and exits
2 with one line where `train` would refuse. Torch is imported only by the preflight's device
probe (engine.config.checks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli import ACCELERATE_CONFIG_HELP, fail, verb_config


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("check", help="validate the config and the data; train nothing")
    p.add_argument("config")
    p.add_argument("--accelerate-config", help=ACCELERATE_CONFIG_HELP)
    p.set_defaults(func=cmd_check)
    return p


def cmd_check(args: argparse.Namespace) -> int:
    cfg = verb_config(args)
    if cfg is None:
        return 2
    from engine.config import summary
    from engine.families import family_of

    tc = cfg.train
    family = family_of(tc.model, tc.revision)
    code, num_images = check_data(cfg, family)
    if code:
        return code
    print(f"train.model: {tc.model} ({family.label})")
    print(summary(cfg, num_images, family))
    print_estimate(cfg)
    print("config OK")
    return 0


def check_data(cfg: Any, family: Any) -> tuple[int, int | None]:
    """Print each data folder's report (and its aspect-ratio buckets): (exit code, the number of
    usable instance images where counted); the code is 2 after one error line."""
    from engine.buckets import buckets_on
    from engine.doctor import check_folder
    from engine.doctor.buckets import bucket_lines, class_bucket_line, image_buckets
    from engine.model_family import bucket_step_of
    from engine.sources import builtin_path, is_builtin, is_local_path

    tc = cfg.train
    step = bucket_step_of(tc.model, tc.revision) if buckets_on(tc.aspect_buckets, family) else 0
    instance_buckets = None
    folders = [("train.instance_data", tc.instance_data)]
    if tc.prior_preservation:
        folders.append(("train.class_data", tc.class_data))
    num_images = None
    for key, value in folders:
        if is_builtin(value):
            value = str(builtin_path("images"))
            if not Path(value).is_dir():
                print(f"{key}: builtin:tiny (built at the first run)")
                continue
        if not is_local_path(value) and not Path(value).exists():
            print(f"{key}: Hub dataset '{value}' (checked when training starts)")
            continue
        if key == "train.class_data" and not Path(value).expanduser().is_dir():
            print(
                f"{key}: {value} (not there yet: the first run creates it and generates "
                f"{tc.num_class_images} class images with the base model)"
            )
            continue
        report = check_folder(Path(value).expanduser(), resolution=tc.resolution)
        if key == "train.instance_data":
            num_images = report.count
            if report.count == 0:
                return fail(f"{value}: {no_usable_image(report)} (see train.instance_data)"), None
            if tc.masked_loss and report.masks and report.masks.bad:
                mask, why = report.masks.bad[0]
                fix = "fix or remove it, or set train.masked_loss: false"
                return fail(f"{mask}: bad mask: {why}; {fix}"), None
        print(f"{key}: {value}")
        for line in report.summary_lines():
            print(f"  {line}")
        if key == "train.instance_data" and tc.masked_loss and not report.masks.found:
            print(
                f"warning: train.masked_loss: no image in {value} has a mask (<name>.mask.png "
                "or an alpha channel): every image counts fully",
                file=sys.stderr,
            )
        if step and key == "train.instance_data":
            instance_buckets = image_buckets(report, tc.resolution, step).values()
            print("\n".join(f"  {line}" for line in bucket_lines(report, tc.resolution, step)))
        elif step and instance_buckets:
            folder = Path(value).expanduser()
            print(f"  {class_bucket_line(folder, list(instance_buckets), tc, step)}")
    return 0, num_images


def no_usable_image(report: Any) -> str:
    """Why a folder has nothing to train on: no image file, or those there (named) unreadable."""
    kinds = ".jpg, .jpeg, .png, .webp or .bmp"
    bad = [info.name for info in report.images]
    if not bad:
        return f"no usable image; add {kinds} images"
    named = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return f"no usable image: {len(bad)} unreadable ({named}); add readable {kinds} images"


def print_estimate(cfg: Any) -> None:
    """The estimate's lines on stdout, a run that would not fit this GPU as a warning."""
    from engine.fit import report, this_gpu

    lines, warnings = report(cfg, this_gpu())
    print("\n".join(lines))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
