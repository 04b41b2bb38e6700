"""The dataset check ("doctor") that the TUI's Data screen and `dreambooth-tui check` show.

For each image in a folder: can it be decoded, how big is it against the training resolution,
is it a duplicate (identical pixels, or a near-duplicate by a 64-bit difference hash) of an
earlier one, is its aspect ratio extreme, does it have transparency, an EXIF rotation, no colour.

Imported by the TUI process (it runs check_folder in a worker thread), so this module uses only
the standard library and Pillow. Quick: JPEGs are decoded at a reduced scale (still in full, so
truncation is still caught), and everything after decoding works on tiny thumbnails.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageChops

from .images import ImageLoadError, caption_for, list_image_files, load_image

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

DUPLICATE_MAX_DISTANCE = 4  # dHash bits that may differ for a near-duplicate
# dHash sees only brightness gradients: flat or low-detail images of different colours hash
# alike. A near-duplicate must also have about the same colours: mean absolute difference of
# 4x4 RGB thumbnails (0..255) at most this.
DUPLICATE_MAX_COLOUR_DIFF = 24
ODD_ASPECT = 2.0  # long side / short side above this is flagged
MIN_SIDE = 64  # a shorter side below this is always tiny
GRAYSCALE_CHROMA = 12  # max(R,G,B) - min(R,G,B) at or below this counts as grey ...
GRAYSCALE_FRACTION = 0.005  # ... for all but this fraction of the thumbnail's pixels
_REDUCE_TO = 256  # JPEGs are decoded at a reduced scale keeping both sides >= this


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


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.0f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass
class DatasetReport:
    folder: Path
    images: list[ImageInfo] = field(default_factory=list)  # every image-extension file, by name
    other_files: list[Path] = field(default_factory=list)  # non-hidden, non-image files
    resolution: int = 512

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
                parts.append(f"sizes {_num(short.min)} px")
            else:
                parts.append(
                    f"sizes {_num(short.min)}–{_num(short.max)} px (median {_num(short.median)})"
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
        """One line per problem kind: "warning: 2 duplicate (b.png of a.png, c.png of a.png)"."""
        of = {i.path: i.duplicate_of for i in self.images if i.duplicate_of}

        def duplicate_name(path: Path) -> str:
            return _duplicate_name(path, of.get(path))

        lines = []
        for code, paths in self.problems.items():
            names = _names(paths, label=duplicate_name if code == "duplicate" else None)
            lines.append(f"{severity(code)}: {len(paths)} {PROBLEM_LABELS[code]} ({names})")
        return lines

    def summary_lines(self) -> list[str]:
        """The headline, then one line per problem kind with its count."""
        return [self.headline(), *self.problem_lines()]


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: 9x8 greyscale, one bit per horizontally adjacent pair."""
    small = image.resize((9, 8), Image.Resampling.LANCZOS, reducing_gap=3.0).convert("L")
    px = small.tobytes()
    bits = 0
    for y in range(8):
        row = px[y * 9 : y * 9 + 9]
        for x in range(8):
            bits = (bits << 1) | (row[x + 1] > row[x])
    return bits


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def _is_grayscale(image: Image.Image) -> bool:
    thumb = image.copy()
    thumb.thumbnail((64, 64), Image.Resampling.BOX)
    r, g, b = thumb.split()
    chroma = ImageChops.lighter(
        ImageChops.lighter(ImageChops.difference(r, g), ImageChops.difference(g, b)),
        ImageChops.difference(r, b),
    )
    hist = chroma.histogram()
    coloured = sum(hist[GRAYSCALE_CHROMA + 1 :])
    return coloured <= GRAYSCALE_FRACTION * (thumb.width * thumb.height)


class _Fingerprint(NamedTuple):
    digest: bytes  # of the decoded pixels (exact duplicates)
    colours: bytes  # 4x4 RGB thumbnail (guards near-duplicates)


def _fingerprint(image: Image.Image) -> _Fingerprint:
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    colours = image.resize((4, 4), Image.Resampling.BOX, reducing_gap=3.0).tobytes()
    return _Fingerprint(h.digest(), colours)


def _colour_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(len(a), 1)


