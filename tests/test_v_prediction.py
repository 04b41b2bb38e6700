"""SD 2.x's v-prediction end to end on the tiny v-prediction model (engine.tiny.build_v_prediction,
the tiny SD with its scheduler set to v_prediction as SD 2.x 768-v): a run with Min-SNR trains,
samples, checkpoints and finishes; `generate --run` makes its last validation sample exactly,
with the v-prediction schedule (an epsilon schedule on the same weights makes other images); a
run resumed from its checkpoint repeats the uninterrupted run's losses exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.enginehelpers import losses, of_type, resume_from, train_in_process
from tests.test_run_outputs import assert_same_images, generated, pixels, samples_of

TRAIN = {
    "max_train_steps": 4,
    "validation_steps": 2,
    "checkpointing_steps": 2,
    "learning_rate": 1e-3,
    "snr_gamma": 5.0,  # Min-SNR's v-prediction weights: min(SNR, gamma) / (SNR + 1)
}
EVALUATION = {"num_images": 2, "num_inference_steps": 3, "seed": 5, "scheduler": "euler_a"}


@pytest.fixture(scope="module")
def v_run(tiny_dir, tmp_path_factory):
    from engine.tiny import build_v_prediction

    tmp = tmp_path_factory.mktemp("vrun")
    model = build_v_prediction(tmp / "model")
    code, run_dir, events = train_in_process(
        tmp, train={**TRAIN, "model": str(model)}, evaluation=EVALUATION
    )
    assert code == 0, of_type(events, "error")
    return run_dir, events


def _prediction_type(model_dir) -> str:
    config = json.loads((model_dir / "scheduler" / "scheduler_config.json").read_text())
    return config["prediction_type"]


def test_v_prediction_run_trains_samples_and_checkpoints(v_run):
    run_dir, events = v_run
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"
    assert sorted(losses(events)) == [1, 2, 3, 4]
    assert all(np.isfinite(v) for v in losses(events).values())
    assert sorted(e["step"] for e in of_type(events, "sample")) == [2, 4]
    assert (run_dir / "checkpoints" / "step-000002").is_dir()
    assert _prediction_type(run_dir / "final") == "v_prediction"


def test_v_prediction_generate_run_equals_the_last_sample(v_run, tmp_path):
    run_dir, events = v_run
    last = samples_of(run_dir, events, 4)
    assert_same_images(generated(tmp_path / "run", run_dir, "--run", str(run_dir)), last)
    # the prediction type is what the images are made with: the same weights read as an
    # epsilon model give other images
    as_epsilon = tmp_path / "as-epsilon"
    shutil.copytree(run_dir / "final", as_epsilon)
    config_path = as_epsilon / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": "epsilon"}))
    other = generated(tmp_path / "eps", run_dir, "--model", str(as_epsilon))
    assert not np.array_equal(pixels(other[0]), pixels(last[0]))


def test_v_prediction_resume_from_checkpoint_repeats_the_losses(v_run):
    run_dir, events = v_run
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3, 4]
    for step, value in resumed.items():
        assert value == straight[step], step
