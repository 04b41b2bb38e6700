"""engine/config.py: schema, defaults, one-line errors, tutorial format, round trip, form helpers.

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.config import (
    BUILTIN_TINY,
    FIELD_GROUPS,
    LR_SCHEDULERS,
    Config,
    ConfigError,
    EvaluationConfig,
    HubConfig,
    TrainConfig,
    check_paths,
    config_to_dict,
    dump_config,
    is_local_path,
    load_config,
    parse_config_text,
    read_config,
    save_config,
    summary,
    validate_value,
)
from engine.sources import BUILTIN_TINY_SHAPES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_configs"
DATA = Path(__file__).resolve().parent / "data"

MINIMAL = textwrap.dedent(
    """\
    train:
      model: stable-diffusion-v1-5/stable-diffusion-v1-5
      instance_data: ./my-dog
      instance_prompt: a photo of sks dog
    """
)

# DESIGN.md "Config": every default (required keys excluded), plus the lead's additional keys.
DESIGN_DEFAULTS = {
    "train": {
        "revision": None,
        "captions": False,
        "prior_preservation": False,
        "class_data": None,
        "class_prompt": "a photo of dog",
        "num_class_images": 100,
        "prior_loss_weight": 1.0,
        "resolution": 512,
        "center_crop": True,
        "random_flip": False,
        "method": "full",
        "lora_rank": 4,
        "lora_alpha": 4,
        "train_text_encoder": False,
        "max_train_steps": 400,
        "train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "learning_rate": 5.0e-6,
        "lr_scheduler": "constant",
        "lr_warmup_steps": 0,
        "optimizer": "adamw",
        "max_grad_norm": 1.0,
        "mixed_precision": "no",
        "gradient_checkpointing": False,
        "cache_latents": True,
        "snr_gamma": None,
        "offset_noise": 0.0,
        "masked_loss": False,
        "seed": 42,
        "checkpointing_steps": 500,
        "checkpoints_total_limit": 2,
        "validation_steps": 100,
        "num_processes": 1,
        "output_dir": "runs",
        # additional keys
        "run_name": None,
        "shuffle": True,
        "sample_batch_size": 4,
        "torch_compile": False,
        "report_to": "none",
        "lr_num_cycles": 1,
        "lr_power": 1.0,
        "lr_step_rules": None,
        "export": [],
        "aspect_buckets": "auto",
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_weight_decay": 1e-2,
        "adam_epsilon": 1e-8,
        "ema_decay": None,
        "ema_device": "gpu",
        "caption_dropout": 0.0,
        "lora_dropout": 0.0,
        "use_dora": False,
        "lora_targets": "attention",
        "text_encoder_lr": None,
        "validation_at_start": False,
    },
    "evaluation": {
        "prompts": ["a photo of sks dog on the beach"],
        "negative_prompt": "",
        "num_images": 4,
        "num_inference_steps": 25,
        "guidance_scale": 7.5,
        "seed": 0,
        "scheduler": "dpmpp_2m",
        "height": None,
        "width": None,
        "output_dir": "images",
    },
    "hub": {"model_repo": None, "dataset_repo": None, "private": True},
}

DESIGN_TRAIN_ORDER = [
    "model", "revision", "instance_data", "instance_prompt", "captions", "prior_preservation",
    "class_data", "class_prompt", "num_class_images", "prior_loss_weight", "resolution",
    "center_crop", "random_flip", "method", "lora_rank", "lora_alpha", "train_text_encoder",
    "max_train_steps", "train_batch_size", "gradient_accumulation_steps", "learning_rate",
    "lr_scheduler", "lr_warmup_steps", "optimizer", "max_grad_norm", "mixed_precision",
    "gradient_checkpointing", "cache_latents", "snr_gamma", "offset_noise", "seed",
    "checkpointing_steps", "checkpoints_total_limit", "validation_steps", "num_processes",
    "output_dir",
]  # fmt: skip


def with_train(extra: str) -> str:
    return MINIMAL + textwrap.indent(textwrap.dedent(extra), "  ")


def error_of(text: str, source: str = "demo.yaml", overrides: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, source, overrides)
    err = info.value
    assert "\n" not in str(err), str(err)
    assert "Traceback" not in str(err)
    return err


# --------------------------------------------------------------------------------------------
# samples and defaults


@pytest.mark.parametrize(
    "name",
    [
        "sd15-full.yaml",
        "sd15-lora.yaml",
        "sdxl-full.yaml",
        "sdxl-lora.yaml",
        "demo.yaml",
        "tutorial-format.yaml",
    ],
)
def test_every_sample_config_loads(name):
    cfg, warnings = read_config(SAMPLES / name)
    assert isinstance(cfg, Config)
    if name == "tutorial-format.yaml":
        assert len(warnings) == 1 and "feature_extractor" in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize(
    "name", ["sd15-full.yaml", "sd15-lora.yaml", "sdxl-full.yaml", "sdxl-lora.yaml", "demo.yaml"]
)
def test_samples_show_every_key_and_round_trip_unchanged(name):
    text = (SAMPLES / name).read_text()
    cfg = load_config(SAMPLES / name)
    assert dump_config(cfg, text) == text
    for section, keys in config_to_dict(cfg).items():
        for key in keys:
            assert f"  {key}:" in text, f"{name} does not show {section}.{key}"


def test_sample_values():
    full = load_config(SAMPLES / "sd15-full.yaml").train
    assert full.model == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert full.method == "full" and full.optimizer == "adamw8bit"
    assert full.mixed_precision in ("bf16", "fp16") and full.gradient_checkpointing
    assert full.learning_rate in (2e-6, 5e-6) and full.max_train_steps == 800
    assert full.prior_preservation and full.class_data == "./class-dog"
    assert full.resolution == 512

    lora = load_config(SAMPLES / "sd15-lora.yaml").train
    assert lora.method == "lora" and lora.learning_rate == 1e-4 and lora.resolution == 512
    assert lora.mixed_precision == "bf16" and lora.lora_rank == lora.lora_alpha == 8

    demo = load_config(SAMPLES / "demo.yaml")
    t, e = demo.train, demo.evaluation
    assert t.model == BUILTIN_TINY_SHAPES and t.instance_data == BUILTIN_TINY
    assert t.instance_prompt == "a photo of sks shape"
    assert (t.resolution, t.max_train_steps, t.validation_steps, t.checkpointing_steps) == (
        32,
        200,
        20,
        100,
    )
    assert t.validation_at_start and (e.num_images, e.num_inference_steps) == (2, 8)
    assert t.learning_rate == 2e-4 and t.mixed_precision == "no" and t.cache_latents
    assert t.output_dir == "runs"


def test_defaults_match_design():
    cfg, warnings = parse_config_text(MINIMAL)
    assert warnings == []
    data = config_to_dict(cfg)
    for section, defaults in DESIGN_DEFAULTS.items():
        for key, value in defaults.items():
            assert data[section][key] == value, f"{section}.{key}"
        required = {"model", "instance_data", "instance_prompt"} if section == "train" else set()
        assert set(data[section]) == set(defaults) | required, section


def test_key_order_follows_design():
    keys = list(TrainConfig.model_fields)
    assert [k for k in keys if k in DESIGN_TRAIN_ORDER] == DESIGN_TRAIN_ORDER
    assert list(Config.model_fields) == ["train", "evaluation", "hub"]


def test_every_field_has_a_one_line_description():
    for model in (TrainConfig, EvaluationConfig, HubConfig, Config):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"
            assert "\n" not in field.description


def test_config_to_dict_is_json_able():
    cfg = load_config(SAMPLES / "sd15-full.yaml")
    data = config_to_dict(cfg)
    assert json.loads(json.dumps(data)) == data
    assert list(data["train"])[:4] == ["model", "revision", "instance_data", "instance_prompt"]


def test_import_stays_light():
    code = (
        "import sys, engine.config\n"
        "heavy = {'torch', 'diffusers', 'transformers', 'accelerate', 'datasets', 'textual'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# values and coercion


def test_yaml_12_no_and_false_mean_no():
    assert parse_config_text(with_train("mixed_precision: no\n"))[0].train.mixed_precision == "no"
    cfg, warnings = parse_config_text(with_train("mixed_precision: false\n"), "demo.yaml")
    assert cfg.train.mixed_precision == "no"
    assert warnings and "train.mixed_precision" in warnings[0]
    cfg = parse_config_text(with_train("mixed_precision: BF16\nmethod: LoRA\n"))[0]
    assert (cfg.train.mixed_precision, cfg.train.method) == ("bf16", "lora")


def test_numbers_and_lists():
    cfg = parse_config_text(
        with_train("learning_rate: 5e-6\nmax_grad_norm: 2\n")
        + "evaluation:\n  prompts: one prompt\n  guidance_scale: 7\n"
    )[0]
    assert cfg.train.learning_rate == 5e-6 and isinstance(cfg.train.max_grad_norm, float)
    assert cfg.evaluation.prompts == ["one prompt"]
    assert cfg.evaluation.guidance_scale == 7.0


def test_all_lr_schedulers_accepted():
    assert "cosine_with_restarts" in LR_SCHEDULERS and len(LR_SCHEDULERS) == 7
    for name in LR_SCHEDULERS:
        rules = "lr_step_rules: '1:10,0.1'\n" if name == "piecewise_constant" else ""
        text = with_train(f"lr_scheduler: {name}\n{rules}")
        assert parse_config_text(text)[0].train.lr_scheduler == name


def test_piecewise_constant_needs_valid_step_rules_in_one_line():
    err = error_of(with_train("lr_scheduler: piecewise_constant\n"))
    assert err.key == "train.lr_step_rules" and "1:100,0.1:300,0.01" in str(err)
    err = error_of(
        with_train("lr_scheduler: piecewise_constant\nlr_step_rules: '1:20,0.5:10,0.1'\n")
    )
    assert err.key == "train.lr_step_rules" and "increasing" in str(err)
    err = error_of(with_train("lr_warmup_steps: 5\n"))  # constant ignores warmup
    assert err.key == "train.lr_warmup_steps" and "constant_with_warmup" in str(err)


def test_sections_optional_and_null_limit():
    cfg = parse_config_text(with_train("checkpoints_total_limit: null\nsnr_gamma: 5\n"))[0]
    assert cfg.train.checkpoints_total_limit is None and cfg.train.snr_gamma == 5.0
    assert cfg.hub.private is True and cfg.evaluation.height is None


def test_overrides():
    cfg = parse_config_text(MINIMAL, overrides={"train": {"max_train_steps": 3}})[0]
    assert cfg.train.max_train_steps == 3 and cfg.train.instance_prompt == "a photo of sks dog"
    err = error_of(MINIMAL, overrides={"train": {"max_train_steps": 0}})
    assert str(err) == "demo.yaml: train.max_train_steps: must be >= 1, got 0"
    tut = parse_config_text((DATA / "tutorial.yaml").read_text(), overrides={"train": {"seed": 1}})
    assert tut[0].train.seed == 1


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


# --------------------------------------------------------------------------------------------
# dump / save


COMMENTED = textwrap.dedent(
    """\
    # My dog, second try
    train:
      model: stable-diffusion-v1-5/stable-diffusion-v1-5   # base model
      instance_data: ./my-dog
      instance_prompt: "a photo of sks dog"
      # how long to train
      max_train_steps: 400
      learning_rate: 5.0e-6   # small for full fine-tunes
      mixed_precision: "no"

    # sampling
    evaluation:
      prompts:
        - a photo of sks dog on the beach
        - a painting of sks dog
      num_images: 4
    """
)


def test_round_trip_keeps_comments_and_order():
    cfg = parse_config_text(COMMENTED)[0]
    cfg.train.max_train_steps = 800
    cfg.train.learning_rate = 2e-6
    out = dump_config(cfg, COMMENTED)
    expected = COMMENTED.replace("max_train_steps: 400", "max_train_steps: 800").replace(
        "learning_rate: 5.0e-6   #", "learning_rate: 2.0e-6   #"
    )
    assert out == expected
    assert parse_config_text(out)[0] == cfg


def test_round_trip_adds_changed_absent_keys_in_their_section():
    cfg = parse_config_text(COMMENTED)[0]
    cfg.train.seed = 7  # absent, after mixed_precision in DESIGN order
    cfg.train.resolution = 768  # absent, before max_train_steps
    cfg.evaluation.prompts = ["only one"]
    cfg.hub.model_repo = "me/sks-dog"  # absent section
    out = dump_config(cfg, COMMENTED)
    lines = out.splitlines()
    assert lines[0] == "# My dog, second try"
    assert "  # how long to train" in lines and "# sampling" in lines
    assert "  learning_rate: 5.0e-6   # small for full fine-tunes" in lines
    assert lines.index("  resolution: 768") < lines.index("  max_train_steps: 400")
    assert lines.index("  seed: 7") < lines.index("# sampling") < lines.index("evaluation:")
    assert "    - only one" in lines and "hub:" in lines and "  model_repo: me/sks-dog" in lines
    assert "  num_images: 4" in lines
    assert "private" not in out  # unchanged defaults are not added
    assert parse_config_text(out)[0] == cfg


def test_round_trip_unchanged_is_identical():
    cfg = parse_config_text(COMMENTED)[0]
    assert dump_config(cfg, COMMENTED) == COMMENTED


def test_dump_without_template_has_every_key_in_order():
    cfg = load_config(SAMPLES / "sd15-lora.yaml")
    out = dump_config(cfg)
    assert parse_config_text(out)[0] == cfg
    train_keys = [
        ln.split(":")[0].strip()
        for ln in out.split("evaluation:")[0].splitlines()
        if ln.startswith("  ")
    ]
    assert train_keys == list(TrainConfig.model_fields)
    assert "mixed_precision: bf16" in out and "learning_rate: 0.0001" in out
    # strings a YAML 1.1 reader would misread are quoted
    demo = dump_config(load_config(SAMPLES / "demo.yaml"))
    assert 'mixed_precision: "no"' in demo


def test_dump_quotes_strings_that_look_like_other_types():
    cfg = parse_config_text(MINIMAL)[0]
    cfg.train.run_name = "2024"
    cfg.train.revision = "true"
    out = dump_config(cfg)
    again = parse_config_text(out)[0]
    assert again.train.run_name == "2024" and again.train.revision == "true"


def test_save_config_atomic_and_keeps_existing_file_as_template(tmp_path):
    path = tmp_path / "run" / "config.yaml"
    cfg = parse_config_text(COMMENTED)[0]
    save_config(cfg, path, template_text=COMMENTED)
    assert path.read_text() == COMMENTED
    cfg.train.max_train_steps = 123
    save_config(cfg, path)  # the existing file is the template
    text = path.read_text()
    assert "# how long to train" in text and "max_train_steps: 123" in text
    assert load_config(path) == cfg
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]  # no temp files


# --------------------------------------------------------------------------------------------
# the form helpers


@pytest.mark.parametrize(
    ("section", "key", "raw", "value"),
    [
        ("train", "max_train_steps", "800", 800),
        ("train", "learning_rate", "1e-4", 1e-4),
        ("train", "learning_rate", "2", 2.0),
        ("train", "method", "lora", "lora"),
        ("train", "mixed_precision", "no", "no"),
        ("train", "gradient_checkpointing", "yes", True),
        ("train", "snr_gamma", "", None),
        ("train", "snr_gamma", "null", None),
        ("train", "checkpoints_total_limit", "null", None),
        ("train", "instance_prompt", "a sks dog # not a comment", "a sks dog # not a comment"),
        ("train", "instance_prompt", "'quoted: yes'", "quoted: yes"),
        ("train", "class_data", "", None),
        ("train", "run_name", "2024", "2024"),
        ("evaluation", "prompts", "[a photo, another photo]", ["a photo", "another photo"]),
        ("evaluation", "prompts", "just one, with a comma", ["just one, with a comma"]),
        ("evaluation", "prompts", "a photo: on the beach", ["a photo: on the beach"]),
        ("evaluation", "negative_prompt", "", ""),
        ("evaluation", "height", "768", 768),
        ("hub", "private", "false", False),
    ],
)
def test_validate_value_good(section, key, raw, value):
    got, error = validate_value(section, key, raw)
    assert error is None
    assert got == value


@pytest.mark.parametrize(
    ("section", "key", "raw", "expected"),
    [
        ("train", "max_train_steps", "abc", "expected an integer, got 'abc'"),
        ("train", "max_train_steps", "1.5", "expected an integer, got 1.5"),
        ("train", "max_train_steps", "0", "must be >= 1, got 0"),
        ("train", "learning_rate", "-1", "must be > 0, got -1.0"),
        ("train", "learning_rate", "fast", "expected a number, got 'fast'"),
        ("train", "method", "qlora", "must be one of full, lora; got 'qlora'"),
        ("train", "resolution", "500", "must be a positive multiple of 8, got 500; e.g. 496 or 504"),
        ("train", "captions", "maybe", "expected true or false, got 'maybe'"),
        ("train", "max_train_steps", "", "a value is required; expected an integer"),
        ("train", "model", "", "a value is required"),
        ("evaluation", "prompts", "[1, 2]", "item 1: expected a prompt (text), got 1"),
        ("evaluation", "scheduler", "heun", "must be one of dpmpp_2m, euler_a, ddim, pndm; got 'heun'"),
        ("train", "learnig_rate", "1", "unknown key; did you mean 'learning_rate'?"),
    ],
)  # fmt: skip
def test_validate_value_bad(section, key, raw, expected):
    value, error = validate_value(section, key, raw)
    assert value is None and error == expected


def test_field_groups_cover_every_field_once():
    assert list(FIELD_GROUPS) == [
        "Model and data",
        "Method",
        "Optimisation",
        "Memory",
        "Sampling and checkpoints",
        "Evaluation",
        "Hub",
    ]
    listed = [pair for pairs in FIELD_GROUPS.values() for pair in pairs]
    every = [
        (section, key)
        for section, model in (("train", TrainConfig), ("evaluation", EvaluationConfig), ("hub", HubConfig))
        for key in model.model_fields
    ]  # fmt: skip
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(every)


def test_summary():
    cfg = parse_config_text(MINIMAL)[0]
    assert summary(cfg, 5) == (
        "5 images · 400 steps · effective batch 1 (1×1×1 GPU) · full fine-tune · fp32 · "
        "prior preservation off · aspect buckets auto (on for SDXL, off for SD 1.x/2.x)"
    )
    cfg = load_config(SAMPLES / "sd15-full.yaml")
    cfg.train.train_batch_size, cfg.train.gradient_accumulation_steps = 2, 4
    cfg.train.num_processes = 2
    line = summary(cfg)
    assert line.startswith("800 steps · effective batch 16 (2×4×2 GPUs)")
    assert "bf16" in line and "prior preservation on (200 class images)" in line
    assert "LoRA rank 8" in summary(load_config(SAMPLES / "sd15-lora.yaml"), 1)
    assert summary(load_config(SAMPLES / "sd15-lora.yaml"), 1).startswith("1 image ·")


# --------------------------------------------------------------------------------------------
# paths


def test_is_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-dog").mkdir()
    for value in ("/abs/x", "./x", "../x", "~/x", "my-dog", "."):
        assert is_local_path(value), value
    for value in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "someone/images", BUILTIN_TINY):
        assert not is_local_path(value), value


def _cfg(**train) -> Config:
    data = {"model": BUILTIN_TINY, "instance_data": BUILTIN_TINY, "instance_prompt": "a sks"}
    data.update(train)
    return Config(train=TrainConfig(**data))


def test_check_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_paths(_cfg())  # builtin:tiny passes
    check_paths(_cfg(model="stable-diffusion-v1-5/stable-diffusion-v1-5", instance_data="me/dogs"))

    def err(cfg) -> str:
        with pytest.raises(ConfigError) as info:
            check_paths(cfg, "demo.yaml")
        assert "\n" not in str(info.value)
        return str(info.value)

    assert err(_cfg(model="./nope")).startswith(
        "demo.yaml: train.model: local model folder not found: './nope';"
    )
    (tmp_path / "empty-model").mkdir()
    assert "not a diffusers pipeline folder (no model_index.json)" in err(
        _cfg(model="./empty-model")
    )
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model_index.json").write_text("{}")
    check_paths(_cfg(model="./model"))
    check_paths(_cfg(model=str(tmp_path / "model")))

    assert err(_cfg(instance_data="./missing-dog")).startswith(
        "demo.yaml: train.instance_data: image folder not found: './missing-dog';"
    )
    (tmp_path / "photo.png").write_bytes(b"x")
    assert "is not a folder" in err(_cfg(instance_data="./photo.png"))
    (tmp_path / "dog").mkdir()
    check_paths(_cfg(instance_data="./dog"))
    assert "neither an existing path nor a hub id" in err(_cfg(model="my model"))

    cfg = _cfg(prior_preservation=True)  # constructed directly: no load-time check
    assert err(cfg).startswith("demo.yaml: train.class_data: required when prior_preservation")
    check_paths(_cfg(prior_preservation=True, class_data="./class-dog"))  # created later


def test_learning_rate_default_follows_the_method():
    from engine.config import parse_config_text

    base = "train:\n  model: a/b\n  instance_data: a/c\n  instance_prompt: x\n"
    assert parse_config_text(base)[0].train.learning_rate == 5e-6
    assert parse_config_text(base + "  method: lora\n")[0].train.learning_rate == 1e-4
    lr = parse_config_text(base + "  method: lora\n  learning_rate: 3.0e-4\n")[
        0
    ].train.learning_rate
    assert lr == 3e-4


def test_a_retired_key_from_an_older_run_loads_with_a_warning():
    from engine.config import parse_config_text

    base = "train:\n  model: a/b\n  instance_data: a/c\n  instance_prompt: x\n"
    cfg, warnings = parse_config_text(base + "  dataloader_num_workers: 2\n", "old.yaml")
    assert cfg.train.instance_prompt == "x"
    assert any("train.dataloader_num_workers" in w and "ignored" in w for w in warnings)
