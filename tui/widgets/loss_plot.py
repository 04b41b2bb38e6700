"""Line plots of loss (raw + smoothed) and learning rate against step, drawn in braille.

`render_plot(series, width, height)` is pure: values in, Rich Text lines out, tested without an
app (memray's MemoryGraph pattern). `LossPlot` holds the series and renders them; it redraws
only when told (`refresh()`), which the Train screen does on a timer, never per event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from tui.widgets.plot_data import EmaState, Track, as_arrays

__all__ = ["PALETTE", "LossPlot", "Series", "ema", "fmt_value", "render_plot"]

# Distinct colours for overlaid runs (first one is the Train screen's loss).
PALETTE = ("dodger_blue1", "orange1", "green3", "magenta", "gold1", "cyan", "red1", "purple")

# Braille dot bits by (x in 0..1, y in 0..3) inside one cell, y from the top.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
# The bits of dot rows a..b (0..3) of a cell's left or right half.
_SPAN_MASKS = tuple(
    tuple(tuple(sum(half[a : b + 1]) for b in range(4)) for a in range(4)) for half in _DOTS
)


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float]] | Track
    style: str = PALETTE[0]
    legend: bool = True


def ema(points: Iterable[tuple[float, float]], weight: float = 0.9) -> list[tuple[float, float]]:
    """Exponential moving average with TensorBoard's debiasing (first points are not pulled to
    zero). Non-finite values are skipped."""
    out: list[tuple[float, float]] = []
    acc, n = 0.0, 0
    for x, y in points:
        if not math.isfinite(y):
            continue
        n += 1
        acc = acc * weight + (1 - weight) * y
        out.append((x, acc / (1 - weight**n)))
    return out


def fmt_value(v: float) -> str:
    """Short axis label: 0.1234, 12.35, 1.2e-05."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e5 or a < 1e-3:
        return f"{v:.1e}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.2f}"
    return f"{v:.4f}"


