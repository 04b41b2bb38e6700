"""Reading user images robustly: whatever is in a DreamBooth folder becomes an RGB image or a
short, human reason why it cannot.

Imported by the TUI process (through engine.doctor), so this module uses only the standard
library and Pillow.
"""

from __future__ import annotations

import errno as _errno
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import DreamboothError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "LoadedImage",
    "ScanResult",
    "caption_for",
    "list_image_files",
    "load_image",
    "open_rgb",
    "scan_images",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MASK_SUFFIX = ".mask.png"  # `<stem>.mask.png`: an image's loss mask (engine.doctor.masks)

# Short reasons, kept stable: tests, the doctor and the TUI show or match them.
REASON_EMPTY = "empty file"
REASON_NOT_IMAGE = "not an image (cannot identify format)"
REASON_CORRUPT = "truncated or corrupt image data"
REASON_TOO_LARGE = "too large"

# The decompression-bomb limit, set deliberately: decoding W x H pixels takes W*H*3 bytes or more
# whatever the file's size, so a small file that declares 20000x20000 would take gigabytes.
# Pillow refuses (DecompressionBombError -> "too large") anything above 2 * MAX_IMAGE_PIXELS as
# soon as it reads the header, before decoding; that bound is MAX_PIXELS, 100 megapixels (the
# largest phone and camera photos; training resizes to 512-1024 px anyway). Pillow's warning
# zone below it is silenced: it would only print a multi-line warning for an image we accept.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "I;16S")


class ImageLoadError(DreamboothError):
    """An image file that cannot be used (kind "data", exit 2); ``str()`` is
    ``"<file name>: <reason>"``.

    ``reason`` is a short human phrase (see the REASON_* constants, or ``"unreadable: <errno
    text>"``); ``detail`` keeps the underlying error text, for logs.
    """

    def __init__(self, path: Path | str, reason: str, detail: str | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path.name}: {reason}", kind="data", exit_code=2)


@dataclass
class LoadedImage:
    """An image as training will see it, plus what was learned about the file on the way."""

    image: Image.Image  # RGB, fully loaded, EXIF orientation applied, transparency on white
    width: int  # full-resolution size after EXIF orientation (even when `reduced`)
    height: int
    mode: str  # the file's own mode, e.g. "CMYK", "I;16", "P"
    format: str | None  # Pillow's format name, e.g. "JPEG", "PNG", "MPO"
    orientation: int = 1  # EXIF orientation tag (1 when absent or invalid)
    has_alpha: bool = False  # some pixel was (partly) transparent and got composited on white
    n_frames: int = 1  # >1 for animated files; `image` is the first frame
    reduced: bool = False  # decoded at a reduced scale (JPEG draft), see load_image(reduce_to=)


def list_image_files(folder: Path | str) -> list[Path]:
    """Files in ``folder`` (not recursive) with an image extension, any case, sorted by name.

    Hidden files (name starting with ".", e.g. macOS ``._x.jpg``) and loss masks
    (``<stem>.mask.png``) are skipped. Raises
    FileNotFoundError / NotADirectoryError for a folder that is not there.
    """
    folder = Path(folder)
    found = []
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.suffix.lower() not in IMAGE_EXTENSIONS or entry.name.lower().endswith(MASK_SUFFIX):
            continue
        if entry.is_file():
            found.append(entry)
    return sorted(found, key=lambda p: p.name)


def _unreadable(path: Path, exc: OSError) -> ImageLoadError:
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or "I/O error"
    return ImageLoadError(path, f"unreadable: {text}", str(exc))


