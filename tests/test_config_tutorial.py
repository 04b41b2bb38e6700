"""engine/config.py: the tutorial format (train_params/eval_params), translated and converted.

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import textwrap

import pytest
from confighelpers import DATA, SAMPLES, error_of

from engine.config import BUILTIN_TINY, dump_config, load_config, parse_config_text, read_config

# --------------------------------------------------------------------------------------------
# the tutorial format


def test_tutorial_format_translates_every_key():
    cfg, warnings = read_config(DATA / "tutorial.yaml")
    t, e = cfg.train, cfg.evaluation
    assert t.model == "CompVis/stable-diffusion-v1-4"  # stable_diffusion_backbone
    assert t.instance_data == "someone/corgi-images"  # hugging_face_image_store
    assert t.learning_rate == 3e-6
    assert t.max_train_steps == 300
    assert t.resolution == 512
    assert t.train_batch_size == 2  # train_bs
    assert t.gradient_accumulation_steps == 4  # grad_accum_steps
    assert t.max_grad_norm == 0.5  # max_gradient_norm
    assert t.sample_batch_size == 3
    assert t.run_name == "corgi-dreambooth"  # model_checkpoint_name
    assert t.shuffle is False  # random_shuffle_train_set
    assert t.optimizer == "adamw8bit"  # use_8bit_optimizer
    assert t.instance_prompt == "a photo of zwx corgi"  # concept_name + item_type
    assert t.class_prompt == "a photo of corgi"
    assert e.output_dir == "corgi-images"  # image_save_path
    assert e.prompts == ["a zwx corgi wearing a crown"]  # eval_prompt
    assert warnings == [
        f"{DATA / 'tutorial.yaml'}: train_params.feature_extractor: accepted, unused; "
        "this app takes the feature extractor (if any) from the model"
    ]
    # everything else keeps its default
    assert t.method == "full" and t.mixed_precision == "no" and not t.prior_preservation


def test_tutorial_sample_and_extras():
    cfg = load_config(SAMPLES / "tutorial-format.yaml")
    assert cfg.train.model == BUILTIN_TINY and cfg.train.instance_data == BUILTIN_TINY
    assert cfg.train.optimizer == "adamw" and cfg.train.instance_prompt == "a photo of sks shape"
    assert cfg.evaluation.num_inference_steps == 4 and cfg.evaluation.guidance_scale == 7.5


TUTORIAL_MIN = textwrap.dedent(
    """\
    train_params:
      stable_diffusion_backbone: a/b
      hugging_face_image_store: c/d
      concept_name: sks
      item_type: dog
    """
)


def test_tutorial_minimal_uses_instance_prompt_for_samples():
    cfg, warnings = parse_config_text(TUTORIAL_MIN)
    assert warnings == []
    assert cfg.evaluation.prompts == ["a photo of sks dog"]
    assert cfg.train.max_train_steps == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TUTORIAL_MIN + "  train_bz: 2\n",
            "tut.yaml: train_params.train_bz: unknown key; did you mean 'train_bs'?",
        ),
        (
            TUTORIAL_MIN + "  train_bs: two\n",
            "tut.yaml: train_params.train_bs: expected an integer, got 'two'",
        ),
        (
            TUTORIAL_MIN + "  grad_accum_steps: 0\n",
            "tut.yaml: train_params.grad_accum_steps: must be >= 1, got 0",
        ),
        (
            TUTORIAL_MIN + "  use_8bit_optimizer: maybe\n",
            "tut.yaml: train_params.use_8bit_optimizer: expected true or false, got 'maybe'",
        ),
        (
            TUTORIAL_MIN + "eval_params:\n  eval_promt: x\n",
            "tut.yaml: eval_params.eval_promt: unknown key; did you mean 'eval_prompt'?",
        ),
        (
            TUTORIAL_MIN.replace("  item_type: dog\n", ""),
            "tut.yaml: train_params.item_type: required; e.g. 'dog'",
        ),
        (
            "eval_params:\n  eval_prompt: x\n",
            "tut.yaml: train_params: required section; it needs stable_diffusion_backbone, "
            "hugging_face_image_store, concept_name and item_type",
        ),
        (
            TUTORIAL_MIN + "train:\n  seed: 1\n",
            "tut.yaml: train: mixes this app's format with the tutorial format "
            "(train_params/eval_params); use one of them",
        ),
        (
            TUTORIAL_MIN + "eval_param:\n  eval_prompt: x\n",
            "tut.yaml: eval_param: unknown section; did you mean 'eval_params'?",
        ),
    ],
)
def test_tutorial_errors_name_tutorial_keys(text, expected):
    assert str(error_of(text, "tut.yaml")) == expected


def test_tutorial_template_is_converted_with_a_note():
    text = (DATA / "tutorial.yaml").read_text()
    cfg = parse_config_text(text)[0]
    out = dump_config(cfg, text)
    assert out.startswith("# Converted from the tutorial format")
    assert "train_params" not in out.split("\n", 2)[2]
    assert parse_config_text(out)[0] == cfg