def render_plot(
    series: Sequence[Series],
    width: int,
    height: int,
    *,
    legend: bool = True,
    x_label: str = "step",
    empty: str = "no data yet",
) -> list[Text]:
    """Lines (exactly `height` of them, each `width` cells) plotting the series in braille.

    Layout: an optional legend row, the plot rows with y labels (max at the top, min at the
    bottom) left of an axis, then an axis row and a row with the x range. Each x column of dots
    spans the min..max of the points that fall in it, joined to its neighbour, so a noisy curve
    of thousands of points reads as an envelope instead of disappearing.
    """
    width, height = max(1, width), max(1, height)
    data = [(s, s.points if isinstance(s.points, Track) else Track(s.points)) for s in series]
    data = [(s, track) for s, track in data if len(track)]
    lines: list[Text] = []
    if legend and height >= 4:
        row = Text(no_wrap=True, overflow="crop")
        for s, _ in data:
            if s.legend:
                row.append("━ ", style=s.style)
                row.append(s.name + "  ")
        lines.append(row)
    plot_h = height - len(lines) - 2 if height - len(lines) >= 4 else height - len(lines)
    if not data or plot_h < 1:
        while len(lines) < height:
            msg = empty if len(lines) == height // 2 else ""
            lines.append(Text(msg.center(width)[:width], style="dim", no_wrap=True))
        return [_pad(t, width) for t in lines[:height]]

    bounds = [b for _, track in data if (b := track.bounds()) is not None]
    x0, x1 = min(b[0] for b in bounds), max(b[1] for b in bounds)
    y0, y1 = min(b[2] for b in bounds), max(b[3] for b in bounds)
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    mid_row = plot_h // 2 if plot_h >= 5 else -1
    top, bottom, mid = fmt_value(y1), fmt_value(y0), fmt_value((y0 + y1) / 2)
    label_w = max(len(top), len(bottom), len(mid) if mid_row >= 0 else 0)
    plot_w = max(1, width - label_w - 1)
    dots_w, dots_h = plot_w * 2, plot_h * 4

    # One bitmask and one style per cell; later series draw over earlier ones.
    cells = [[0] * plot_w for _ in range(plot_h)]
    styles: list[list[str | None]] = [[None] * plot_w for _ in range(plot_h)]

    import numpy as np

    for s, track in data:
        # At most two values per dot column (its lowest and highest point), then dot rows
        # (0 = top): the drawing below never sees more than 2 x dots_w points.
        cols, lows, highs = track.column_spans(x0, x1, dots_w)
        upper = np.minimum(np.maximum((y1 - highs) / (y1 - y0) * (dots_h - 1) + 0.5, 0), dots_h - 1)
        lower = np.minimum(np.maximum((y1 - lows) / (y1 - y0) * (dots_h - 1) + 0.5, 0), dots_h - 1)
        rows = zip(upper.astype(int).tolist(), lower.astype(int).tolist(), strict=True)
        columns = dict(zip(cols.tolist(), rows, strict=True))
        for cx, (lo, hi) in _joined(columns):
            # the span's dots, a cell (4 dot rows) at a time
            masks, cell_x = _SPAN_MASKS[cx % 2], cx // 2
            r0, r1 = lo // 4, hi // 4
            for r in range(r0, r1 + 1):
                a = lo - 4 * r if r == r0 else 0
                b = hi - 4 * r if r == r1 else 3
                cells[r][cell_x] |= masks[a][b]
                styles[r][cell_x] = s.style

    for r in range(plot_h):
        label = top if r == 0 else bottom if r == plot_h - 1 else mid if r == mid_row else ""
        line = Text(no_wrap=True, overflow="crop")
        line.append(label.rjust(label_w), style="dim")
        line.append("┤" if label else "│", style="dim")
        run_style: str | None = None
        run = ""
        for c in range(plot_w):
            bits = cells[r][c]
            ch, st = (chr(0x2800 + bits), styles[r][c]) if bits else (" ", None)
            if st != run_style and run:
                line.append(run, style=run_style or "")
                run = ""
            run_style = st
            run += ch
        if run:
            line.append(run, style=run_style or "")
        lines.append(line)
    if height - len(lines) >= 2:
        lines.append(Text(" " * label_w + "└" + "─" * plot_w, style="dim", no_wrap=True))
        left, right = _fmt_x(x0), _fmt_x(x1)
        row = " " * (label_w + 1) + left
        gap = plot_w - len(left) - len(right)
        if gap >= len(x_label) + 2:
            row += x_label.center(gap) + right
        elif gap >= 1:
            row += " " * gap + right
        lines.append(Text(row, style="dim", no_wrap=True))
    return [_pad(t, width) for t in lines[:height]]


def _joined(columns: dict[int, tuple[int, int]]) -> list[tuple[int, tuple[int, int]]]:
    """Dot columns -> vertical spans that connect: gaps between data columns are interpolated,
    and each span reaches its left neighbour's span so the curve has no holes."""
    out: list[tuple[int, tuple[int, int]]] = []
    prev_x: int | None = None
    prev: tuple[int, int] | None = None
    for cx in sorted(columns):
        lo, hi = columns[cx]
        if prev is not None and prev_x is not None and cx - prev_x > 1:
            a, b = (prev[0] + prev[1]) / 2, (lo + hi) / 2
            for gx in range(prev_x + 1, cx):
                gy = int(round(a + (b - a) * (gx - prev_x) / (cx - prev_x)))
                out.append((gx, _reach(gy, gy, out[-1][1])))
        span = (lo, hi) if not out else _reach(lo, hi, out[-1][1])
        out.append((cx, span))
        prev_x, prev = cx, (lo, hi)
    return out


def _reach(lo: int, hi: int, prev: tuple[int, int]) -> tuple[int, int]:
    if prev[1] < lo:
        return prev[1], hi
    if prev[0] > hi:
        return lo, prev[0]
    return lo, hi


