"""Issue 9, item 14: `check` and the engine read model_index.json first and refuse a model family
the engine does not train, in one line, before any weights load (or download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main as cli_main
from engine.model_family import ModelIndexError, check_model, read_model_index
from tests.enginehelpers import of_type, train_in_process, write_config

SD15_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
UNSUPPORTED = {
    "Stable Diffusion 3": {
        "_class_name": "StableDiffusion3Pipeline",
        "transformer": ["diffusers", "SD3Transformer2DModel"],
    },
    "Flux": {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]},
    "Kandinsky": {
        "_class_name": "KandinskyV22Pipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
    },
}


def _model_folder(root: Path, index: dict) -> Path:
    """A local 'model' that is only its model_index.json: nothing else could be loaded."""
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps(index))
    return root


@pytest.mark.parametrize("family", list(UNSUPPORTED))
def test_check_refuses_an_unsupported_family_in_one_line(family, tmp_path, capsys):
    model = _model_folder(tmp_path / "model", UNSUPPORTED[family])
    cfg = write_config(tmp_path, train={"model": str(model)})
    assert cli_main(["check", str(cfg)]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert (
        "cfg.yaml: train.model:" in line and family in line and "Stable Diffusion 1.x/2.x" in line
    )
    assert "Stable Diffusion XL" in line  # names every family the engine trains


def test_check_accepts_an_sdxl_model_and_names_its_family(tiny_sdxl_dir, tmp_path, capsys):
    """Issue 11: SDXL is a family the engine trains; `check` takes it (builtin or folder) and
    says which family the model is."""
    for model in ("builtin:tiny-sdxl", str(tiny_sdxl_dir / "model")):
        cfg = write_config(tmp_path, train={"model": model})
        assert cli_main(["check", str(cfg)]) == 0, capsys.readouterr().err
        assert f"train.model: {model} (Stable Diffusion XL)" in capsys.readouterr().out
    cfg = write_config(tmp_path, train={"model": "builtin:tiny"})
    assert cli_main(["check", str(cfg)]) == 0
    assert "train.model: builtin:tiny (Stable Diffusion 1.x/2.x)" in capsys.readouterr().out


def test_check_accepts_training_sdxls_text_encoders(tiny_sdxl_dir, tmp_path, capsys):
    """Both SDXL text encoders train (tests/test_sdxl_text_encoders.py): `check` takes it."""
    cfg = write_config(tmp_path, train={"model": "builtin:tiny-sdxl", "train_text_encoder": True})
    assert cli_main(["check", str(cfg)]) == 0, capsys.readouterr().err


def test_engine_refuses_an_unsupported_family_before_loading_weights(tiny_dir, tmp_path):
    model = _model_folder(tmp_path / "model", UNSUPPORTED["Flux"])
    code, _, events = train_in_process(tmp_path, train={"model": str(model)})
    assert code == 2
    (error,) = of_type(events, "error")
    assert error["kind"] == "config" and "Flux" in error["message"]
    assert "cannot load" not in error["message"]  # refused from the index, not a failed load


def test_a_standard_pipeline_whose_unet_is_replaced_is_refused(tmp_path):
    index = {**SD15_INDEX, "unet": ["diffusers", "UNet2DModel"]}
    with pytest.raises(ModelIndexError, match="unet UNet2DModel"):
        check_model(str(_model_folder(tmp_path / "m", index)))
    check_model(str(_model_folder(tmp_path / "ok", SD15_INDEX)))  # passes


def test_hub_model_is_read_from_the_hub_cache_only(tmp_path, monkeypatch, capsys):
    """Offline, the hub cache's model_index.json decides: a Flux repo is refused by `check`
    without any download; a repo not in the cache gives one clear line."""
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--flux-model" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text(json.dumps(UNSUPPORTED["Flux"]))
    refs = cache / "models--someone--flux-model" / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)

    assert read_model_index("someone/flux-model")["_class_name"] == "FluxPipeline"
    cfg = write_config(tmp_path, train={"model": "someone/flux-model"})
    assert cli_main(["check", str(cfg)]) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert "Flux" in line and "someone/flux-model" in line

    with pytest.raises(ModelIndexError, match="offline") as info:
        read_model_index("someone/not-cached")
    assert info.value.kind == "network"
