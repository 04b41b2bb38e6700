"""A plot series kept ready to draw: growing numpy arrays, running ranges, an incremental EMA.

A 100,000-step run must redraw in milliseconds, so nothing here walks every point per redraw
in Python: new points are appended once (`Track.extend`), the smoothed twin is extended by the
same points only, and `Track.column_spans` reduces the points to at most two per plot column
(the lowest and the highest) with vectorised numpy before anything is drawn.

numpy is imported here, on the first plot with data, not at the app's start.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EmaState", "Track", "as_arrays", "preload", "reduce_points"]

_MIN_CAPACITY = 1024


def preload() -> None:
    """Import numpy now (from a worker thread), so the first plot does not stall the UI."""
    import numpy  # noqa: F401


class Track:
    """The finite (x, y) points of one series, in arrival order, at most `max_points` (the
    oldest are dropped). x is expected to grow (steps); points that go back are handled too."""

    def __init__(self, points: Iterable[tuple[float, float]] = (), max_points: int = 200_000):
        self.max_points = max(1, max_points)
        self._xs: np.ndarray | None = None  # numpy arrays from the first point on
        self._ys: np.ndarray | None = None
        self._n = 0
        self._sorted = True
        self.extend(points)

    def __len__(self) -> int:
        return self._n

    @property
    def xs(self) -> np.ndarray:
        assert self._xs is not None, "empty track"
        return self._xs[: self._n]

    @property
    def ys(self) -> np.ndarray:
        assert self._ys is not None, "empty track"
        return self._ys[: self._n]

    def points(self) -> list[tuple[float, float]]:
        if not self._n:
            return []
        return list(zip(self.xs.tolist(), self.ys.tolist(), strict=True))

    def extend(self, points: Iterable[tuple[float, float]]) -> None:
        pts = points if isinstance(points, (list, tuple)) else list(points)
        if pts:
            self.extend_arrays(*as_arrays(pts))

    def extend_arrays(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Append points given as two arrays; non-finite ones are skipped."""
        import numpy as np

        keep = np.isfinite(xs) & np.isfinite(ys)
        if not keep.all():
            xs, ys = xs[keep], ys[keep]
        self._append(xs, ys)

    def _append(self, xs: np.ndarray, ys: np.ndarray) -> None:
        import numpy as np

        k = len(xs)
        if not k:
            return
        if self._xs is None or self._ys is None:
            self._xs, self._ys = np.empty(_MIN_CAPACITY), np.empty(_MIN_CAPACITY)
        if self._sorted and (
            (k > 1 and bool(np.any(np.diff(xs) < 0))) or (self._n and xs[0] < self._xs[self._n - 1])
        ):
            self._sorted = False
        if k >= self.max_points:
            xs, ys, self._n = xs[-self.max_points :], ys[-self.max_points :], 0
            k = len(xs)
        need = self._n + k
        if need > self.max_points:  # drop the oldest
            keep = self.max_points - k
            self._xs[:keep] = self._xs[self._n - keep : self._n]
            self._ys[:keep] = self._ys[self._n - keep : self._n]
            self._n = keep
            need = self.max_points
        if need > len(self._xs):
            cap = max(_MIN_CAPACITY, min(self.max_points, 2 * need))
            self._xs = np.resize(self._xs, cap)
            self._ys = np.resize(self._ys, cap)
        self._xs[self._n : need] = xs
        self._ys[self._n : need] = ys
        self._n = need

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(x min, x max, y min, y max), or None when empty."""
        if not self._n:
            return None
        xs, ys = self.xs, self.ys
        x0, x1 = (float(xs[0]), float(xs[-1])) if self._sorted else (xs.min(), xs.max())
        return float(x0), float(x1), float(ys.min()), float(ys.max())

    def column_spans(
        self, x0: float, x1: float, columns: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(column, lowest y, highest y) for every column of `columns` over x0..x1 that holds a
        point: at most two values per column, whatever the number of points."""
        import numpy as np

        if not self._n:
            empty = np.empty(0)
            return empty.astype(int), empty, empty
        xs, ys = self.xs, self.ys
        if x1 == x0:
            cx = np.full(len(xs), columns // 2, dtype=np.int64)
        else:
            cx = ((xs - x0) / (x1 - x0) * (columns - 1) + 0.5).astype(np.int64)
            np.minimum(cx, columns - 1, out=cx)
        if not self._sorted:
            order = np.argsort(cx, kind="stable")
            cx, ys = cx[order], ys[order]
        starts = np.flatnonzero(np.r_[True, cx[1:] != cx[:-1]])
        return cx[starts], np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)


def as_arrays(points: Iterable[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs -> an x array and a y array (float64)."""
    import numpy as np

    pts = points if isinstance(points, (list, tuple)) else list(points)
    flat = np.fromiter(itertools.chain.from_iterable(pts), dtype=float, count=2 * len(pts))
    return flat[0::2], flat[1::2]


class EmaState:
    """An exponential moving average with TensorBoard's debiasing (the first points are not
    pulled towards zero), extended by new points only. Non-finite values are skipped.

    Vectorised in chunks: inside a chunk of m points the average is
    acc_j = w^(j+1) acc + (1 - w) w^j cumsum(w^-k y_k), with m small enough that w^-m stays
    below 1e3, so no precision is lost to the scaling.
    """

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.acc = 0.0
        self.n = 0
        w = weight
        self._chunk = max(1, int(math.log(1e3) / -math.log(w))) if 0 < w < 1 else 1

    def extend_arrays(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed twin of the points (xs, ys), continuing from the previous call."""
        import numpy as np

        keep = np.isfinite(xs) & np.isfinite(ys)
        if not keep.all():
            xs, ys = xs[keep], ys[keep]
        w = self.weight
        if not 0 < w < 1:
            self.n += len(ys)
            return xs, ys.copy()
        out = np.empty(len(ys))
        m = self._chunk
        pw = w ** np.arange(m, dtype=float)  # w^j
        for start in range(0, len(ys), m):
            y = ys[start : start + m]
            k = len(y)
            acc = w * pw[:k] * self.acc + (1 - w) * pw[:k] * np.cumsum(y / pw[:k])
            steps = self.n + 1 + np.arange(k, dtype=float)
            out[start : start + k] = acc / (1 - w**steps)
            self.acc, self.n = float(acc[-1]), self.n + k
        return xs, out

    def extend(self, points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        xs, ys = self.extend_arrays(*as_arrays(points))
        return list(zip(xs.tolist(), ys.tolist(), strict=True))


def reduce_points(
    points: Iterable[tuple[float, float]], x0: float, x1: float, columns: int
) -> list[tuple[int, float, float]]:
    """(column, lowest y, highest y) per occupied column: what `render_plot` draws."""
    cols, lo, hi = Track(points).column_spans(x0, x1, columns)
    return list(zip(cols.tolist(), lo.tolist(), hi.tolist(), strict=True))
