"""The dataset check's report: problem codes with their labels and severities, one ImageInfo
per image, and the DatasetReport with its headline and problem lines (standard library only)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .masks import MaskScan

__all__ = [
    "ERROR",
    "INFO",
    "PROBLEM_LABELS",
    "PROBLEM_SEVERITY",
    "WARNING",
    "DatasetReport",
    "ImageInfo",
    "Stats",
    "num",
    "severity",
]

ERROR = "error"
WARNING = "warning"
INFO = "info"
_SEVERITY_RANK = {ERROR: 0, WARNING: 1, INFO: 2}

# code -> short label, in display order (errors, then warnings, then information)
PROBLEM_LABELS: dict[str, str] = {
    "unreadable": "unreadable (skipped)",
    "tiny": "too small",
    "duplicate": "duplicate",
    "odd_aspect": "extreme aspect ratio",
    "small": "below training resolution (upscaled)",
    "alpha": "transparent (composited on white)",
    "exif_rotated": "EXIF-rotated (applied)",
    "grayscale": "grayscale",
}

PROBLEM_SEVERITY: dict[str, str] = {
    "unreadable": ERROR,
    "tiny": WARNING,
    "duplicate": WARNING,
    "odd_aspect": WARNING,
    "small": INFO,
    "alpha": INFO,
    "exif_rotated": INFO,
    "grayscale": INFO,
}


def severity(code: str) -> str:
    """ "error", "warning" or "info" for a problem code (unknown codes: "info")."""
    return PROBLEM_SEVERITY.get(code, INFO)


class Stats(NamedTuple):
    min: float
    median: float
    max: float


def _stats(values: list[float]) -> Stats | None:
    if not values:
        return None
    return Stats(min(values), statistics.median(values), max(values))


@dataclass
class ImageInfo:
    path: Path
    width: int | None = None  # as trained: after EXIF orientation; None when unreadable
    height: int | None = None
    mode: str | None = None  # the file's own mode ("RGB", "CMYK", "I;16", "P", ...)
    problems: list[str] = field(default_factory=list)  # codes, see PROBLEM_LABELS
    messages: list[str] = field(default_factory=list)  # one human sentence per problem
    caption: str | None = None  # the sibling .txt caption, if any
    duplicate_of: Path | None = None  # the earlier image this one duplicates
    error: str | None = None  # the ImageLoadError reason when unreadable
    dhash: int | None = None  # 64-bit difference hash of the image as trained

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def usable(self) -> bool:
        return "unreadable" not in self.problems

    @property
    def short_side(self) -> int | None:
        if self.width is None or self.height is None:
            return None
        return min(self.width, self.height)

    @property
    def aspect(self) -> float | None:
        """width / height."""
        if not self.width or not self.height:
            return None
        return self.width / self.height

    @property
    def severity(self) -> str | None:
        """The worst severity among this image's problems; None when it has none."""
        if not self.problems:
            return None
        return min((severity(c) for c in self.problems), key=_SEVERITY_RANK.__getitem__)

    def add(self, code: str, message: str) -> None:
        if code not in self.problems:
            self.problems.append(code)
            self.messages.append(message)

    def label(self, code: str) -> str:
        """The short label for one of this image's problems ("duplicate of a.png")."""
        if code == "duplicate" and self.duplicate_of is not None:
            return f"duplicate of {self.duplicate_of.name}"
        return PROBLEM_LABELS.get(code, code)

    def message_for(self, code: str) -> str | None:
        try:
            return self.messages[self.problems.index(code)]
        except ValueError:
            return None


def _names(paths: list[Path], limit: int = 3, label: Callable[[Path], str] | None = None) -> str:
    shown = ", ".join((label or _name)(p) for p in paths[:limit])
    if len(paths) > limit:
        shown += f", +{len(paths) - limit} more"
    return shown


def _name(path: Path) -> str:
    return path.name


def _duplicate_name(path: Path, original: Path | None) -> str:
    return path.name if original is None else f"{path.name} of {original.name}"


