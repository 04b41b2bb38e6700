"""Terminal images without a terminal: the protocol chosen for what the terminal says it is,
and the escape sequences written (colour registers before pixels, the cursor after a Sixel
image), against textual-image 0.12's own output."""

from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw
from rich.control import Control

from engine import term_images
from engine.term_images import (
    TerminalInfo,
    choose_protocol,
    fit_cells,
    parse_cell_size,
    parse_xtversion,
    registers_first,
)


def test_xtversion_and_cell_size_answers_are_parsed():
    assert parse_xtversion("\x1bP>|kitty(0.26.5)\x1b\\") == TerminalInfo("kitty", (0, 26, 5))
    assert parse_xtversion("\x1bP>|XTerm(390)\x1b\\") == TerminalInfo("xterm", (390,))
    assert parse_xtversion("\x1bP>|WezTerm 20240203-110809-5046fc22\x1b\\").name == "wezterm"
    assert parse_xtversion("garbage") is None
    assert parse_cell_size("\x1b[6;17;8t") == (8, 17)
    assert parse_cell_size("\x1b[6;0;0t") is None


@pytest.mark.parametrize(
    ("detected", "terminal", "forced", "chosen"),
    [
        # kitty before 0.28 has TGP but no Unicode placeholders: half-cells
        ("kitty", TerminalInfo("kitty", (0, 26, 5)), None, "halfcell"),
        ("kitty", TerminalInfo("kitty", (0, 27, 1)), "auto", "halfcell"),
        ("kitty", TerminalInfo("kitty", (0, 28, 0)), None, "kitty"),
        ("kitty", TerminalInfo("kitty", (0, 35, 2)), None, "kitty"),
        ("kitty", None, None, "kitty"),  # no answer: as detected
        ("sixel", TerminalInfo("xterm", (390,)), None, "sixel"),
        ("halfcell", TerminalInfo("xterm", (390,)), None, "halfcell"),
        # a setting (or --images, DREAMBOOTH_TUI_IMAGES) wins
        ("kitty", TerminalInfo("kitty", (0, 26, 5)), "kitty", "kitty"),
        ("sixel", None, "half-cell", "halfcell"),
        ("sixel", None, "TGP", "kitty"),
    ],
)
def test_protocol_choice(detected, terminal, forced, chosen):
    assert choose_protocol(detected, terminal, forced) == chosen


