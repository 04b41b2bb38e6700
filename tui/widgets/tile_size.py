"""How large image tiles are: the one sizing rule of the app's image grids (Generate, the
Train samples, the Data previews). Plain arithmetic, no imports: the Data screen keeps PIL
out of the first frame."""

from __future__ import annotations

__all__ = ["grow_rows", "tile_columns"]


def tile_columns(rows: int, width: int) -> int:
    """How many tiles of `rows`-row images fit `width` cells (a tile: rows*2+2 wide, a gap
    of one between tiles)."""
    return max(1, (width + 1) // (rows * 2 + 2 + 1))


def grow_rows(
    count: int, width: int, height: int, caption_lines: int, max_rows: int, min_rows: int = 3
) -> int:
    """The largest image height in rows (min_rows..max_rows) at which `count` tiles fit a grid
    of width x height cells (a tile: rows*2+2 wide plus a gap, rows + caption lines tall);
    min_rows when even those do not fit (the grid scrolls)."""
    best = min_rows
    for rows in range(min_rows, max(min_rows, max_rows) + 1):
        columns = tile_columns(rows, width)
        lines = -(-max(1, count) // columns)
        if columns * (rows * 2 + 3) - 1 <= width and lines * (rows + caption_lines) <= height:
            best = rows
    return best