def num(value: float) -> str:
    """A size in a sentence: whole numbers without decimals."""
    return str(int(value)) if float(value).is_integer() else f"{value:.0f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class DatasetReport:
    folder: Path
    images: list[ImageInfo] = field(default_factory=list)  # every image-extension file, by name
    other_files: list[Path] = field(default_factory=list)  # non-hidden, non-image files
    resolution: int = 512
    masks: MaskScan | None = None  # the images' loss masks (engine.doctor.masks)

    @property
    def usable(self) -> list[ImageInfo]:
        return [i for i in self.images if i.usable]

    @property
    def count(self) -> int:
        """Usable images."""
        return len(self.usable)

    @property
    def unusable_count(self) -> int:
        return len(self.images) - self.count

    @property
    def captioned_count(self) -> int:
        return sum(1 for i in self.usable if i.caption)

    @property
    def width_stats(self) -> Stats | None:
        return _stats([i.width for i in self.usable if i.width])

    @property
    def height_stats(self) -> Stats | None:
        return _stats([i.height for i in self.usable if i.height])

    @property
    def short_side_stats(self) -> Stats | None:
        return _stats([i.short_side for i in self.usable if i.short_side])

    @property
    def aspect_stats(self) -> Stats | None:
        """width / height."""
        return _stats([i.aspect for i in self.usable if i.aspect])

    @property
    def problems(self) -> dict[str, list[Path]]:
        """code -> paths, codes in PROBLEM_LABELS order, only codes that occur."""
        found: dict[str, list[Path]] = {}
        for code in PROBLEM_LABELS:
            paths = [i.path for i in self.images if code in i.problems]
            if paths:
                found[code] = paths
        return found

    def severity_counts(self) -> dict[str, int]:
        """{"error": n, "warning": n, "info": n}: images whose worst problem has that severity."""
        counts = {ERROR: 0, WARNING: 0, INFO: 0}
        for info in self.images:
            if info.severity:
                counts[info.severity] += 1
        return counts

    @property
    def has_errors(self) -> bool:
        return any(severity(c) == ERROR for c in self.problems)

    @property
    def has_warnings(self) -> bool:
        return any(severity(c) == WARNING for c in self.problems)

    def headline(self) -> str:
        """e.g. "12 images (2 unusable) · sizes 480–1024 px (median 768) · aspect 0.75–1.33".

        "12 images" counts every image-extension file, unusable ones included (``count`` is the
        usable ones);         "sizes" are the shorter sides (what counts against the training resolution); "aspect"
        is width / height.
        """
        if not self.images:
            extra = f" ({_plural(len(self.other_files), 'other file')})" if self.other_files else ""
            return f"no images{extra}"
        parts = [_plural(len(self.images), "image")]
        if self.unusable_count:
            parts[0] += f" ({self.unusable_count} unusable)"
        short = self.short_side_stats
        if short:
            if short.min == short.max:
                parts.append(f"sizes {num(short.min)} px")
            else:
                parts.append(
                    f"sizes {num(short.min)}–{num(short.max)} px (median {num(short.median)})"
                )
        aspect = self.aspect_stats
        if aspect:
            if round(aspect.min, 2) == round(aspect.max, 2):
                parts.append(f"aspect {aspect.min:.2f}")
            else:
                parts.append(f"aspect {aspect.min:.2f}–{aspect.max:.2f}")
        if self.captioned_count:
            parts.append(_plural(self.captioned_count, "caption"))
        return " · ".join(parts)

    def problem_lines(self) -> list[str]:
        """One line per problem kind: "warning: 2 duplicate (b.png of a.png, c.png of a.png)";
        then the masks found and the bad ones, a line each."""
        of = {i.path: i.duplicate_of for i in self.images if i.duplicate_of}

        def duplicate_name(path: Path) -> str:
            return _duplicate_name(path, of.get(path))

        lines = []
        for code, paths in self.problems.items():
            names = _names(paths, label=duplicate_name if code == "duplicate" else None)
            lines.append(f"{severity(code)}: {len(paths)} {PROBLEM_LABELS[code]} ({names})")
        return lines + (self.masks.lines() if self.masks else [])

    def summary_lines(self) -> list[str]:
        """The headline, then one line per problem kind with its count."""
        return [self.headline(), *self.problem_lines()]
