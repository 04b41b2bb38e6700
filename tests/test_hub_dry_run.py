"""Share on the Hub, dry runs: the folder a push would upload (a working pipeline or LoRA, the
exports, a dataset that loads back), its model and dataset cards, and a card that never shows a
local path. Nothing reaches the network."""

from __future__ import annotations

import pytest
from fakehub import (  # noqa: F401 - the fixtures `image_folder`, `no_network`, `runs`
    SD15,
    image_folder_fixture,
    no_network_fixture,
    runs_fixture,
)
from fakeruns import make_lora_run
from huggingface_hub import DatasetCard, ModelCard
from PIL import Image

from engine.hub import HubError, push_dataset, push_model
from engine.progress import fmt_bytes

# ------------------------------------------------------------------------------------ dry runs


def test_push_model_dry_run_full(runs, no_network):
    lines: list[str] = []
    result = push_model(runs["full"], "me/sks-shape", dry_run=True, log=lines.append)
    out = runs["full"] / "hub-dry-run"
    assert result.folder == out and result.url is None

    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == SD15
    assert card.data.license == "creativeml-openrail-m"
    assert {"dreambooth", "diffusers", "text-to-image"} <= set(card.data.tags)
    assert "lora" not in card.data.tags
    assert card.data.instance_prompt == "a photo of sks shape"
    assert card.data.widget == [{"text": "a photo of sks shape", "output": {"url": "samples.png"}}]
    text = card.text
    for fact in (
        "| training steps | 4 |",
        "| resolution | 32 px |",
        "| learning rate | 0.0001",
        "| method | DreamBooth, full fine-tune |",
        "| prior preservation | no |",
        "| text encoder trained | no |",
        "![Validation samples at step 4](./samples.png)",
        'StableDiffusionPipeline.from_pretrained("me/sks-shape"',
    ):
        assert fact in text, fact
    with Image.open(out / "samples.png") as grid:  # the run's 2 samples, side by side
        assert grid.size == (2 * 32 + 3 * 2, 32 + 2 * 2)
    files = {rel for rel, _ in result.files}
    assert {"README.md", "samples.png", "model_index.json"} <= files
    assert "unet/diffusion_pytorch_model.safetensors" in files
    assert any(
        line.strip().startswith("unet/diffusion_pytorch_model.safetensors") for line in lines
    )
    # sizes in the one byte format the app and the CLI use (1024-based units, named so)
    sizes = dict(result.files)
    assert f"  README.md  ({fmt_bytes(sizes['README.md'])})" in lines
    assert lines[-2] == f"{len(sizes)} files, {fmt_bytes(sum(sizes.values()))}"
    assert lines[-1] == f"nothing uploaded; everything is in {out}"

    # the upload is a working diffusers pipeline
    from diffusers import StableDiffusionPipeline

    assert StableDiffusionPipeline.from_pretrained(out).unet is not None
    # a second dry run replaces the first
    again = push_model(runs["full"], "me/sks-shape", dry_run=True, log=lambda _: None)
    assert again.files == result.files


def test_push_model_dry_run_lora(runs, no_network, tmp_path):
    out = tmp_path / "lora-dry"
    result = push_model(runs["lora"], "me/sks-lora", dry_run=True, output_dir=out, log=print)
    assert {rel for rel, _ in result.files} == {
        "README.md",
        "pytorch_lora_weights.safetensors",
        "samples.png",
    }
    assert (out / "pytorch_lora_weights.safetensors").read_bytes() == (
        runs["lora"] / "final" / "pytorch_lora_weights.safetensors"
    ).read_bytes()
    card = ModelCard.load(out / "README.md")
    assert {"dreambooth", "diffusers", "text-to-image", "lora"} <= set(card.data.tags)
    assert card.data.instance_prompt == "a photo of sks shape"
    assert card.data.base_model is None and card.data.license is None  # builtin:tiny: unknown
    assert "| method | DreamBooth, LoRA (rank 4, alpha 4) |" in card.text
    assert "| base model | `builtin:tiny` |" in card.text
    assert 'pipe.load_lora_weights("me/sks-lora"' in card.text


