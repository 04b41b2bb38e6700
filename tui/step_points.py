"""Reading a run's events with its step events folded into plot points (the tail worker's side).

A re-attached run hands the app its whole history: 100,000 step events for a long run. Kept as
one dict each until the UI thread had folded them in, they cost more than reading them: two
containers per event, alive across several young collections, so the cyclic garbage collector
walked each of them again and again (~0.3 s of CPU per 100k events), and each was then folded
in field by field.

`read_events(lines)` parses each line with `engine.events.parse_line` (the same accept and
reject rules) and folds each run of consecutive step events into one `StepPoints`: the steps,
losses and learning rates of all but the newest, plus the little of them that outlives the
run (the newest `mem` dict, the newest time). The newest step event of the run follows it as
an ordinary dict, so the fields only the newest step shows (grad norm, it/s, ETA) come from it
unchanged. Each parsed dict is dropped at once, so it dies young and is never collected.
`RunModel.apply` takes the points as if each step event had come whole (tests/test_step_points.py
holds the two ways equal).

Torch-free and Textual-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.events import parse_line
from tui.run_model import _float as as_float  # the model's own reading of a number

__all__ = ["StepPoints", "read_events"]


@dataclass(slots=True)
class StepPoints:
    """Consecutive step events, less the newest one (which follows them as a dict)."""

    steps: list[int] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    lrs: list[float | None] = field(default_factory=list)
    mem: dict[str, Any] | None = None  # the newest dict-valued `mem` among them
    t: float | None = None  # the newest time among them
    plain: bool = True  # steps strictly increasing, every loss and lr present


def read_events(lines: list[bytes]) -> list[Any]:
    """Events (dicts) and `StepPoints`, in file order; bad lines are skipped as `parse_line`
    skips them."""
    out: list[Any] = []
    points: StepPoints | None = None
    last: dict[str, Any] | None = None  # the run's newest step event
    for raw in lines:
        event = parse_line(raw)
        if event is None:
            continue
        if event["type"] != "step":
            if last is not None:
                if points is not None:
                    out.append(points)
                    points = None
                out.append(last)
                last = None
            out.append(event)
            continue
        if last is not None:
            if points is None:
                points = StepPoints()
            _fold(points, last)
        last = event
    if last is not None:
        if points is not None:
            out.append(points)
        out.append(last)
    return out


def _fold(points: StepPoints, event: dict[str, Any]) -> None:
    step = event["step"]  # parse_line: a step event has an int step
    loss, lr = event.get("loss"), event.get("lr")
    loss = loss if type(loss) is float else as_float(loss)
    lr = lr if type(lr) is float else as_float(lr)
    steps = points.steps
    if points.plain and (loss is None or lr is None or (steps and steps[-1] >= step)):
        points.plain = False
    steps.append(step)
    points.losses.append(loss)
    points.lrs.append(lr)
    mem = event.get("mem")
    if type(mem) is dict:
        points.mem = mem
    t = event.get("t")
    t = t if type(t) is float else as_float(t)
    if t is not None:
        points.t = t
