"""`train.report_to` (issue 12): the run's step and sample events also recorded for TensorBoard
or W&B (offline) in the run folder, read back here with the trackers' own readers; a missing
package is one line at `check`; the HF token never reaches these files."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main as cli_main
from engine.redact import MASK
from tests.enginehelpers import losses, of_type, train_in_process, write_config

TOKEN = "hf_FakeTokenForTheReportToTest0123456789"
TRAIN = {"max_train_steps": 3, "validation_steps": 2, "checkpointing_steps": 100}
EVAL = {"num_images": 2, "num_inference_steps": 2}


def _train(
    tmp: Path, report_to: str, monkeypatch, tracker_fails: bool = False
) -> tuple[Path, list[dict]]:
    """A 3-step run (samples at steps 2 and 3) whose prompt holds a pasted HF token."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    code, run_dir, events = train_in_process(
        tmp,
        train={**TRAIN, "report_to": report_to},
        evaluation={**EVAL, "prompts": [f"a photo of sks shape {TOKEN}"]},
    )
    assert code == 0, of_type(events, "error")
    # a tracker that failed (e.g. W&B's service too slow to start) warns and the run goes on:
    # say so here rather than as a missing step below
    if not tracker_fails:
        warned = [
            e["message"] for e in of_type(events, "log") if "report_to" in e.get("message", "")
        ]
        assert not warned, warned
    return run_dir, events


def _no_token_in(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), path


def _sample_pixels(run_dir: Path, events: list[dict]) -> dict[int, list[np.ndarray]]:
    return {
        e["step"]: [np.asarray(Image.open(run_dir / p).convert("RGB")) for p in e["paths"]]
        for e in of_type(events, "sample")
    }


@pytest.mark.timeout(600)  # a training run, slower under load
def test_tensorboard_records_the_events_losses_and_samples(tiny_dir, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, events = _train(tmp_path, "tensorboard", monkeypatch)
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    recorded = {s.step: s.value for s in acc.Scalars("train/loss")}
    expected = losses(events)
    assert recorded.keys() == expected.keys() == {1, 2, 3}
    for step, loss in expected.items():  # TensorBoard keeps float32
        assert recorded[step] == np.float32(loss), step
    steps = of_type(events, "step")
    for name in ("lr", "grad_norm"):
        got = [s.value for s in acc.Scalars(f"train/{name}")]
        assert got == [np.float32(e[name]) for e in steps], name
    peak = [s.value for s in acc.Scalars("memory/peak_gib")]
    assert peak == [np.float32(e["mem"]["peak"] / 2**30) for e in steps]
    # the sample images, as the PNGs the sample events name
    samples = _sample_pixels(run_dir, events)
    assert sorted(samples) == [2, 3]
    for n in (0, 1):  # 2 images per prompt, each its own series
        images = acc.Images(f"samples/0/{n}")
        assert [im.step for im in images] == [2, 3]
        for im, step in zip(images, [2, 3], strict=True):
            decoded = np.asarray(Image.open(io.BytesIO(im.encoded_image_string)))
            assert np.array_equal(decoded[..., :3], samples[step][n])
    _no_token_in(run_dir / "tensorboard")


def _wandb_records(run_file: Path) -> list[bytes]:
    """The records of a W&B offline run file: a 7-byte header, then LevelDB-log records (CRC,
    length, type: full/first/middle/last) in 32 KiB blocks (W&B's own datastore format)."""
    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    records, pos, part = [], 7, b""
    block = 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            break
        part += chunk
        if kind in (1, 4):  # full, last
            records.append(part)
            part = b""
    return records


@pytest.mark.timeout(600)  # a training run, and W&B's service starting
def test_wandb_offline_records_the_events_losses_and_samples(tiny_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2

    run_dir, events = _train(tmp_path, "wandb", monkeypatch)
    (run_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    history: dict[int, dict] = {}
    for raw in _wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            row = {
                (item.key or "/".join(item.nested_key)): json.loads(item.value_json)
                for item in record.history.item
            }
            history.setdefault(row["_step"], {}).update(row)
    expected = losses(events)
    assert {s: history[s]["train/loss"] for s in expected} == expected
    assert [history[e["step"]]["train/lr"] for e in of_type(events, "step")] == [
        e["lr"] for e in of_type(events, "step")
    ]
    for step in (2, 3):  # a logged image list: its fields under the tag
        assert history[step]["samples/0/_type"] == "images/separated"
        assert history[step]["samples/0/count"] == 2
        assert history[step]["samples/0/captions"] == [f"a photo of sks shape {MASK}"] * 2
    media = sorted((run_file.parent / "files" / "media" / "images" / "samples").glob("*.png"))
    assert len(media) == 4
    samples = _sample_pixels(run_dir, events)
    stored = [np.asarray(Image.open(p).convert("RGB")) for p in media]
    for step in (2, 3):
        for image in samples[step]:
            assert any(np.array_equal(image, s) for s in stored)
    _no_token_in(run_dir / "wandb")


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_check_names_the_pip_command_for_a_missing_tracker(
    tiny_dir, tmp_path, capsys, monkeypatch, tracker
):
    from engine.config import checks

    real = checks._installed
    monkeypatch.setattr(checks, "_installed", lambda pkg: pkg != tracker and real(pkg))
    path = write_config(tmp_path, train={"report_to": tracker})
    code = cli_main(["check", str(path)])
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1, errors
    assert f"train.report_to: {tracker} is not installed; pip install {tracker}" in errors[0]


def test_a_failing_tracker_is_one_warning_and_the_run_goes_on(tiny_dir, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from engine.training import report_to

    def broken(self, step, values):
        raise OSError("disk quota exceeded")

    monkeypatch.setattr(report_to.TensorBoardReporter, "scalars", broken)
    run_dir, events = _train(tmp_path, "tensorboard", monkeypatch, tracker_fails=True)
    warnings = [e["message"] for e in of_type(events, "log") if "report_to" in e["message"]]
    assert warnings == [
        "train.report_to: tensorboard stopped recording (OSError: disk quota exceeded); "
        "the run goes on"
    ]
    assert of_type(events, "finished")[-1]["status"] == "completed"


@pytest.mark.timeout(600)  # two training runs
def test_a_resumed_run_replaces_the_steps_after_its_checkpoint_in_tensorboard(
    tiny_dir, tmp_path, monkeypatch
):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.enginehelpers import resume_from

    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "max_train_steps": 4,
            "checkpointing_steps": 2,
            "validation_steps": 100,
            "report_to": "tensorboard",
        },
        evaluation=EVAL,
    )
    assert code == 0, of_type(events, "error")
    resumed = resume_from(run_dir, 2)  # steps 3 and 4 again, into the same folder
    assert sorted(resumed) == [3, 4]
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    steps = [s.step for s in acc.Scalars("train/loss")]
    assert steps == [1, 2, 3, 4]  # each step once: the first attempt's 3 and 4 purged