def _picture() -> Image.Image:
    """Bands of colour from top to bottom: the colours that come last are first used late."""
    image = Image.new("RGB", (48, 48), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate([(200, 20, 20), (20, 160, 40), (30, 60, 210), (230, 200, 30)]):
        draw.rectangle((4, 6 + i * 10, 44, 12 + i * 10), fill=colour)
    draw.ellipse((10, 10, 38, 38), outline=(0, 0, 0))
    return image


def _sixel_body(sixel: str) -> tuple[str, str]:
    """(the header with raster attributes, the rest)."""
    match = re.match(r'\x1bP[0-9;]*q"\d+;\d+;\d+;\d+', sixel)
    assert match
    return sixel[: match.end()], sixel[match.end() :]


def decode_sixel(sixel: str) -> dict[tuple[int, int], tuple[int, ...]]:
    """A small Sixel decoder: (x, y) -> the colour (RGB percentages) painted there last, with
    each register's value as defined when the pixel is painted."""
    _, body = _sixel_body(sixel)
    body = body.removesuffix("\x1b\\")
    registers: dict[int, tuple[int, ...]] = {}
    pixels: dict[tuple[int, int], tuple[int, ...]] = {}
    colour, x, y, i = None, 0, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "#":
            match = re.match(r"#(\d+)(;2;(\d+);(\d+);(\d+))?", body[i:])
            number = int(match.group(1))
            if match.group(2):
                registers[number] = tuple(int(match.group(k)) for k in (3, 4, 5))
            colour = number
            i += match.end()
            continue
        count = 1
        if ch == "!":
            match = re.match(r"!(\d+)", body[i:])
            count = int(match.group(1))
            i += match.end()
            ch = body[i]
        if ch == "$":
            x = 0
        elif ch == "-":
            x, y = 0, y + 6
        elif "?" <= ch <= "~":
            bits = ord(ch) - 63
            for _ in range(count):
                for row in range(6):
                    if bits >> row & 1:
                        pixels[(x, y + row)] = registers[colour]
                x += 1
        i += 1
    return pixels


def _first_pixel(body: str) -> int:
    for token in re.finditer(r"#\d+(?:;2;\d+;\d+;\d+)?|.", body):
        if not token.group().startswith("#"):
            return token.start()
    return len(body)


def test_sixel_colour_registers_are_defined_before_the_first_pixel():
    from textual_image._sixel import image_to_sixels

    raw = image_to_sixels(_picture())
    header, body = _sixel_body(raw)
    # textual-image 0.12 defines a register where its colour is first used: after pixels
    assert body.rfind(";2;") > _first_pixel(body)
    fixed = registers_first(raw)
    fixed_header, fixed_body = _sixel_body(fixed)
    assert fixed_header == header
    assert fixed_body.rfind(";2;") < _first_pixel(fixed_body)  # all of them up front
    assert sorted(re.findall(r"#(\d+);2;", fixed_body)) == sorted(re.findall(r"#(\d+);2;", raw))
    # the same picture, pixel for pixel
    assert decode_sixel(fixed) == decode_sixel(raw)
    assert len(decode_sixel(fixed)) == 48 * 48


def test_fit_cells_keeps_the_aspect_ratio_from_the_cell_size():
    # a square image in 32 columns: as many rows as make a square on the screen
    assert fit_cells((512, 512), 32, None, (10, 20)) == (32, 16)
    assert fit_cells((512, 512), 32, None, (8, 17)) == (32, 15)  # not 2 rows (the old --show)
    assert fit_cells((512, 256), 40, None, (8, 16)) == (40, 10)
    # limited by the height: narrower, aspect kept
    assert fit_cells((512, 512), 80, 20, (10, 20)) == (40, 20)


async def test_sixel_widget_leaves_the_cursor_on_the_image_last_row(monkeypatch):
    """After the image, Textual writes the rest of the image's last row from the cursor: it
    must be on that row (textual-image 0.12 puts it on the row below)."""
    from textual.app import App
    from textual_image.widget import sixel as upstream

    from tui.widgets.image_protocol import sixel_widget_class

    class Demo(App):
        CSS = "#a, #b { width: 12; height: 6; } #b { offset: 20 3; }"

        def compose(self):
            yield upstream.Image(_picture(), id="a")
            yield sixel_widget_class()(_picture(), id="b")

    app = Demo()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        for widget_id, fixed in (("a", False), ("b", True)):
            impl = app.query_one(f"#{widget_id}").children[0]
            region = app.screen.find_widget(impl).visible_region
            strips = impl.render_lines(impl.region.reset_offset)
            assert len(strips) == region.height and all(not s for s in strips[:-1])
            segments = list(strips[-1])
            start, data, end = (s.text for s in segments)
            assert start == Control.move_to(region.x, region.y).segment.text
            assert data.startswith("\x1bP") and data.endswith("\x1b\\")
            below = Control.move_to(region.right, region.bottom).segment.text
            last_row = Control.move_to(region.right, region.bottom - 1).segment.text
            assert end == (last_row if fixed else below)
            _, body = _sixel_body(data)
            if fixed:  # and its colours are defined up front
                assert body.rfind(";2;") < _first_pixel(body)


def test_generate_show_keeps_the_aspect_and_honours_images(tmp_path, monkeypatch, capsys):
    from rich.console import Console

    from engine.generate.run import _show

    path = tmp_path / "square.png"
    _picture().resize((64, 64)).save(path)
    monkeypatch.setattr(term_images, "cell_size", lambda: (10, 20))
    console = Console(width=80, color_system="truecolor", force_terminal=False, height=100)
    monkeypatch.setenv(term_images.ENV_VAR, "halfcell")
    _show(path, "[b]caption[/b]", console=console)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[b]caption[/b]"
    picture = lines[1:]
    # 32+ columns wide and half as many rows (a square with 1:2 cells), not 2 rows
    assert len(picture) == 32 and all("▀" in line or "▄" in line for line in picture)
    # --images wins over the environment
    _show(path, "c", images="unicode", console=console)
    out = capsys.readouterr().out
    assert "▀" not in out and any(ch in out for ch in "░▒▓█")


def test_import_on_a_terminal_that_reports_no_size_does_not_crash(tmp_path):
    """A fresh pseudo-terminal reports 0 columns: textual-image 0.12 divides by it on import."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    parent, child = pty.openpty()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", "import tui.widgets.image_protocol as p; print('ok', p.resolve())"],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(parent)
    assert proc.returncode == 0 and b"ok halfcell" in out, out[-600:]


def test_show_prints_a_sixel_image_through_a_real_console(tmp_path, monkeypatch):
    """`generate --show`'s Sixel renderable printed by Rich to a terminal console: the image's
    data with its colour registers up front, and the cursor saved and restored around it (it
    crashed on textual-image's cursor move, a rich Control, in a real xterm)."""
    import io

    from rich.console import Console

    monkeypatch.setattr(term_images, "cell_size", lambda: (10, 20))
    path = tmp_path / "picture.png"
    _picture().save(path)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system="truecolor")
    console.print(term_images.renderable(path, "sixel", 20))
    text = out.getvalue()
    start = text.index("\x1bP")
    sixel = text[start : text.index("\x1b\\", start) + 2]
    _, body = _sixel_body(sixel)
    assert body.rfind(";2;") < _first_pixel(body)
    assert "\x1b7" in text[:start] and "\x1b8" in text[start:]
    assert text[:start].count("\n") == 10  # the rows the image takes: 20 columns, aspect kept
