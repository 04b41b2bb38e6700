"""The model-family interface (engine/families/): detection, and SD 1.x/2.x through it giving
exactly what the engine computed before families (same conditioning, same UNet output)."""

from __future__ import annotations

import json

import pytest
import torch

from engine.families import (
    SD,
    PromptEmbeds,
    SampleGeometry,
    family_for,
    family_of,
    loading_family,
)
from engine.families.lora import LoraSpec
from engine.model_family import ModelIndexError
from tests.test_model_family import SD15_INDEX, UNSUPPORTED


def test_family_for_finds_sd_and_no_family_for_the_others():
    assert family_for(SD15_INDEX) is SD
    for index in UNSUPPORTED.values():
        assert family_for(index) is None


def test_family_of_reads_a_folder_and_refuses_an_unsupported_one_in_one_line(tmp_path, tiny_dir):
    assert family_of(str(tiny_dir / "model")) is SD
    assert family_of("builtin:tiny") is SD
    folder = tmp_path / "flux"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps(UNSUPPORTED["Flux"]))
    with pytest.raises(ModelIndexError) as info:
        family_of(str(folder))
    assert "Flux" in str(info.value) and "\n" not in str(info.value)


def test_loading_family_falls_back_to_sd_where_the_index_cannot_be_read(tmp_path):
    # offline and not cached, and a folder without model_index.json: the loader reports it
    assert loading_family("nobody/not-cached-anywhere", cache_only=True) is SD
    assert loading_family(str(tmp_path)) is SD


def test_sd_component_problem_names_the_component_and_the_fix():
    index = {**SD15_INDEX, "text_encoder": ["transformers", "T5EncoderModel"]}
    problem = SD.component_problem(index)
    assert problem.startswith("has text_encoder T5EncoderModel where Stable Diffusion 1.x/2.x")
    assert SD.component_problem(SD15_INDEX) is None


def test_sd_conditioning_and_prediction_equal_the_direct_unet_call(tiny_dir):
    parts = SD.load(str(tiny_dir / "model"))
    prompts = ["a photo of sks shape", "a shape"]
    ids = parts.tokenizer(
        prompts,
        padding="max_length",
        truncation=True,
        max_length=parts.tokenizer.model_max_length,
        return_tensors="pt",
    ).input_ids
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn((2, 4, 16, 16), generator=gen)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        direct_embeds = parts.text_encoder(ids)[0]
        direct = parts.unet(noisy, t, direct_embeds).sample
        embeds = SD.encode_prompts(parts, prompts, "cpu")
        # cached per prompt and stacked back: the same tensor
        cached = PromptEmbeds.stack([embeds.row(0), embeds.row(1)])
        geometry = [SampleGeometry((64, 48), (0, 8), (32, 32))] * 2  # SD ignores it
        cond = SD.conditioning(cached, geometry)
        pred = SD.predict(parts.unet, noisy, t, cond)
    assert embeds.pooled is None and cond.added == {}
    assert torch.equal(cached.hidden, direct_embeds)
    assert torch.equal(pred, direct)


def test_sd_lora_file_loads_back_in_the_pipeline(tiny_dir, tmp_path):
    parts = SD.load(str(tiny_dir / "model"))
    SD.add_lora(parts.unet, LoraSpec(4, 8), {"text_encoder": parts.text_encoder})
    path = SD.save_lora(tmp_path, parts.unet, {"text_encoder": parts.text_encoder})
    assert path.name == "pytorch_lora_weights.safetensors" and path.is_file()
    pipe = SD.pipeline_class().from_pretrained(str(tiny_dir / "model"))
    pipe.load_lora_weights(str(tmp_path), weight_name=path.name)
    assert pipe.unet.peft_config["default_0"].lora_alpha == 8  # the metadata came back
    assert SD.trained_module_names == ("unet", "text_encoder")
