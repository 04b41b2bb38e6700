"""A real full disk at each write the engine makes beyond the checkpoint (tests/test_full_disk.py):
final/, the validation samples, the class images, events.jsonl and run.json.

The run's output folder is a small tmpfs; the test fills it for real (the kernel answers the
engine's next write with ENOSPC) just before the engine starts the write under test, by wrapping
the engine function that begins it. After each: one line says what happened and where to free
space, no partial folder or file is left, the app and `runs` (engine.runs.run_info) show the
status, and once there is room again `--resume latest` takes the newest whole checkpoint and
completes. One trained run (checkpoint at step 2, final/ at 4) is shared: each case works on a
copy of it (docs/reliability.md, "Full disk")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from diskhelpers import fill, fill_page, small_disk
from enginehelpers import of_type, prepare, train_in_process

from engine.disk_reserve import RESERVE_FILE
from engine.runs import read_run_json, run_info

# slow: several tiny runs; the timeout is for a loaded machine (each case takes about 20 s alone)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LEAVE = 64 << 10  # left free by the final/ case: room for events and run.json, not for final/
RUN = {
    "max_train_steps": 4,
    "checkpointing_steps": 2,
    "checkpoints_total_limit": None,
    "validation_steps": 3,
}
FEW = {"num_images": 1, "num_inference_steps": 1}  # samples: one small image per step


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> Path:
    with small_disk(tmp_path_factory.mktemp("full-disk") / "small-disk") as where:
        yield where


@pytest.fixture(scope="module")
def trained(tiny_dir, disk) -> Path:
    """A finished run on the small disk: checkpoint step-000002, samples, final/."""
    run = prepare(disk / "cfg", train={**RUN, "output_dir": str(disk / "runs")}, evaluation=FEW)
    code, _, events = train_in_process(run.parent, run_dir=run)
    assert code == 0, of_type(events, "error")
    return run


@pytest.fixture
def run(trained, request) -> Path:
    """A copy of the trained run (without its samples), removed after the test."""
    copy = trained.with_name(f"{trained.name}-{request.node.name[:40]}")
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("samples"))
    yield copy
    shutil.rmtree(copy, ignore_errors=True)
    for filler in trained.parent.parent.glob("filler*.bin"):
        filler.unlink()


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def leftovers(run: Path) -> list[str]:
    """Temp files and folders of an interrupted write, anywhere in the run."""
    return sorted(
        str(p.relative_to(run))
        for p in run.rglob("*")
        if p.name.startswith((".tmp-", ".old-")) or p.name.endswith(".tmp")
    )


def assert_failed_in_one_line(run: Path, events: list[dict], message: str, where: Path) -> None:
    """One `disk` error naming the write and where to free space; the run shown failed; the
    disk reserve given back."""
    assert [(e["kind"], e["message"]) for e in of_type(events, "error")] == [("disk", message)]
    assert of_type(events, "error")[0]["hint"] == f"free space under {where}, then resume the run"
    assert of_type(events, "finished")[-1]["status"] == "failed"
    info = run_info(run)
    assert (info.state, info.live, info.status) == ("failed", False, "failed")
    assert not (run / RESERVE_FILE).exists()


def assert_resumes(run: Path, step: int | None) -> list[dict]:
    """With room again, `--resume latest` takes the checkpoint of `step` and completes."""
    for filler in run.parent.parent.glob("filler*.bin"):
        filler.unlink()
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 0, of_type(events, "error")
    start = of_type(events, "run_started")[-1]
    assert start["resumed_from_step"] == step
    after = events[events.index(start) :]
    assert of_type(after, "finished")[-1]["status"] == "completed"
    assert run_info(run).state == "completed"
    assert leftovers(run) == []
    return after


def test_full_disk_while_saving_final_keeps_the_previous_final_and_resumes(
    run, disk, monkeypatch, capsys
):
    from engine.training import final

    before = files(run / "final")
    real = final.save_final

    def on_a_full_disk(ctx, models):
        fill(disk, LEAVE)
        return real(ctx, models)

    monkeypatch.setattr(final, "save_final", on_a_full_disk)
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 1
    message = "disk full while writing the final model; the last good checkpoint is step-000002"
    assert_failed_in_one_line(run, events, message, run.parent)
    assert files(run / "final") == before  # the previous final model, whole
    assert leftovers(run) == []  # no .tmp-final
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    monkeypatch.undo()
    assert_resumes(run, 2)
    assert (run / "final" / "model_index.json").is_file()


def test_full_disk_while_sampling_is_one_warning_and_leaves_no_sample_folder(
    run, disk, monkeypatch
):
    from engine.training import samples

    real = samples.sample

    def on_a_full_disk(ctx, models, step):
        if step != 3:
            return real(ctx, models, step)
        filler = fill(disk, 0)  # full for this step's images only
        try:
            return real(ctx, models, step)
        finally:
            filler.unlink()

    monkeypatch.setattr(samples, "sample", on_a_full_disk)
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 0, of_type(events, "error")
    events = events[events.index(of_type(events, "run_started")[-1]) :]
    warnings = [e["message"] for e in of_type(events, "log") if e["level"] == "warning"]
    assert warnings == [
        f"validation samples at step 3 failed (disk full while writing them; free space under "
        f"{run.parent}); training goes on"
    ]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000004"]
    assert [e["step"] for e in of_type(events, "sample")] == [4]
    for e in of_type(events, "sample"):
        assert all((run / p).is_file() for p in e["paths"])
    assert of_type(events, "finished")[-1]["status"] == "completed"
    assert run_info(run).state == "completed"
    assert leftovers(run) == []


def test_full_disk_while_writing_events_fails_in_one_line_and_resumes(
    run, disk, monkeypatch, capsys
):
    from engine.training.loop import Training

    real = Training.step_event

    def on_a_full_disk(self, step, *args):
        if step == 3:
            fill(disk, 0)
            fill_page(run / "events.jsonl")  # its next line needs a page the disk has not
        return real(self, step, *args)

    monkeypatch.setattr(Training, "step_event", on_a_full_disk)
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 1
    message = (
        "disk full while writing the run file events.jsonl; the last good checkpoint is step-000002"
    )
    assert_failed_in_one_line(run, events, message, run.parent)
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    assert leftovers(run) == []
    monkeypatch.undo()
    after = assert_resumes(run, 2)
    assert [e["step"] for e in of_type(after, "step")] == [3, 4]


def test_full_disk_while_writing_run_json_fails_in_one_line_and_resumes(
    run, disk, monkeypatch, capsys
):
    import engine.train

    real = engine.train.update_run_json

    def on_a_full_disk(run_dir, **fields):
        fill(disk, 0)  # run.json's next version needs a page the disk has not
        return real(run_dir, **fields)

    monkeypatch.setattr(engine.train, "update_run_json", on_a_full_disk)
    code, _, events = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 1
    message = (
        "disk full while writing the run file run.json; the last good checkpoint is step-000002"
    )
    assert_failed_in_one_line(run, events, message, run.parent)  # the reserve made room for it
    assert read_run_json(run)["status"] == "failed"
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    assert leftovers(run) == []  # no run.json.tmp
    monkeypatch.undo()
    assert_resumes(run, 2)


def test_a_disk_full_before_the_engine_starts_is_one_line_and_nothing_changes(run, disk, capsys):
    fill(disk, 0)
    fill_page(run / "events.jsonl")
    before = files(run)
    code, _, _ = train_in_process(run.parent, resume="latest", run_dir=run)
    assert code == 1
    err = capsys.readouterr().err
    assert "error: disk full while writing the run file run.json" in err
    assert "Traceback" not in err
    assert files(run) == before  # no room even for the reserve: nothing written, nothing lost
    assert run_info(run).state == "completed"  # what the previous session left
    assert_resumes(run, 2)


def test_full_disk_while_making_class_images_keeps_the_whole_ones_and_resumes(
    tiny_dir, disk, monkeypatch, capsys
):
    import engine.class_images as class_images

    classes = disk / "class-images"
    train = {
        "output_dir": str(disk / "runs"),
        "max_train_steps": 2,
        "checkpointing_steps": 100,
        "validation_steps": 100,
        "prior_preservation": True,
        "class_data": str(classes),
        "num_class_images": 4,
        "sample_batch_size": 1,
    }
    run = prepare(disk / "cfg-class", train=train, evaluation=FEW)
    real = class_images.write_new_image
    calls = []

    def on_a_full_disk(folder, stem, image):
        calls.append(stem)
        if len(calls) == 3:
            fill(disk, 0)  # the third image finds the disk full
        return real(folder, stem, image)

    monkeypatch.setattr(class_images, "write_new_image", on_a_full_disk)
    try:
        code, _, events = train_in_process(run.parent, run_dir=run)
        assert code == 1
        message = "disk full while writing the class images (2 of 4 made)"
        assert_failed_in_one_line(run, events, message, classes)
        err = capsys.readouterr().err
        assert f"error: {message}" in err and "Traceback" not in err
        made = files(classes)
        assert len(made) == 2 and not any(n.startswith(".tmp-class") for n in made)
        monkeypatch.undo()
        after = assert_resumes(run, None)  # no checkpoint yet: from step 0
        logs = [e["message"] for e in of_type(after, "log")]
        assert "no checkpoint yet: starting from step 0" in logs
        assert "class images 4/4" in logs
        now = files(classes)
        assert len(now) == 4 and {k: now[k] for k in made} == made  # the first two reused
    finally:
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(classes, ignore_errors=True)
