"""tui.step_points: a history read with its step events folded into plot points leaves the
RunModel exactly as the same events applied one by one (hypothesis, derandomized)."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.events import parse_line
from tui.run_model import RunModel
from tui.step_points import StepPoints, read_events

NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(10**6), 10**6),
    st.sampled_from(["nan", "inf", "-inf", "1e-4"]),
    st.none(),
)
MEM = st.one_of(
    st.none(), st.dictionaries(st.sampled_from(["allocated", "peak"]), st.integers(0, 2**40))
)
STEP = st.fixed_dictionaries(
    {"type": st.just("step"), "step": st.integers(1, 40), "loss": NUMBER, "lr": NUMBER,
     "grad_norm": NUMBER, "it_s": st.one_of(st.none(), st.floats(0, 10)),
     "eta_s": st.one_of(st.none(), st.floats(0, 100)), "mem": MEM,
     "t": st.one_of(st.none(), st.floats(0, 1e9), st.just("x"))},
)  # fmt: skip
OTHER = st.one_of(
    st.fixed_dictionaries({"type": st.just("run_started"), "total_steps": st.just(40),
                           "resumed_from_step": st.one_of(st.none(), st.integers(0, 30))}),
    st.fixed_dictionaries({"type": st.just("log"), "message": st.text(max_size=5)}),
    st.fixed_dictionaries({"type": st.just("phase"), "name": st.sampled_from(["training", "saving"])}),
    st.fixed_dictionaries({"type": st.just("step"), "step": st.just(True)}),  # skipped: bad type
)  # fmt: skip
LINE = st.one_of(STEP.map(json.dumps), STEP.map(json.dumps), OTHER.map(json.dumps),
                 st.just("{torn"), st.just(""))  # fmt: skip


def _step(step: int, loss: float | None = 0.5, **fields: object) -> str:
    return json.dumps({"type": "step", "step": step, "loss": loss, "lr": 1e-4, "t": 1.0 + step,
                       "mem": {"peak": step}, **fields})  # fmt: skip


def _state(model: RunModel) -> dict:
    fields = ("step", "loss", "lr", "grad_norm", "it_s", "eta_s", "mem", "last_t", "phase",
              "status", "history_rev", "log_count", "total_steps")  # fmt: skip
    out = {name: getattr(model, name) for name in fields}
    out["losses"], out["lrs"] = list(model.losses), list(model.lrs)
    return json.loads(json.dumps(out, default=str).replace("NaN", '"nan"'))  # nan == nan


@settings(max_examples=150, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.lists(st.lists(LINE, max_size=30), min_size=1, max_size=4))
@example([[_step(5), _step(3), _step(4), _step(6)]])  # a resume's steps again, in one run
@example([[_step(1, mem={"peak": 9}), _step(2, loss=None), _step(3, mem=None)]])
@example([[_step(1), _step(2)], [_step(2), _step(3), _step(4, t="x")]])  # a step seen again
def test_folded_steps_leave_the_model_as_the_events_one_by_one(batches: list[list[str]]) -> None:
    whole, folded = RunModel(), RunModel()
    for lines in batches:
        raw = [line.encode() for line in lines]
        events = [e for e in map(parse_line, raw) if e is not None]
        changed = whole.apply(events)
        assert folded.apply(read_events(raw)) == changed
        assert _state(folded) == _state(whole)


def test_a_run_of_steps_is_one_points_object_and_its_newest_step_stays_whole() -> None:
    lines = [json.dumps({"type": "log", "message": "go"}).encode()]
    lines += [json.dumps({"type": "step", "step": s, "loss": 1 / s, "lr": 1e-4,
                          "mem": {"peak": s}}).encode() for s in range(1, 1001)]  # fmt: skip
    events = read_events(lines)
    assert [type(e).__name__ for e in events] == ["dict", "StepPoints", "dict"]
    points, newest = events[1], events[2]
    assert isinstance(points, StepPoints) and points.plain
    assert points.steps == list(range(1, 1000)) and points.mem == {"peak": 999}
    assert newest["step"] == 1000 and math.isclose(newest["loss"], 1e-3)
