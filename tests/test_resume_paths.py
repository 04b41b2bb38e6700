"""Issue 9, item 1: headless resume with the samples' relative `output_dir: runs`, from the
project folder and from any other folder; engine failures reach the CLI as one line."""

from __future__ import annotations

from pathlib import Path

from engine.events import read_events
from engine.runs import RunLock, engine_log_error
from tests.enginehelpers import cli, of_type, prepare, write_config

TINY_RUN = {
    "output_dir": "runs",  # relative, as in every sample config
    "max_train_steps": 3,
    "checkpointing_steps": 1,
    "validation_steps": 100,
}


def _error_lines(out) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


def test_resume_latest_with_relative_output_dir_from_project_and_other_folder(tiny_dir, tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    write_config(project, "dreambooth.yaml", train=TINY_RUN)
    elsewhere.mkdir()

    # 1. from the project folder, exactly as the README types it: fails at step 2 (injected
    # NaN) in one line, with the checkpoint of step 1 kept
    out = cli("train", "dreambooth.yaml", cwd=project, env={"DREAMBOOTH_TUI_FAULTS": "nan@2"})
    assert out.returncode == 1, out.stderr[-2000:]
    lines = _error_lines(out)
    assert len(lines) == 1 and "step 2" in lines[0], out.stderr[-2000:]
    (run_dir,) = list((project / "runs").iterdir())

    # 2. from another folder, naming the config by a relative path: resumes the same run (its
    # relative output_dir is the config folder's, not this one's) and finishes it
    out = cli("train", "../project/dreambooth.yaml", "--resume", "latest", cwd=elsewhere)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _error_lines(out) == []
    assert not (elsewhere / "runs").exists()
    assert list((project / "runs").iterdir()) == [run_dir]
    assert not (run_dir / "runs").exists()  # no doubled run path
    events = read_events(run_dir / "events.jsonl")
    assert [e["resumed_from_step"] for e in of_type(events, "run_started")] == [None, 1]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert (run_dir / "final" / "model_index.json").is_file()


def test_relative_instance_data_is_found_from_another_folder(tiny_dir, tmp_path):
    project = tmp_path / "project"
    images = project / "my-images"
    images.mkdir(parents=True)
    for png in sorted((tiny_dir / "images").glob("*.png"))[:2]:
        (images / png.name).write_bytes(png.read_bytes())
    write_config(project, "dreambooth.yaml", train={**TINY_RUN, "instance_data": "./my-images"})
    out = cli("check", str(project / "dreambooth.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert str(images) in out.stdout and "2 images" in out.stdout


def test_failing_engine_start_prints_one_line_and_fails(tiny_dir, tmp_path):
    """An engine that dies before it writes any event (here: its run is locked by another
    engine) is still reported on the CLI's stderr, in one line that says why."""
    cfg = write_config(tmp_path, train=TINY_RUN)
    run_dir = prepare(tmp_path, train={**TINY_RUN, "output_dir": str(tmp_path / "runs")})
    checkpoint = run_dir / "checkpoints" / "step-000001"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text('{"step": 1}')
    with RunLock(run_dir):
        out = cli("train", str(cfg), "--resume", str(checkpoint))
    assert out.returncode != 0
    lines = _error_lines(out)
    assert len(lines) == 1, out.stderr
    assert "already in use" in lines[0] and "Traceback" not in out.stderr


def test_engine_log_error_takes_this_attempts_reason(tmp_path):
    log = tmp_path / "engine.log"
    log.write_text("error: an earlier attempt failed\n")
    since = log.stat().st_size
    with log.open("a") as fh:
        fh.write("Traceback (most recent call last):\n  File 'x', line 1\n")
        fh.write("FileNotFoundError: [Errno 2] No such file or directory: 'x'\n")
    assert engine_log_error(tmp_path, since=since).startswith("FileNotFoundError: [Errno 2]")
    assert engine_log_error(tmp_path) == "an earlier attempt failed"
    assert engine_log_error(Path(tmp_path / "none")) is None


def test_app_takes_relative_output_dir_from_the_config_folder(tmp_path, monkeypatch):
    from tui.state import build_state

    project = tmp_path / "project"
    write_config(project, "dreambooth.yaml", train={"output_dir": "runs"})
    monkeypatch.chdir(tmp_path)
    state = build_state(Path("project/dreambooth.yaml"))
    assert state.runs_dir == project.resolve() / "runs"
