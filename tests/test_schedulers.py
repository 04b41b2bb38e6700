"""Samplers by name, built from the model's own scheduler config."""

from __future__ import annotations

import json

import pytest
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    PNDMScheduler,
)

from engine.config import EVAL_SCHEDULERS
from engine.schedulers import SCHEDULERS, make_scheduler
from engine.tiny import ensure_tiny


@pytest.fixture(scope="module")
def base():
    path = ensure_tiny() / "model" / "scheduler" / "scheduler_config.json"
    return PNDMScheduler.from_config(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "name, cls",
    [
        ("dpmpp_2m", DPMSolverMultistepScheduler),
        ("euler_a", EulerAncestralDiscreteScheduler),
        ("ddim", DDIMScheduler),
        ("pndm", PNDMScheduler),
    ],
)
def test_each_name_keeps_the_models_noise_schedule(base, name, cls):
    for config in (base, base.config):  # a scheduler or its config
        sched = make_scheduler(name, config)
        assert type(sched) is cls
        for key in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps"):
            assert sched.config[key] == base.config[key], key
        sched.set_timesteps(5)
        assert len(sched.timesteps) >= 5


def test_dpmpp_2m_is_dpm_solver_plus_plus_second_order(base):
    sched = make_scheduler("dpmpp_2m", base)
    assert sched.config.algorithm_type == "dpmsolver++"
    assert sched.config.solver_order == 2


def test_names_match_the_config_choices():
    assert SCHEDULERS == EVAL_SCHEDULERS


def test_unknown_name_lists_the_valid_ones(base):
    with pytest.raises(ValueError, match="dpmpp_2m, euler_a, ddim, pndm"):
        make_scheduler("k_lms", base)