def _fmt_x(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else fmt_value(x)


def _pad(text: Text, width: int) -> Text:
    text.truncate(width, pad=True)
    return text


@dataclass
class _Entry:
    raw: Track
    style: str
    smoothed: Track | None = None
    ema: EmaState | None = None


class LossPlot(Widget):
    """Several named series against step; each may also get an EMA-smoothed twin.

    `set_series(name, points)` replaces (or adds) a curve in the next palette colour, which is
    how the Runs screen overlays runs; `add_points(points, name=...)` appends (the Train screen).
    With `smoothing` set, each series is drawn dim (raw) with its smoothed curve bright on top.
    The smoothed curve is extended with the new points only, never recomputed on a redraw.
    """

    DEFAULT_CSS = """
    LossPlot {
        height: 1fr;
        min-height: 5;
    }
    """

    def __init__(
        self,
        *,
        smoothing: float | None = 0.9,
        x_label: str = "step",
        empty: str = "no data yet",
        max_points: int = 200_000,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.smoothing = smoothing
        self.x_label = x_label
        self.empty = empty
        self.max_points = max_points
        self._series: dict[str, _Entry] = {}

    # -- data ---------------------------------------------------------------------------------
    def set_series(
        self,
        name: str,
        points: Iterable[tuple[float, float]],
        style: str | None = None,
        *,
        refresh: bool = True,
    ) -> None:
        entry = self._series.get(name)
        style = style or (entry.style if entry else PALETTE[len(self._series) % len(PALETTE)])
        entry = _Entry(Track(max_points=self.max_points), style)
        if self.smoothing is not None:
            entry.smoothed = Track(max_points=self.max_points)
            entry.ema = EmaState(self.smoothing)
        self._series[name] = entry
        self._extend(entry, points)
        if refresh:
            self.refresh()

    def add_points(
        self, points: Iterable[tuple[float, float]], name: str = "loss", *, refresh: bool = False
    ) -> None:
        if name not in self._series:
            self.set_series(name, (), refresh=False)
        self._extend(self._series[name], points)
        if refresh:
            self.refresh()

    @staticmethod
    def _extend(entry: _Entry, points: Iterable[tuple[float, float]]) -> None:
        pts = points if isinstance(points, (list, tuple)) else list(points)
        if not pts:
            return  # (numpy stays unimported until there is something to plot)
        xs, ys = as_arrays(pts)
        entry.raw.extend_arrays(xs, ys)
        if entry.smoothed is not None and entry.ema is not None:
            entry.smoothed.extend_arrays(*entry.ema.extend_arrays(xs, ys))

    def remove_series(self, name: str) -> None:
        self._series.pop(name, None)
        self.refresh()

    def clear(self) -> None:
        self._series.clear()
        self.refresh()

    @property
    def series_names(self) -> list[str]:
        return list(self._series)

    def points(self, name: str) -> list[tuple[float, float]]:
        entry = self._series.get(name)
        return entry.raw.points() if entry else []

    def count(self, name: str) -> int:
        """How many points the series holds (without copying them)."""
        entry = self._series.get(name)
        return len(entry.raw) if entry else 0

    def smoothed_points(self, name: str) -> list[tuple[float, float]]:
        entry = self._series.get(name)
        return entry.smoothed.points() if entry and entry.smoothed is not None else []

    def build_series(self) -> list[Series]:
        out: list[Series] = []
        for name, entry in self._series.items():
            if entry.smoothed is None:
                out.append(Series(name, entry.raw, entry.style))
                continue
            out.append(Series(name, entry.raw, f"{entry.style} dim", legend=False))
        for name, entry in self._series.items():
            if entry.smoothed is not None:
                label = f"{name} (smoothed)" if len(self._series) == 1 else name
                out.append(Series(label, entry.smoothed, f"bold {entry.style}"))
        return out

    # -- rendering ----------------------------------------------------------------------------
    def render(self) -> Text:
        size = self.content_size
        lines = render_plot(
            self.build_series(),
            size.width,
            size.height,
            x_label=self.x_label,
            empty=self.empty,
        )
        return Text("\n", no_wrap=True).join(lines)