def _check_image(path: Path, resolution: int) -> tuple[ImageInfo, _Fingerprint | None]:
    info = ImageInfo(path=path)
    try:
        loaded = load_image(path, reduce_to=_REDUCE_TO)
    except ImageLoadError as exc:
        info.error = exc.reason
        info.add("unreadable", f"{exc.reason}: skipped in training")
        return info, None
    w, h = loaded.width, loaded.height
    info.width, info.height, info.mode = w, h, loaded.mode
    info.caption = caption_for(path)
    short, long = min(w, h), max(w, h)

    tiny_limit = max(resolution / 2, MIN_SIDE)
    if short < tiny_limit:
        info.add(
            "tiny",
            f"too small: {w}×{h}, shorter side {short} px is under {_num(tiny_limit)} px "
            f"(training resolution {resolution})",
        )
    elif short < resolution:
        info.add(
            "small",
            f"{w}×{h} is below the training resolution {resolution}: upscaled in training",
        )
    if short and long / short > ODD_ASPECT:
        info.add(
            "odd_aspect",
            f"aspect {w}×{h} ({long / short:.1f}:1): a square centre crop keeps only "
            f"{short / long:.0%} of it",
        )
    if loaded.has_alpha:
        info.add("alpha", "has transparency: composited on white in training")
    if loaded.orientation != 1:
        info.add(
            "exif_rotated",
            f"EXIF orientation {loaded.orientation}: turned upright in training",
        )
    if _is_grayscale(loaded.image):
        info.add("grayscale", "grayscale: the model may learn the concept without colour")
    info.dhash = dhash(loaded.image)
    return info, _fingerprint(loaded.image)


def _list_other_files(folder: Path, images: list[Path]) -> list[Path]:
    image_names = {p.name for p in images}
    return sorted(
        (
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.name not in image_names and p.is_file()
        ),
        key=lambda p: p.name,
    )


def check_folder(
    folder: Path | str,
    *,
    resolution: int = 512,
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetReport:
    """Check every image in ``folder`` (not recursive) against training at ``resolution``.

    ``on_progress(done, total)`` is called after each image (from the calling thread). Raises
    FileNotFoundError / NotADirectoryError when ``folder`` is not a folder.
    """
    folder = Path(folder)
    paths = list_image_files(folder)
    report = DatasetReport(
        folder=folder, other_files=_list_other_files(folder, paths), resolution=resolution
    )
    seen: list[tuple[ImageInfo, _Fingerprint]] = []  # earlier usable images
    for n, path in enumerate(paths, 1):
        info, fingerprint = _check_image(path, resolution)
        if fingerprint is not None:
            _mark_duplicate(info, fingerprint, seen)
            seen.append((info, fingerprint))
        report.images.append(info)
        if on_progress is not None:
            on_progress(n, len(paths))
    return report


def _mark_duplicate(
    info: ImageInfo, fingerprint: _Fingerprint, seen: list[tuple[ImageInfo, _Fingerprint]]
) -> None:
    """Mark ``info`` as a duplicate of the earlier image it repeats: identical pixels first,
    else the closest near-duplicate (dHash distance <= 4, about the same colours)."""
    for earlier, earlier_fp in seen:
        same_size = (earlier.width, earlier.height) == (info.width, info.height)
        if same_size and earlier_fp.digest == fingerprint.digest:
            info.duplicate_of = earlier.path
            info.add("duplicate", f"duplicate of {earlier.name} (identical pixels)")
            return
    best: tuple[int, ImageInfo] | None = None
    for earlier, earlier_fp in seen:
        if earlier.dhash is None or info.dhash is None:
            continue
        distance = hamming(earlier.dhash, info.dhash)
        if distance > DUPLICATE_MAX_DISTANCE:
            continue
        if _colour_diff(earlier_fp.colours, fingerprint.colours) > DUPLICATE_MAX_COLOUR_DIFF:
            continue
        if best is None or distance < best[0]:
            best = (distance, earlier)
    if best is not None:
        distance, earlier = best
        info.duplicate_of = earlier.path
        info.add(
            "duplicate",
            f"duplicate of {earlier.name} (near-identical: {distance} of 64 hash bits differ)",
        )


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
