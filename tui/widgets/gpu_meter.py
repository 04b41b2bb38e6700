"""Memory and GPU meters for a run: allocated / reserved / peak against the card's total,
utilisation, temperature and power; on a CPU run the process memory (RSS) instead.

`meter_lines(device, mem, gpu, width)` is pure and unit-tested; `GpuMeter` renders it and
redraws only when the Train screen's timer gives it new values.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widget import Widget

from engine.progress import fmt_bytes

__all__ = ["GpuMeter", "bar", "fmt_bytes", "meter_lines"]

GIB = 1 << 30


def bar(fraction: float | None, width: int, style: str = "green") -> Text:
    """A bar of `width` cells, filled with eighth blocks; grey track when fraction is None."""
    width = max(0, width)
    text = Text(no_wrap=True)
    if fraction is None or not math.isfinite(fraction):
        text.append("─" * width, style="dim")
        return text
    fraction = min(1.0, max(0.0, fraction))
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    text.append("█" * full + partial, style=style)
    rest = width - full - len(partial)
    text.append("░" * rest, style="grey30")
    return text


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _level_style(fraction: float | None) -> str:
    if fraction is None:
        return "green"
    return "red" if fraction >= 0.9 else "yellow" if fraction >= 0.75 else "green"


def meter_lines(
    device: dict[str, Any] | None,
    mem: dict[str, Any] | None,
    gpu: dict[str, Any] | None,
    width: int,
    compact: bool = False,
) -> list[Text]:
    """Rows for the meter: a title, one bar per memory figure, then utilisation/temp/power.

    `device` is run_started's {kind, name, total_mem}; `mem` the latest step's
    {allocated, reserved, peak} (bytes; RSS on a CPU); `gpu` the latest gpu event. `compact`
    (a short terminal) drops the title and the notes, and puts util/temp/power on one line.
    """
    device, mem, gpu = device or {}, mem or {}, gpu or {}
    width = max(20, width)
    kind = str(device.get("kind") or "")
    name = str(device.get("name") or kind or "device")
    total = _num(device, "total_mem") or _num(gpu, "mem_total")
    cpu = kind == "cpu"
    lines = [Text(name, style="bold", no_wrap=True, overflow="ellipsis")]
    if total:
        lines[0].append(f"  {fmt_bytes(total)}", style="dim")
    if cpu:
        rows = [("RSS", _num(mem, "allocated")), ("peak", _num(mem, "peak"))]
    else:
        rows = [
            ("alloc", _num(mem, "allocated")),
            ("reserved", _num(mem, "reserved")),
            ("peak", _num(mem, "peak")),
        ]
        used = _num(gpu, "mem_used")
        if used is not None and not compact:
            rows.append(("card", used))
    total_txt = fmt_bytes(total) if total else ""
    util, temp, power = _num(gpu, "util"), _num(gpu, "temp_c"), _num(gpu, "power_w")
    # (label, fraction, figure, style) per bar; every bar gets the same width
    long = [fmt_bytes(v) + (f" / {total_txt}" if total_txt else "") for _, v in rows]
    label_w = max(len(r[0]) for r in rows)
    if label_w + max(len(f) for f in long) + 10 > width:  # narrow: the total is in the title
        long = [fmt_bytes(v) for _, v in rows]
    bars = []
    for (label, value), figure in zip(rows, long, strict=True):
        fraction = value / total if (value is not None and total) else None
        bars.append((label, fraction, figure, _level_style(fraction)))
    if util is not None and not cpu and not compact:
        bars.append(("util", util / 100, f"{util:.0f}%", "cyan"))
    fig_w = max(len(b[2]) for b in bars)
    bar_w = max(4, width - label_w - fig_w - 2)
    for label, fraction, figure, style in bars:
        row = Text(no_wrap=True, overflow="crop")
        row.append(label.ljust(label_w) + " ")
        row.append_text(bar(fraction, bar_w, style))
        row.append(" " + figure)
        lines.append(row)
    if compact:
        lines = lines[1:]
    if cpu:
        if not compact:
            lines.append(Text("process memory (CPU run)", style="dim", no_wrap=True))
        return lines
    if compact:
        parts = [
            f"util {util:.0f}%" if util is not None else "",
            f"{temp:.0f}°C" if temp is not None else "",
            f"{power:.0f} W" if power is not None else "",
        ]
        if any(parts):
            lines.append(Text(" · ".join(p for p in parts if p), no_wrap=True))
        return lines
    parts = []
    if temp is not None:
        parts.append(f"temp {temp:.0f}°C")
    if power is not None:
        parts.append(f"power {power:.0f} W")
    if parts:
        lines.append(Text("  ".join(parts), no_wrap=True))
    elif not gpu:
        lines.append(Text("no GPU readings (NVML)", style="dim", no_wrap=True))
    return lines


class GpuMeter(Widget):
    DEFAULT_CSS = """
    GpuMeter {
        height: auto;
        min-height: 4;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.device: dict[str, Any] = {}
        self.mem: dict[str, Any] = {}
        self.gpu: dict[str, Any] = {}

    def update_values(
        self,
        device: dict[str, Any] | None = None,
        mem: dict[str, Any] | None = None,
        gpu: dict[str, Any] | None = None,
    ) -> None:
        new = (device or {}, mem or {}, gpu or {})
        if new != (self.device, self.mem, self.gpu):
            self.device, self.mem, self.gpu = new
            self.refresh(layout=True)

    def render(self) -> Text:
        if not self.device and not self.mem:
            return Text("waiting for the engine…", style="dim")
        compact = self.screen.has_class("-short") if self.is_attached else False
        lines = meter_lines(
            self.device, self.mem, self.gpu, self.content_size.width or 40, compact=compact
        )
        return Text("\n", no_wrap=True, overflow="crop").join(lines)
