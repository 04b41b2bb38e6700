"""The finished model survives a late failure (issue 9, item 4).

At the last step final/ is written first, then the last samples; a failure while sampling (out of
memory, disk, anything) is a warning and training goes on; final/ is swapped in whole, the
previous one deleted only once the new one is in place.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from engine.outputs import aside_path, recover_final, replace_folder
from tests.enginehelpers import of_type, prepare, train_in_process

RUN = {"max_train_steps": 4, "validation_steps": 2, "checkpointing_steps": 2}


def warnings(events: list[dict]) -> list[str]:
    return [e["message"] for e in of_type(events, "log") if e["level"] == "warning"]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_disk_failure_while_sampling_is_a_warning_and_the_run_completes(tiny_dir, tmp_path):
    run_dir = prepare(tmp_path, train=RUN)
    # A real failure: a file where the samples of steps 2 and 4 go, so their folders cannot be
    # made (what a full or read-only disk does to the same mkdir).
    (run_dir / "samples").mkdir()
    for step in (2, 4):
        (run_dir / "samples" / f"step-{step:06d}").write_text("in the way")
    code, _, events = train_in_process(tmp_path, run_dir=run_dir)
    assert code == 0, of_type(events, "error")
    assert not of_type(events, "error") and not of_type(events, "sample")
    said = warnings(events)
    for step in (2, 4):
        assert any(f"samples at step {step} failed" in w and "training goes on" in w for w in said)
    assert [e["step"] for e in of_type(events, "step")] == [1, 2, 3, 4]
    assert [e["step"] for e in of_type(events, "checkpoint")] == [2]
    assert events[-1]["status"] == "completed" and events[-1]["outputs"]["final"] == "final"
    assert (run_dir / "final" / "model_index.json").exists()


def test_out_of_memory_while_sampling_is_a_warning_and_the_run_completes(
    tiny_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr("engine.faults.FAULTS", {"sample_oom": {2, 4}})
    code, run_dir, events = train_in_process(tmp_path, train=RUN)
    assert code == 0, of_type(events, "error")
    said = warnings(events)
    assert sum("out of memory" in w for w in said) == 2
    assert [e["step"] for e in of_type(events, "checkpoint")] == [2]
    assert events[-1]["status"] == "completed"
    assert (run_dir / "final" / "model_index.json").exists()


def test_a_failed_swap_keeps_the_previous_final_model(tiny_dir, tmp_path, monkeypatch):
    quiet = {**RUN, "validation_steps": 100}
    code, run_dir, _ = train_in_process(tmp_path, train=quiet)
    assert code == 0
    final = run_dir / "final"
    before = files(final)
    ckpt = run_dir / "checkpoints" / "step-000002"

    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):  # the rename of the new final/ into place fails
        if Path(src).name == ".tmp-final":
            raise OSError(errno.EIO, "Input/output error (injected)")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    code, _, events = train_in_process(tmp_path, resume=str(ckpt), run_dir=run_dir)
    assert code == 1
    (error,) = of_type(events, "error")
    assert error["kind"] == "disk" and "final model" in error["message"]
    assert files(final) == before  # the previous final model, whole
    assert not (run_dir / ".tmp-final").exists() and not aside_path(final).exists()

    monkeypatch.setattr(os, "replace", real_replace)
    code, _, events = train_in_process(tmp_path, resume=str(ckpt), run_dir=run_dir)
    assert code == 0 and events[-1]["status"] == "completed"
    assert files(final).keys() == before.keys() and not aside_path(final).exists()


def test_replace_folder_and_recovery_after_a_crash_between_the_renames(tmp_path):
    dest, new = tmp_path / "final", tmp_path / ".tmp-final"
    dest.mkdir()
    (dest / "model").write_text("old")
    new.mkdir()
    (new / "model").write_text("new")
    replace_folder(new, dest)
    assert (dest / "model").read_text() == "new" and not new.exists()
    assert not aside_path(dest).exists()

    # killed after the old folder was moved aside, before the new one was renamed in
    os.replace(dest, aside_path(dest))
    recover_final(dest)
    assert (dest / "model").read_text() == "new" and not aside_path(dest).exists()
    # killed after both renames, before the old copy was deleted
    aside_path(dest).mkdir()
    recover_final(dest)
    assert (dest / "model").read_text() == "new" and not aside_path(dest).exists()