def _is_os_level(exc: BaseException) -> bool:
    """An OSError from the operating system (has an errno), not one of Pillow's decode errors."""
    return isinstance(exc, OSError) and exc.errno is not None


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not make the image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return im
    try:
        return ImageOps.exif_transpose(im)
    except Exception:
        method = {
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90,
        }[orientation]
        return im.transpose(method)


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit "L", scaled (never clipped to white).

    Integer data in 0..65535 (16-bit files, whatever the mode says) is scaled by 255/65535, so a
    dark 16-bit image stays dark. Float data in 0..1 is scaled by 255, in 0..255 kept, in
    0..65535 scaled like 16-bit; anything else is stretched from its min..max to 0..255.
    """
    src = im.convert("F") if im.mode == "F" else im.convert("I").convert("F")
    lo, hi = src.getextrema()
    if im.mode == "F" and lo >= 0 and hi <= 1.0:
        scale, offset = 255.0, 0.0
    elif im.mode == "F" and lo >= 0 and hi <= 255.0:
        scale, offset = 1.0, 0.0
    elif lo >= 0 and hi <= 65535:
        scale, offset = 255.0 / 65535.0, 0.0
    elif hi > lo:
        scale = 255.0 / (hi - lo)
        offset = -lo * scale
    else:  # constant image outside the usual ranges
        scale, offset = 0.0, 128.0
    scaled = src.point(lambda x: x * scale + offset + 0.5)  # +0.5: round, not truncate
    return scaled.convert("L")


def _to_rgb(im: Image.Image) -> tuple[Image.Image, bool]:
    """Convert any mode to RGB; returns (image, had transparency)."""
    if im.mode in _INT_MODES or im.mode == "F":
        return _high_depth_to_l(im).convert("RGB"), False
    if im.mode in _ALPHA_MODES or ("transparency" in im.info and im.mode in ("P", "L", "RGB", "1")):
        rgba = im.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] == 255:  # alpha channel, but nothing transparent
            return rgba.convert("RGB"), False
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, mask=alpha)
        return out, True
    if im.mode == "RGB":
        return im, False
    return im.convert("RGB"), False


def to_rgb(im: Image.Image) -> Image.Image:
    """An already opened image (e.g. from a Hub dataset) -> RGB, the same way open_rgb does."""
    return _to_rgb(_apply_orientation(im, _orientation(im)))[0]


def load_image(path: Path | str, *, reduce_to: int | None = None) -> LoadedImage:
    """Open ``path`` fully and return it as RGB with what was learned about the file.

    ``reduce_to``: when given, a JPEG may be decoded at a reduced scale (1/2 .. 1/8) as long as
    both sides stay >= ``reduce_to``; the whole file is still decoded, so truncation is still
    detected. The dataset doctor uses this to stay quick on big photos. Training does not.

    Raises ImageLoadError (see open_rgb).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if size == 0:
        raise ImageLoadError(path, REASON_EMPTY)
    try:
        with Image.open(path) as im:
            mode, fmt = im.mode, im.format
            n_frames = getattr(im, "n_frames", 1) or 1
            if n_frames > 1:
                im.seek(0)
            full_w, full_h = im.size
            orientation = _orientation(im)
            reduced = False
            if reduce_to and fmt in ("JPEG", "MPO") and min(full_w, full_h) >= 2 * reduce_to:
                im.draft(im.mode, (reduce_to, reduce_to))
                reduced = im.size != (full_w, full_h)
            im.load()
            oriented = _apply_orientation(im, orientation)
            rgb, has_alpha = _to_rgb(oriented)
            if rgb is im:  # still backed by the file being closed: detach
                rgb = im.copy()
            rgb.load()
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(path, REASON_TOO_LARGE, str(exc)) from exc
    except MemoryError as exc:
        raise ImageLoadError(path, REASON_TOO_LARGE, "out of memory decoding it") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(path, REASON_NOT_IMAGE, str(exc)) from exc
    except Exception as exc:  # Pillow plugins raise OSError, SyntaxError, ValueError, ...
        if _is_os_level(exc) and exc.errno not in (_errno.EINVAL,):
            raise _unreadable(path, exc) from exc
        raise ImageLoadError(path, REASON_CORRUPT, f"{type(exc).__name__}: {exc}") from exc
    if orientation in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    return LoadedImage(
        image=rgb,
        width=full_w,
        height=full_h,
        mode=mode,
        format=fmt,
        orientation=orientation,
        has_alpha=has_alpha,
        n_frames=n_frames,
        reduced=reduced,
    )


def open_rgb(path: Path | str) -> Image.Image:
    """A fully loaded RGB image of ``path``, as training should see it.

    EXIF orientation is applied; transparency (RGBA, LA, P or L/RGB with a transparent colour) is
    composited on white; P, L, 1, CMYK, YCbCr, ... become RGB; 16-bit and float greyscale are
    scaled to 8 bits; animated files give their first frame.

    Raises ImageLoadError whose ``reason`` is one of "empty file", "not an image (cannot
    identify format)", "truncated or corrupt image data", "too large" (decompression bomb) or
    "unreadable: <errno text>".
    """
    return load_image(path).image


def oriented_size(path: Path | str) -> tuple[int, int]:
    """(width, height) of an image as training sees it (EXIF orientation applied), read from
    its header only."""
    with Image.open(path) as im:
        w, h = im.size
        return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def caption_for(image_path: Path | str) -> str | None:
    """Text of the sibling ``<stem>.txt`` (or ``.TXT``), stripped; None if absent or empty."""
    image_path = Path(image_path)
    for suffix in (".txt", ".TXT"):
        candidate = image_path.with_suffix(suffix)
        try:
            text = candidate.read_text(encoding="utf-8-sig", errors="replace")
        except OSError:
            continue
        text = text.strip()
        return text or None
    return None


@dataclass
class ScanResult:
    good: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)


def scan_images(folder: Path | str) -> ScanResult:
    """Decode every image-extension file in ``folder``; sort them into good and skipped.

    Only files with an image extension are considered: captions, READMEs and other files are
    ignored silently.
    """
    result = ScanResult()
    for path in list_image_files(folder):
        try:
            open_rgb(path)
        except ImageLoadError as exc:
            result.skipped.append((path, exc.reason))
        else:
            result.good.append(path)
    return result
