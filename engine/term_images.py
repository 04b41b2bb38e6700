"""Images in real terminals: what textual-image 0.12 gets wrong, and the fixes both the app
(tui/widgets/image_protocol.py) and `generate --show` use.

textual-image picks Sixel, then the Kitty graphics protocol (TGP), then half-cells, by asking
the terminal at import time. Four things go wrong in real terminals (seen in xterm, mlterm,
kitty 0.26 under Xvfb; see benchmarks/term_screenshots.sh):

- kitty before 0.28 answers the TGP query but has no Unicode placeholders, which textual-image
  draws TGP images with: every tile is a grid of missing-glyph boxes. `choose_protocol` asks the
  terminal its name and version (XTVERSION) and falls back to half-cells there.
- The cell size comes from TIOCGWINSZ's pixel fields, which include the window's padding (and
  some terminals leave them 0: then a fixed 10x20 guess), so images are stretched. The
  terminal's own answer to CSI 16 t (the cell size in pixels) is asked first here.
- Its Sixel encoder defines each colour register where the colour is first used, part way
  through the image; xterm paints a band of the wrong colour over the top of the image.
  `registers_first` moves every definition in front of the first pixel.
- After a Sixel image the widget puts the cursor on the row *below* the image, so what Textual
  writes next on the image's last row lands one row too low (stale text stays to the right of
  the image). Fixed in the app's widget subclass.

No textual here (the engine imports this for `generate --show`); textual-image's renderables
and its terminal helpers are imported only when used.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, NamedTuple

PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")
ENV_VAR = "DREAMBOOTH_TUI_IMAGES"
KITTY_PLACEHOLDERS = (0, 28, 0)  # the first kitty with Unicode placeholders for TGP images

_XTVERSION = re.compile(r"\x1bP>\|(?P<name>[^\x1b(\s]+)[ (]?(?P<version>[0-9][0-9.]*)?")
_CELL_REPORT = re.compile(r"\x1b\[6;(?P<h>\d+);(?P<w>\d+)t")
_REGISTER = re.compile(r"#(\d+);2;(\d+);(\d+);(\d+)")


class TerminalInfo(NamedTuple):
    name: str  # as the terminal names itself ("kitty", "XTerm", "mlterm"), lower case
    version: tuple[int, ...]  # () when not given


def normalize(value: str | None) -> str:
    """A protocol name from a setting or --images: auto | kitty | sixel | halfcell | unicode."""
    value = (value or "auto").strip().lower()
    return {"tgp": "kitty", "half-cell": "halfcell", "": "auto"}.get(value, value)


def parse_xtversion(response: str) -> TerminalInfo | None:
    """The terminal's answer to CSI > q: "\\x1bP>|kitty(0.26.5)\\x1b\\\\" -> ("kitty", (0, 26, 5));
    "\\x1bP>|XTerm(390)\\x1b\\\\" -> ("xterm", (390,)). None when it is not one."""
    match = _XTVERSION.search(response)
    if match is None:
        return None
    version = match.group("version") or ""
    numbers = tuple(int(p) for p in version.split(".") if p.isdigit())
    return TerminalInfo(match.group("name").lower(), numbers)


def parse_cell_size(response: str) -> tuple[int, int] | None:
    """The answer to CSI 16 t, "\\x1b[6;HEIGHT;WIDTHt" -> (width, height) in pixels."""
    match = _CELL_REPORT.search(response)
    if match is None:
        return None
    width, height = int(match.group("w")), int(match.group("h"))
    return (width, height) if width > 0 and height > 0 else None


def choose_protocol(detected: str, terminal: TerminalInfo | None, forced: str | None) -> str:
    """The protocol to draw with: `forced` (a setting, --images, DREAMBOOTH_TUI_IMAGES) unless
    "auto"; else what textual-image detected (`detected`: kitty | sixel | halfcell | unicode),
    except TGP on a kitty without Unicode placeholders (before 0.28): half-cells there."""
    forced = normalize(forced)
    if forced != "auto":
        return forced
    if (
        detected == "kitty"
        and terminal is not None
        and terminal.name == "kitty"
        and terminal.version
        and terminal.version < KITTY_PLACEHOLDERS
    ):
        return "halfcell"
    return detected


def registers_first(sixel: str) -> str:
    """The same Sixel image with every colour register defined before the first pixel (and
    selected by number where textual-image defined it inline): xterm needs them up front."""
    start = sixel.find("q")
    if start < 0:
        return sixel
    header_end = start + 1
    raster = re.match(r'"\d+;\d+(;\d+;\d+)?', sixel[header_end:])
    if raster:
        header_end += raster.end()
    definitions: dict[str, str] = {}

    def select(match: re.Match[str]) -> str:
        definitions.setdefault(match.group(1), match.group(0))
        return f"#{match.group(1)}"

    body = _REGISTER.sub(select, sixel[header_end:])
    return sixel[:header_end] + "".join(definitions.values()) + body


def fit_cells(
    image_size: tuple[int, int], max_cols: int, max_rows: int | None, cell: tuple[int, int]
) -> tuple[int, int]:
    """(columns, rows) that show an image of `image_size` pixels as large as fits in
    max_cols x max_rows cells of `cell` pixels, keeping its aspect ratio."""
    width, height = image_size
    cell_w, cell_h = cell
    cols = max(1, max_cols)
    rows = max(1, round(cols * cell_w * height / (width * cell_h)))
    if max_rows is not None and rows > max_rows:
        rows = max(1, max_rows)
        cols = max(1, min(max_cols, round(rows * cell_h * width / (height * cell_w))))
    return cols, rows


# ---------------------------------------------------------------------------- the terminal


def _ask(query: str, start: str, end: str, timeout: float = 0.1) -> str | None:
    """Write `query` to the terminal and read its answer (before Textual owns stdin)."""
    from textual_image._terminal import TerminalError, capture_terminal_response

    try:
        with capture_terminal_response(start, end, timeout) as response:
            sys.__stdout__.write(query)
            sys.__stdout__.flush()
        return response.sequence
    except (TerminalError, TimeoutError, OSError, ValueError):
        return None


def _ioctl_cell_size() -> tuple[int, int] | None:
    import fcntl
    import struct
    import termios

    try:
        raw = fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
    except (OSError, ValueError, AttributeError):
        return None
    rows, cols, px_w, px_h = struct.unpack("HHHH", raw)
    if not (rows and cols and px_w and px_h):
        return None  # (textual-image divides by these: zero columns crash it on import)
    return px_w // cols, px_h // rows


class Detected(NamedTuple):
    terminal: TerminalInfo | None
    cell: tuple[int, int] | None


_detected: Detected | None = None


def detect_terminal() -> Detected:
    """Ask the terminal (once, before Textual starts) its name and version and its cell size,
    and give textual-image that cell size. Nothing is asked when stdout is not a terminal."""
    global _detected
    if _detected is not None:
        return _detected
    terminal = cell = None
    out = sys.__stdout__
    if out is not None and out.isatty() and sys.__stdin__ is not None and sys.__stdin__.isatty():
        answer = _ask("\x1b[>q", "\x1bP>|", "\x1b\\")
        terminal = parse_xtversion(answer) if answer else None
        answer = _ask("\x1b[16t", "\x1b[", "t")
        cell = (parse_cell_size(answer) if answer else None) or _ioctl_cell_size()
    if cell is None and os.environ.get("TEXTUAL_CELL_WIDTH", "").isdigit():
        cell = (
            int(os.environ["TEXTUAL_CELL_WIDTH"]),
            int(os.environ.get("TEXTUAL_CELL_HEIGHT", 0)),
        )
    if cell is not None and not all(cell):
        cell = None
    if cell is not None or (out is not None and out.isatty()):
        from textual_image import _terminal

        # textual-image's cache: what the terminal said, else its own VT340 guess (its ioctl
        # path divides by the column count, which a fresh pseudo-terminal reports as 0)
        _terminal.get_cell_size._result = _terminal.CellSize(*(cell or (10, 20)))  # type: ignore[attr-defined]
    _detected = Detected(terminal, cell)
    return _detected


def textual_image_protocol() -> str:
    """What textual-image detected on import: kitty | sixel | halfcell | unicode."""
    import textual_image.renderable as renderables

    return {
        renderables.TGPImage: "kitty",
        renderables.SixelImage: "sixel",
        renderables.HalfcellImage: "halfcell",
    }.get(renderables.Image, "unicode")


def protocol(forced: str | None = None) -> str:
    """The protocol for this terminal (see choose_protocol); `forced` default: the env var."""
    if forced is None:
        forced = os.environ.get(ENV_VAR)
    if normalize(forced) != "auto":
        return normalize(forced)
    info = detect_terminal()
    return choose_protocol(textual_image_protocol(), info.terminal, "auto")


def cell_size() -> tuple[int, int]:
    """The terminal's cell size in pixels (textual-image's, after detect_terminal fixed it)."""
    detect_terminal()
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return size.width, size.height


def renderable(path: Any, protocol_name: str, max_cols: int, max_rows: int | None = None) -> Any:
    """A Rich renderable of the image at `path` as large as fits, aspect kept, drawn with
    `protocol_name` (Sixel output with its colour registers up front)."""
    from PIL import Image as PILImage
    from textual_image import renderable as renderables

    with PILImage.open(path) as image:
        size = image.size
    cols, rows = fit_cells(size, max_cols, max_rows, cell_size())
    kind = {
        "kitty": renderables.TGPImage,
        "sixel": _FixedSixel,
        "halfcell": renderables.HalfcellImage,
        "unicode": renderables.UnicodeImage,
    }.get(protocol_name, renderables.HalfcellImage)
    return kind(str(path), width=cols, height=rows)


def _sixel_class() -> Any:
    from rich.segment import Segment
    from textual_image.renderable import sixel as sixel_module

    class FixedSixel(sixel_module.Image):
        """textual-image's Sixel renderable, its colour registers defined up front."""

        def __rich_console__(self, console: Any, options: Any) -> Any:
            for item in super().__rich_console__(console, options):
                # Segments and rich Controls (a cursor move) come through here
                if isinstance(item, Segment) and item.control and item.text.startswith("\x1bP"):
                    item = item._replace(text=registers_first(item.text))
                yield item

    return FixedSixel


def _FixedSixel(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - a class, made on first use
    return _sixel_class()(*args, **kwargs)
