"""The dataset check as the Data screen shows it: the summary text and the problem table's rows
(rich text only; engine.doctor is loaded by the check's worker before these run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from engine.doctor import DatasetReport

__all__ = ["SEVERITY_STYLE", "bucket_map", "bucket_rows", "problem_rows", "report_text"]

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def report_text(report: DatasetReport) -> Text:
    """The headline, one line per kind of problem (styled by severity), and a hint when the
    folder holds no image."""
    lines = Text()
    lines.append(report.headline(), style="bold")
    for line in report.problem_lines():
        lines.append("\n")
        lines.append(line, style=SEVERITY_STYLE.get(line.split(":", 1)[0], ""))
    if not report.images:
        lines.append("\nno images here: pick the folder that holds them", style="yellow")
    return lines


def _cells(info) -> tuple[Text, Text, Text]:
    """(file name, size, problem labels styled by the worst problem's severity) of an image."""
    from engine.doctor import severity  # imported by the check already

    size = f"{info.width}×{info.height}" if info.width else "—"
    worst = severity(info.problems[0]) if info.problems else ""
    labels = ", ".join(info.label(code) for code in info.problems)
    return Text(info.name), Text(size), Text(labels, style=SEVERITY_STYLE.get(worst, ""))


def problem_rows(report: DatasetReport) -> list[tuple[Text, Text, Text, str]]:
    """(file name, size, problem labels, row key) for each image with a problem, in order;
    the labels styled by the worst problem's severity."""
    return [(*_cells(info), str(info.path)) for info in report.images if info.problems]


def bucket_map(
    report: DatasetReport, resolution: int, setting: str, model: str, revision
) -> dict | None:
    """Each image's aspect-ratio bucket when the config trains with buckets (`auto` resolved
    by the model's family, read without the network), else None. Run in the check's worker."""
    from engine.buckets import buckets_on
    from engine.doctor.buckets import image_buckets
    from engine.families import known_family
    from engine.model_family import bucket_step_of

    if setting == "off" or not model:
        return None
    if setting == "auto" and not buckets_on(setting, known_family(model, revision)):
        return None
    return image_buckets(report, resolution, bucket_step_of(model, revision))


def bucket_rows(report: DatasetReport, buckets: dict) -> list[tuple[Text, Text, Text, Text, str]]:
    """(file name, size, bucket, problem labels, row key) for every image, in order; an image
    too small for any bucket (skipped in training) has its bucket cell in yellow."""
    from engine.doctor.buckets import bucket_label

    rows = []
    for info in report.images:
        name, size, labels = _cells(info)
        known = info.path in buckets
        bucket = Text(
            bucket_label(buckets[info.path]) if known else "—",
            style="yellow" if known and buckets[info.path] is None else "",
        )
        rows.append((name, size, bucket, labels, str(info.path)))
    return rows
