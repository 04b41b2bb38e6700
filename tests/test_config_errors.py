"""engine/config.py's errors: one line naming the file, the key path and what is valid.

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import pytest
from confighelpers import MINIMAL, error_of, with_train

from engine.config import ConfigError, load_config

# --------------------------------------------------------------------------------------------
# errors: one line, file + key path + what is valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            with_train("learnig_rate: 1e-4\n"),
            "demo.yaml: train.learnig_rate: unknown key; did you mean 'learning_rate'?",
        ),
        (
            with_train("max_train_steps: abc\n"),
            "demo.yaml: train.max_train_steps: expected an integer, got 'abc'",
        ),
        (
            with_train("max_train_steps: true\n"),
            "demo.yaml: train.max_train_steps: expected an integer, got true",
        ),
        (
            with_train("learning_rate: -1\n"),
            "demo.yaml: train.learning_rate: must be > 0, got -1.0",
        ),
        (
            with_train("learning_rate: fast\n"),
            "demo.yaml: train.learning_rate: expected a number, got 'fast'",
        ),
        (
            with_train("method: qlora\n"),
            "demo.yaml: train.method: must be one of full, lora; got 'qlora'",
        ),
        (
            with_train("optimizer: sgd\n"),
            "demo.yaml: train.optimizer: must be one of adamw, adamw8bit, prodigy; got 'sgd'",
        ),
        (
            with_train("mixed_precision: fp8\n"),
            "demo.yaml: train.mixed_precision: must be one of no, fp16, bf16; got 'fp8'",
        ),
        (
            with_train("captions: maybe\n"),
            "demo.yaml: train.captions: expected true or false, got 'maybe'",
        ),
        (
            with_train("resolution: 500\n"),
            "demo.yaml: train.resolution: must be a positive multiple of 8, got 500; "
            "e.g. 496 or 504",
        ),
        (with_train("lora_rank: 0\n"), "demo.yaml: train.lora_rank: must be >= 1, got 0"),
        (
            with_train("prior_loss_weight: -0.5\n"),
            "demo.yaml: train.prior_loss_weight: must be >= 0, got -0.5",
        ),
        (with_train("snr_gamma: 0\n"), "demo.yaml: train.snr_gamma: must be > 0, got 0.0"),
        (
            with_train("checkpoints_total_limit: 0\n"),
            "demo.yaml: train.checkpoints_total_limit: must be >= 1, got 0",
        ),
        (
            MINIMAL + "evaluation:\n  scheduler: heun\n",
            "demo.yaml: evaluation.scheduler: must be one of dpmpp_2m, euler_a, ddim, pndm; "
            "got 'heun'",
        ),
        (
            MINIMAL + "evaluation:\n  height: 100\n",
            "demo.yaml: evaluation.height: must be a positive multiple of 8, got 100; "
            "e.g. 96 or 104",
        ),
        (
            MINIMAL + "evaluation:\n  num_image: 2\n",
            "demo.yaml: evaluation.num_image: unknown key; did you mean 'num_images'?",
        ),
        (
            MINIMAL + "evalution:\n  num_images: 2\n",
            "demo.yaml: evalution: unknown section; did you mean 'evaluation'?",
        ),
        (
            "train:\n  model: a/b\n  instance_data: ./x\n",
            "demo.yaml: train.instance_prompt: required; e.g. 'a photo of sks dog'",
        ),
        (
            "evaluation:\n  num_images: 2\n",
            "demo.yaml: train: required section; it needs model, instance_data and instance_prompt",
        ),
        (
            with_train("prior_preservation: true\n"),
            "demo.yaml: train.class_data: required when prior_preservation is true; "
            "e.g. './class-dog' (a folder, filled up with generated class images)",
        ),
        (
            MINIMAL + "  resolution: 512\n  resolution: 256\n",
            "demo.yaml: line 6: duplicate key 'resolution'",
        ),
    ],
)
def test_error_messages(text, expected):
    assert str(error_of(text)) == expected


def test_yaml_syntax_error_names_the_line():
    err = error_of("train:\n  model: [a, b\n  instance_data: x\n")
    assert str(err).startswith("demo.yaml: line 3: YAML syntax error: ")
    assert err.line == 3 and err.key is None and err.file == "demo.yaml"


def test_error_attributes_and_file_order():
    text = with_train("max_train_steps: abc\nlearnig_rate: 1\nseed: -1\n")
    err = error_of(text)
    assert err.file == "demo.yaml" and err.key == "train.max_train_steps" and err.line == 5
    assert [m.key for m in err.more] == ["train.learnig_rate", "train.seed"]


def test_unknown_key_without_close_match_lists_or_points_to_valid_keys():
    err = error_of(MINIMAL + "hub:\n  zzz: 1\n")
    assert str(err) == "demo.yaml: hub.zzz: unknown key; valid: model_repo, dataset_repo, private"
    err = error_of(with_train("qqqqqq: 1\n"))
    assert "train.qqqqqq: unknown key;" in str(err) and "sample_configs" in str(err)


def test_file_level_errors(tmp_path):
    missing = tmp_path / "demo.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: config file not found"

    for text in ("", "# only a comment\n"):
        err = error_of(text)
        assert str(err).startswith("demo.yaml: the file is empty;") and "train" in str(err)
    err = error_of("- a\n- b\n")
    assert str(err).startswith("demo.yaml: expected a mapping with a 'train:' section")
    err = error_of("train:\n")
    assert str(err) == (
        "demo.yaml: train: is empty; it needs model, instance_data and instance_prompt"
    )
    err = error_of("train: 5\n")
    assert str(err) == "demo.yaml: train: expected a section of keys, got 5"


def test_error_names_the_file_as_given(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(with_train("method: qlora\n"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: train.method: ")
    assert info.value.file == str(path)
