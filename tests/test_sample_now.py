"""Sample now (issue 14): a request written into a live run's folder gets validation samples at
the engine's next step, with the requested prompt, and the training is unchanged by it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from enginehelpers import cli, losses, of_type, prepare, train_in_process

from engine.events import EventWriter
from engine.runs import RunLock
from engine.sample_request import (
    REQUEST_FILE,
    SampleRequestError,
    request_samples,
    take_request,
)

ASKED_PROMPT = "a photo of sks shape on a [red] table"  # brackets: shown literally, not markup
TRAIN = {"max_train_steps": 4, "validation_steps": 1000, "checkpointing_steps": 3}


def _ask_at_step(monkeypatch, step: int, prompts: list[str]) -> None:
    """Write a request from inside the run, while the engine emits the `step` event of STEP
    (as a user pressing the key at that moment would)."""
    emit = EventWriter.emit

    def emit_and_ask(self, type: str, **fields):
        event = emit(self, type, **fields)
        if type == "step" and fields.get("step") == step and self.path.exists():
            request_samples(self.path.parent, prompts)
        return event

    monkeypatch.setattr(EventWriter, "emit", emit_and_ask)


@pytest.mark.timeout(600)  # two runs of the tiny model: minutes on a loaded machine
def test_request_mid_run_samples_at_next_step_and_keeps_losses(tiny_dir, tmp_path, monkeypatch):
    code, plain_dir, plain = train_in_process(tmp_path / "plain", train=TRAIN)
    assert code == 0, of_type(plain, "error")
    assert of_type(plain, "sample") and all(
        e["step"] == 4 and not e.get("requested") for e in of_type(plain, "sample")
    )

    _ask_at_step(monkeypatch, 2, [ASKED_PROMPT])
    code, run_dir, events = train_in_process(tmp_path / "asked", train=TRAIN)
    assert code == 0, of_type(events, "error")

    asked = [e for e in of_type(events, "sample") if e.get("requested")]
    assert [e["step"] for e in asked] == [2]  # the step boundary right after the request
    assert asked[0]["prompt"] == ASKED_PROMPT
    assert len(asked[0]["paths"]) == 2  # evaluation.num_images of the demo config
    for rel in asked[0]["paths"]:
        assert rel.startswith("samples/step-000002-asked/")
        assert (run_dir / rel).stat().st_size > 0
    index = json.loads((run_dir / "samples/step-000002-asked/prompts.json").read_text())
    assert index[0]["prompt"] == ASKED_PROMPT
    # the run went on: every step after the request, the scheduled final samples, completed
    assert sorted(losses(events)) == list(range(1, 5))
    assert of_type(events, "finished")[-1]["status"] == "completed"
    assert not (run_dir / REQUEST_FILE).exists()  # taken

    # the samples changed nothing in the training: same losses, same RNG state in the checkpoint
    assert losses(events) == losses(plain)
    rng = [
        torch.load(d / "checkpoints/step-000003/rng-0.pt", weights_only=False)
        for d in (plain_dir, run_dir)
    ]
    assert torch.equal(rng[0]["torch"], rng[1]["torch"])
    assert rng[0]["python"] == rng[1]["python"]


def test_request_without_prompt_samples_the_config_prompts(tiny_dir, tmp_path, monkeypatch):
    _ask_at_step(monkeypatch, 2, [])
    code, _, events = train_in_process(
        tmp_path, train={"max_train_steps": 3, "validation_steps": 1000}
    )
    assert code == 0, of_type(events, "error")
    asked = [e for e in of_type(events, "sample") if e.get("requested")]
    assert [(e["step"], e["prompt"]) for e in asked] == [(2, "a photo of sks shape")]


def test_request_is_taken_once_and_a_broken_one_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    with RunLock(run_dir):
        request_samples(run_dir, ["  one  ", "", "two"])
    request = take_request(run_dir)
    assert request is not None and request.prompts == ["one", "two"]
    assert take_request(run_dir) is None  # consumed: the file is gone
    (run_dir / REQUEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        take_request(run_dir)
    assert not (run_dir / REQUEST_FILE).exists()


def test_request_to_a_run_that_is_not_live_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{}")
    with pytest.raises(SampleRequestError, match="no engine is running"):
        request_samples(run_dir, ["x"])
    assert not (run_dir / REQUEST_FILE).exists()


def test_cli_sample_writes_the_request_for_a_live_run(tmp_path):
    run_dir = prepare(tmp_path)
    with RunLock(run_dir):  # a live engine holds this lock
        done = cli("sample", str(run_dir), "--prompt", ASKED_PROMPT, "--prompt", "second")
    assert done.returncode == 0, done.stderr
    assert "at the next step" in done.stdout
    body = json.loads((run_dir / REQUEST_FILE).read_text())
    assert body["prompts"] == [ASKED_PROMPT, "second"]


@pytest.mark.parametrize("live", [False, True])
def test_cli_sample_bad_input_is_one_line_exit_2(tmp_path, live):
    if live:
        run_dir = prepare(tmp_path)
        args = [str(run_dir)] + [a for i in range(17) for a in ("--prompt", f"p{i}")]
        with RunLock(run_dir):
            done = cli("sample", *args)
        expected = "at most 16"
    else:
        done = cli("sample", str(Path(tmp_path) / "nope"))
        expected = "no such run folder"
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and expected in done.stderr
    assert "Traceback" not in done.stderr


def test_sampling_on_request_leaves_every_global_rng_as_it_was(tmp_path, monkeypatch):
    """Whatever the pipeline draws from the global RNGs (the tiny one draws nothing), training
    after the request sees them as they were: dropout and the like stay as in a run without it."""
    import random
    from types import SimpleNamespace

    from engine.training import sample_now, samples

    (tmp_path / REQUEST_FILE).write_text(json.dumps({"v": 1, "prompts": ["p"]}))
    ctx = SimpleNamespace(
        is_main=True,
        run_dir=tmp_path,
        cfg=SimpleNamespace(evaluation=SimpleNamespace(prompts=["from the config"])),
        log=lambda *args: None,
        any_process=lambda flag: flag,
    )
    drawn = []

    def draw_while_sampling(ctx, models, step, **options):
        drawn.append((torch.rand(1), random.random(), options))

    monkeypatch.setattr(samples, "sample_or_warn", draw_while_sampling)
    torch_state, py_state = torch.get_rng_state().clone(), random.getstate()
    sample_now.serve(ctx, None, 5)
    assert [d[2]["prompts"] for d in drawn] == [["p"]] and drawn[0][2]["requested"] is True
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == py_state


@pytest.mark.timeout(600)
def test_two_processes_serve_a_request_and_stay_in_step(tiny_dir, tmp_path):
    """accelerate launch, 2 processes (gloo on the CPU): the main one takes the request, the
    other waits for its samples, and both finish the run together."""
    from test_multiprocess import two_processes

    from engine.events import read_events

    with two_processes(tmp_path, 12, timeout=300) as (proc, run_dir, out):
        asked_after = max(e["step"] for e in of_type(read_events(run_dir / "events.jsonl"), "step"))
        request_samples(run_dir, ["two processes"])
        assert proc.wait(timeout=400) == 0, out.read_text()[-3000:]
    events = read_events(run_dir / "events.jsonl")
    assert of_type(events, "run_started")[0]["world_size"] == 2
    asked = [e for e in of_type(events, "sample") if e.get("requested")]
    assert [e["prompt"] for e in asked] == ["two processes"]
    assert asked_after <= asked[0]["step"] <= 12
    assert [e["step"] for e in of_type(events, "step")] == list(range(1, 13))
    assert of_type(events, "finished")[-1]["status"] == "completed"
