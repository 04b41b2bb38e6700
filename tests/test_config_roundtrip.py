"""engine/config.py: dump and save, keeping the user's comments and key order (the round trip).

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import textwrap

from confighelpers import MINIMAL, SAMPLES

from engine.config import TrainConfig, dump_config, load_config, parse_config_text, save_config

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
