"""The Data screen's jobs in worker threads: the dataset check and the thumbnails, each giving
the messages its worker posts back. engine.doctor, engine.images and PIL load here, in the
worker, not before the first frame."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from tui.screens.data_report import bucket_map
from tui.widgets.thumbnail_grid import make_thumbnail

if TYPE_CHECKING:
    from engine.doctor import DatasetReport

__all__ = [
    "MAX_THUMBNAILS",
    "DatasetCheckFailed",
    "DatasetChecked",
    "ThumbnailsReady",
    "check_dataset",
    "thumbnail_batches",
]

MAX_THUMBNAILS = 48


class DatasetChecked(Message):
    def __init__(self, folder: Path, report: DatasetReport, buckets: dict | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.report = report
        self.buckets = buckets  # path -> aspect-ratio bucket, when the config uses buckets


class DatasetCheckFailed(Message):
    def __init__(self, folder: Path, error: str) -> None:
        super().__init__()
        self.folder = folder
        self.error = error


class ThumbnailsReady(Message):
    def __init__(self, folder: Path, items: list, more: int = 0) -> None:
        super().__init__()
        self.folder = folder
        self.items = items  # [(PIL image or None, file name, flagged)]
        self.more = more  # images left out of the grid


def check_dataset(
    folder: Path,
    resolution: int,
    buckets: tuple[str, str, str | None],
    cancelled: Callable[[], bool],
) -> DatasetChecked | DatasetCheckFailed | None:
    """The folder's check (with each image's bucket where `buckets` turns them on); None when
    the worker was cancelled meanwhile."""
    from engine.doctor import check_folder

    try:
        report = check_folder(folder, resolution=resolution)
    except OSError as exc:
        if cancelled():
            return None
        reason = exc.strerror or str(exc)
        return DatasetCheckFailed(folder, f"cannot read the folder: {reason}")
    if cancelled():
        return None
    return DatasetChecked(folder, report, bucket_map(report, resolution, *buckets))


def thumbnail_batches(folder: Path, cancelled: Callable[[], bool]) -> Iterator[ThumbnailsReady]:
    """The folder's first MAX_THUMBNAILS previews, 8 a message (the last says how many more);
    nothing where the folder cannot be listed, no more once cancelled."""
    from engine.images import list_image_files

    try:
        paths = list_image_files(folder)
    except OSError:
        return
    shown, more = paths[:MAX_THUMBNAILS], max(0, len(paths) - MAX_THUMBNAILS)
    batch: list = []
    for n, path in enumerate(shown, 1):
        if cancelled():
            return
        batch.append((make_thumbnail(path), path.name, False))
        if len(batch) == 8 or n == len(shown):
            yield ThumbnailsReady(folder, batch, more if n == len(shown) else 0)
            batch = []
