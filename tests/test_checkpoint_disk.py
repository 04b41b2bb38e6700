"""Issue 9 item 11: a killed save leaves nothing behind; checkpoints_total_limit bounds the disk."""

from __future__ import annotations

from engine import checkpoint as ckpt
from tests.enginehelpers import of_type, train_in_process


def _checkpoint_folders(run_dir):
    root = run_dir / "checkpoints"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_checkpoints_total_limit_bounds_the_disk_while_saving(tiny_dir, tmp_path, monkeypatch):
    """While each checkpoint is written, the folders on disk (the one being written included)
    never exceed the limit, and a complete checkpoint exists once the first one is written."""
    seen: list[list[str]] = []
    real_save = ckpt.save_file

    def spying_save(tensors, filename, *args, **kwargs):
        (run_dir,) = (tmp_path / "runs").iterdir()
        seen.append(_checkpoint_folders(run_dir))
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", spying_save)
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 6,
            "checkpointing_steps": 1,
            "checkpoints_total_limit": 2,
            "validation_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    assert len(seen) == 5  # steps 1..5 (the last step writes final/, not a checkpoint)
    for i, folders in enumerate(seen):
        assert len(folders) <= 2, folders
        complete = [f for f in folders if f.startswith("step-")]
        if i > 0:
            assert complete, folders
    assert _checkpoint_folders(run_dir) == ["step-000004", "step-000005"]


def test_limit_one_keeps_a_complete_checkpoint_while_writing(tiny_dir, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real_save = ckpt.save_file

    def spying_save(tensors, filename, *args, **kwargs):
        (run_dir,) = (tmp_path / "runs").iterdir()
        seen.append(_checkpoint_folders(run_dir))
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", spying_save)
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 4,
            "checkpointing_steps": 1,
            "checkpoints_total_limit": 1,
            "validation_steps": 100,
        },
    )
    assert code == 0, of_type(events, "error")
    assert seen[1] == [".tmp-step-000002", "step-000001"]  # the old one goes only after
    assert _checkpoint_folders(run_dir) == ["step-000003"]


def test_remove_leftovers_takes_only_the_engines_temp_folders(tmp_path):
    run_dir = tmp_path / "run"
    for name in (
        "checkpoints/step-000002",
        "checkpoints/.tmp-step-000004",
        "checkpoints/.tmp-del-step-000001",
        "checkpoints/.tmp-notes",
        ".tmp-final",
        ".tmp-mine",
        "final",
        "samples/step-000002",
        "samples/.tmp-step-000004",  # a killed engine's samples, being written
        "samples/.tmp-mine",
    ):
        (run_dir / name).mkdir(parents=True)
        (run_dir / name / "f").write_text("x")
    removed = ckpt.remove_leftovers(run_dir)
    assert sorted(p.relative_to(run_dir).as_posix() for p in removed) == [
        ".tmp-final",
        "checkpoints/.tmp-del-step-000001",
        "checkpoints/.tmp-step-000004",
        "samples/.tmp-step-000004",
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == [
        ".tmp-mine",
        "checkpoints",
        "final",
        "samples",
    ]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [".tmp-mine", "step-000002"]
    assert _checkpoint_folders(run_dir) == [".tmp-notes", "step-000002"]


# A SIGKILL halfway through a checkpoint's save, then `--resume latest`: the half folder removed
# with a line, the run resumed from the whole one and completed (checkpoints_total_limit 2), is
# tests/test_engine_killed_saving.py::test_killed_while_saving_a_checkpoint_and_then_final_...
