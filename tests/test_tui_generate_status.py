"""What the Generate screen shows of a request and of a push, tested without an app: images from
`sample` events, the status line, the error panel; and which run model the export dialog gets."""

from __future__ import annotations

from tui.export_command import source_for_choice
from tui.screens.generate_follow import GenDone
from tui.screens.generate_push import PushResult, push_status
from tui.screens.generate_status import done_status, read_events


def test_read_events_puts_images_under_the_output_dir_and_counts_them(tmp_path):
    events = [
        {"type": "phase", "name": "loading_model", "detail": "tiny"},
        {"type": "sample", "paths": ["a.png", str(tmp_path / "abs.png")], "seed": 7, "prompt": "x"},
        {"type": "phase", "name": "denoising"},  # an image is shown: phases no longer show
        {"type": "log", "level": "warning", "message": "[b]literal[/b]"},
        {"type": "log", "level": "info", "message": "not shown"},
    ]
    read = read_events(events, tmp_path, made=1, expected=4)
    assert read.images == [(tmp_path / "a.png", "seed 7 · x"), (tmp_path / "abs.png", "seed 7 · x")]
    assert read.status is not None and read.status.plain == "generating: 3/4 made"
    assert read.error is None
    assert read.warnings == ["[b]literal[/b]"]


def test_read_events_shows_a_phase_before_the_first_image_and_the_last_error(tmp_path):
    events = [
        {"type": "phase", "name": "loading_model", "detail": "tiny"},
        {"type": "error", "kind": "OutOfMemory", "message": "first"},
        {"type": "error", "kind": "ConfigError", "message": "second", "hint": "fix it"},
    ]
    read = read_events(events, tmp_path, made=0, expected=2)
    assert read.images == [] and read.status is not None
    assert read.status.plain == "loading model: tiny…"
    assert read.error == "ConfigError: second\n→ fix it"


def test_done_status_says_what_was_made_or_why_it_failed(tmp_path):
    status, error = done_status(GenDone(tmp_path, "completed"), 2, 1.25, None)
    assert status.plain == "2 image(s) in 1.2s · model already loaded · "  # then the folder
    assert error is None
    status, error = done_status(GenDone(tmp_path, "stopped"), 0, 3.0, 1.0)
    assert (status.plain, error) == ("cancelled", None)
    log = ["", "Traceback", "  line", "", "Killed"]
    status, error = done_status(GenDone(tmp_path, "failed", "exited (code 9)", log), 1, 3.0, 1.0)
    assert status.plain == "failed · 1 image(s) made"
    assert error == "exited (code 9)\nTraceback\n  line\nKilled"
    status, error = done_status(GenDone(tmp_path, "failed"), 0, 3.0, None)
    assert error is None  # nothing to show: the error panel is left as it is


def test_push_status_names_the_failure_line_or_the_repository():
    failed = PushResult("me/m", True, True, 1, "uploading\nerror: 401 unauthorized\n\n")
    status, error = push_status(failed)
    assert status.plain == "push failed"
    assert error == "push-model --dry-run: error: 401 unauthorized"
    status, error = push_status(PushResult("me/m", True, False, 0, "pushed"))
    assert (status.plain, error) == ("pushed to me/m", None)
    status, error = push_status(PushResult("me/m", True, True, 0, "would upload: x"))
    assert (status.plain, error) == ("dry run done for me/m", None)


def test_source_for_choice_is_the_run_model_the_picker_shows(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "final").mkdir(parents=True)
    final = source_for_choice(run_dir, "final")
    assert final is not None and (final.run_dir, final.checkpoint) == (run_dir, None)
    ckpt = source_for_choice(run_dir, "ckpt:40")
    assert ckpt is not None and ckpt.checkpoint == 40
    assert source_for_choice(run_dir, "custom") is None
    assert source_for_choice(None, "final") is None
    assert source_for_choice(run_dir, "lora") is None
