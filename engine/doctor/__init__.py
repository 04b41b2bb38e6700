"""The dataset check ("doctor") that the TUI's Data screen and `dreambooth-tui check` show.

For each image in a folder: can it be decoded, how big is it against the training resolution,
is it a duplicate (identical pixels, or a near-duplicate by a 64-bit difference hash) of an
earlier one, is its aspect ratio extreme, does it have transparency, an EXIF rotation, no colour.

Imported by the TUI process (it runs check_folder in a worker thread), so this module uses only
the standard library and Pillow. Quick: JPEGs are decoded at a reduced scale (still in full, so
truncation is still caught), and everything after decoding works on tiny thumbnails.
"""

from __future__ import annotations

from pathlib import Path

from .checks import DUPLICATE_MAX_DISTANCE, check_folder, dhash, hamming
from .report import PROBLEM_LABELS, PROBLEM_SEVERITY, DatasetReport, ImageInfo, Stats, severity

__all__ = [
    "DUPLICATE_MAX_DISTANCE",
    "PROBLEM_LABELS",
    "PROBLEM_SEVERITY",
    "DatasetReport",
    "ImageInfo",
    "Stats",
    "check_folder",
    "dhash",
    "folder_summary",
    "hamming",
    "severity",
]


def folder_summary(folder: Path | str, *, resolution: int = 512) -> str:
    """One line for the CLI's `check`: the headline and the count of each problem kind."""
    folder = Path(folder)
    try:
        report = check_folder(folder, resolution=resolution)
    except OSError as exc:
        return f"{folder}: cannot read the folder ({exc.strerror or exc})"
    parts = [f"{folder.name or folder}: {report.headline()}"]
    counts = ", ".join(f"{len(paths)} {code}" for code, paths in report.problems.items())
    if counts:
        parts.append(counts)
    return " · ".join(parts)
