"""Loss masks (`train.masked_loss`): which part of an instance image is the subject.

An image's mask is the file `<stem>.mask.png` beside it (white = subject, black = ignored, grey
in between) or, without one, the image's own alpha channel where some pixel is transparent. A
mask that is white everywhere is no mask: the image counts fully, exactly as without one. A mask
file is never a training image. Standard library and Pillow only (the app imports the doctor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..images import IMAGE_EXTENSIONS, MASK_SUFFIX, ImageLoadError, _apply_orientation, _orientation

__all__ = [
    "MASK_SUFFIX",
    "MaskError",
    "MaskScan",
    "alpha_mask",
    "is_mask_file",
    "load_mask",
    "mask_file_for",
    "opened_image_mask",
    "scan_masks",
]

FROM_FILE, FROM_ALPHA = "file", "alpha"


class MaskError(ImageLoadError):
    """A mask that cannot be used: ``str()`` is ``"<mask file>: <reason>"``."""


def is_mask_file(path: Path | str) -> bool:
    """A `<stem>.mask.png` (any case): a mask, never a training image."""
    return Path(path).name.lower().endswith(MASK_SUFFIX)


def mask_file_for(image: Path) -> Path | None:
    """The `<stem>.mask.png` beside an image (the suffix in any case), or None."""
    try:
        siblings = {p.name.lower(): p for p in image.parent.iterdir()}
    except OSError:
        return None
    return siblings.get(f"{image.stem}{MASK_SUFFIX}".lower())


def alpha_mask(im: Image.Image) -> Image.Image | None:
    """An opened image's alpha channel as an "L" mask, when some pixel is transparent."""
    if im.mode not in ("RGBA", "LA", "PA", "RGBa", "La") and not (
        "transparency" in im.info and im.mode in ("P", "L", "RGB", "1")
    ):
        return None
    alpha = im.convert("RGBA").getchannel("A")
    return None if alpha.getextrema()[0] == 255 else alpha


def opened_image_mask(im: Image.Image) -> Image.Image | None:
    """An already opened image's (a Hub dataset row's) alpha mask, EXIF orientation applied;
    None when nothing is transparent."""
    return alpha_mask(_apply_orientation(im, _orientation(im)))


def _full(mask: Image.Image) -> bool:
    return mask.getextrema()[0] == 255


def _read_mask_file(path: Path, size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()
            mask = _apply_orientation(im, _orientation(im)).convert("L")
    except OSError as exc:  # unreadable, truncated, not an image (Pillow raises OSError kinds)
        raise MaskError(path, f"unreadable ({exc.__class__.__name__})") from exc
    except Exception as exc:  # Pillow plugins raise SyntaxError, ValueError, ...
        raise MaskError(path, f"unreadable ({exc.__class__.__name__})") from exc
    if mask.size != size:
        raise MaskError(
            path,
            f"{mask.width}×{mask.height} but its image is {size[0]}×{size[1]}; a mask has its "
            "image's size",
        )
    if mask.getextrema()[1] == 0:
        raise MaskError(path, "all black: no pixel of the subject (white = subject)")
    return mask


def load_mask(image_path: Path | str) -> Image.Image | None:
    """The image's mask ("L", the image's size as trained: EXIF orientation applied), or None
    when it has none (or one that is white everywhere): its mask file, else its alpha channel.
    Raises MaskError for a mask file that cannot be used, ImageLoadError's OSError kinds for an
    image that cannot be opened."""
    image_path = Path(image_path)
    file = mask_file_for(image_path)
    with Image.open(image_path) as raw:
        oriented = _apply_orientation(raw, _orientation(raw))
        mask = _read_mask_file(file, oriented.size) if file else alpha_mask(oriented)
    return None if mask is None or _full(mask) else mask


@dataclass
class MaskScan:
    """A folder's masks: images with one (name -> "file" or "alpha") and unusable ones."""

    found: dict[str, str] = field(default_factory=dict)
    bad: list[tuple[Path, str]] = field(default_factory=list)  # (mask file, reason)

    def lines(self) -> list[str]:
        """One line for the masks found, one for the bad ones (none when there are none)."""
        out = []
        if self.found:
            files = sum(1 for s in self.found.values() if s == FROM_FILE)
            kinds = [f"{files} {MASK_SUFFIX} file{'s' if files != 1 else ''}"] if files else []
            if alpha := len(self.found) - files:
                kinds.append(f"{alpha} alpha channel{'s' if alpha != 1 else ''}")
            out.append(f"masks for train.masked_loss: {len(self.found)} ({', '.join(kinds)})")
        if self.bad:
            shown = "; ".join(f"{p.name}: {why}" for p, why in self.bad[:3])
            more = f"; +{len(self.bad) - 3} more" if len(self.bad) > 3 else ""
            out.append(
                f"warning: {len(self.bad)} bad mask{'s' if len(self.bad) != 1 else ''} "
                f"({shown}{more})"
            )
        return out


def scan_masks(folder: Path, images: list[Path], alpha: set[str] | None = None) -> MaskScan:
    """Masks of `images` (a folder's usable images): the files beside them, checked against
    their image, and, for the images named in `alpha` (those with transparency), their alpha
    channel; a mask file with no image of its stem is bad too."""
    scan = MaskScan()
    stems = {p.stem.lower() for p in images}
    for image in images:
        file = mask_file_for(image)
        try:
            if file is not None:
                with Image.open(image) as raw:
                    size = _apply_orientation(raw, _orientation(raw)).size
                if not _full(_read_mask_file(file, size)):
                    scan.found[image.name] = FROM_FILE
            elif alpha and image.name in alpha:
                scan.found[image.name] = FROM_ALPHA
        except MaskError as exc:
            scan.bad.append((exc.path, exc.reason))
        except OSError:
            continue  # the image itself is unreadable: the doctor says so
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if is_mask_file(path) and path.name[: -len(MASK_SUFFIX)].lower() not in stems:
            exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
            scan.bad.append(
                (path, f"no image {path.name[: -len(MASK_SUFFIX)]}.{{{exts}}} beside it")
            )
    return scan