def test_push_model_uploads_the_exports_and_the_card_says_which_is_for_which_tool(
    no_network, tmp_path
):
    from engine import cli

    run = make_lora_run(tmp_path / "runs")
    assert cli.main(["export", str(run), "--format", "kohya"]) == 0
    kohya = f"{run.name}-kohya-fp16.safetensors"
    out = tmp_path / "dry"
    result = push_model(run, "me/sks-lora", dry_run=True, output_dir=out, log=lambda _: None)
    assert kohya in {rel for rel, _ in result.files}
    assert (out / kohya).read_bytes() == (run / "exports" / kohya).read_bytes()
    text = ModelCard.load(out / "README.md").text
    assert "## Files" in text
    assert "| `pytorch_lora_weights.safetensors` | diffusers" in text
    assert f"| `{kohya}` | LoRA for AUTOMATIC1111/Forge (`models/Lora`) and ComfyUI" in text


def test_dry_run_refuses_a_foreign_folder(runs, no_network, tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(HubError, match="not an earlier dry run") as err:
        push_model(runs["lora"], "me/x", dry_run=True, output_dir=tmp_path, log=print)
    assert err.value.exit_code == 2 and (tmp_path / "mine.txt").exists()


def test_push_dataset_dry_run_reads_back(image_folder, no_network):
    import datasets

    lines: list[str] = []
    result = push_dataset(image_folder, "me/shapes", dry_run=True, log=lines.append)
    out = image_folder.parent / "my-shapes-hub-dry-run"
    assert result.folder == out
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings == [
        "warning: skipping broken.jpg: not an image (cannot identify format)",
        "warning: skipping empty.png: empty file",
    ]

    ds = datasets.load_dataset(str(out), split="train")
    assert ds.num_rows == 6
    assert isinstance(ds.features["image"], datasets.Image)
    rows = list(ds)
    assert rows[0]["image"].size == (64, 64)
    assert rows[0]["text"] == 'a photo of sks shape, [red] "quoted"'
    assert rows[3]["text"] == "a photo of sks shape on the beach"
    assert rows[1]["text"] is None
    card = DatasetCard.load(out / "README.md")
    assert card.data.task_categories == ["text-to-image"]
    assert "dreambooth" in card.data.tags
    assert 'load_dataset("me/shapes", split="train")' in card.text
    assert "2 of them have a caption" in card.text


def test_push_dataset_without_captions_has_no_text_column(image_folder, no_network, tmp_path):
    import datasets

    for txt in image_folder.glob("*.txt"):
        txt.unlink()
    push_dataset(image_folder, "me/shapes", dry_run=True, output_dir=tmp_path / "d", log=print)
    ds = datasets.load_dataset(str(tmp_path / "d"), split="train")
    assert ds.column_names == ["image"]


@pytest.mark.parametrize(
    "folder_name, repo_id, message",
    [
        ("missing", "me/x", "is not a folder"),
        ("my-shapes", "no-namespace", "has no namespace; use NAMESPACE/NAME"),
        ("my-shapes", "me/bad name!", "is not a valid repo id"),
    ],
)
def test_push_dataset_bad_usage(image_folder, folder_name, repo_id, message):
    with pytest.raises(HubError, match=message) as err:
        push_dataset(image_folder.parent / folder_name, repo_id, dry_run=True, log=print)
    assert err.value.exit_code == 2


# ------------------------------------------------------------------- local base model folders


@pytest.mark.parametrize(
    "folder, base, on_hub",
    [
        (
            "hf/hub/models--stable-diffusion-v1-5--stable-diffusion-v1-5/snapshots/0123abc",
            SD15,
            True,
        ),
        ("private/alice/my-sd15", "my-sd15", False),
    ],
)
def test_card_never_publishes_the_local_path_of_the_base(
    tmp_path, no_network, folder, base, on_hub
):
    model_dir = tmp_path / folder
    model_dir.mkdir(parents=True)
    run_dir = make_lora_run(tmp_path / "runs", model=str(model_dir))
    out = tmp_path / "dry"
    push_model(run_dir, "me/sks-lora", dry_run=True, output_dir=out, log=lambda _: None)
    text = (out / "README.md").read_text(encoding="utf-8")
    assert str(tmp_path) not in text and "alice" not in text and "snapshots" not in text
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == (base if on_hub else None)
    if on_hub:  # the hub id recovered from the cache path: linked, licensed, in the snippet
        assert card.data.license == "creativeml-openrail-m"
        assert f"| base model | [{SD15}](https://huggingface.co/{SD15}) |" in card.text
        assert f'StableDiffusionPipeline.from_pretrained("{SD15}"' in card.text
    else:
        assert "| base model | `my-sd15` (a local folder) |" in card.text
