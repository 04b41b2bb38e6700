"""engine/config.py's paths: local or hub id, and the checks of local folders before a run.

Pure and fast: no torch, no network.
"""

from __future__ import annotations

import pytest

from engine.config import BUILTIN_TINY, Config, ConfigError, TrainConfig, check_paths, is_local_path

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
