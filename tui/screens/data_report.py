"""The dataset check as the Data screen shows it: the summary text and the problem table's rows
(rich text only; engine.doctor is loaded by the check's worker before these run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from engine.doctor import DatasetReport

__all__ = ["SEVERITY_STYLE", "problem_rows", "report_text"]

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


def problem_rows(report: DatasetReport) -> list[tuple[Text, Text, Text, str]]:
    """(file name, size, problem labels, row key) for each image with a problem, in order;
    the labels styled by the worst problem's severity."""
    from engine.doctor import severity  # imported by the check already

    rows = []
    for info in report.images:
        if not info.problems:
            continue
        size = f"{info.width}×{info.height}" if info.width else "—"
        worst = severity(info.problems[0])
        labels = ", ".join(info.label(code) for code in info.problems)
        rows.append(
            (
                Text(info.name),
                Text(size),
                Text(labels, style=SEVERITY_STYLE.get(worst, "")),
                str(info.path),
            )
        )
    return rows
