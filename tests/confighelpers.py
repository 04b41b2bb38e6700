"""engine/config.py test helpers: the sample folders, a minimal config, one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.config import ConfigError, parse_config_text

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


def with_train(extra: str) -> str:
    return MINIMAL + textwrap.indent(textwrap.dedent(extra), "  ")


def error_of(text: str, source: str = "demo.yaml", overrides: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, source, overrides)
    err = info.value
    assert "\n" not in str(err), str(err)
    assert "Traceback" not in str(err)
    return err
