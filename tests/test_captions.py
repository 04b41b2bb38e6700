"""Captions (issue 12): per-image `.txt` captions (the README's example folder) replace the
instance prompt image by image; train.caption_dropout trains that share of instance rows on the
empty prompt, drawn as a pure function of the seed (cached embeddings or not), so a resumed run
repeats the uninterrupted one's losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data import caption_dropped, load_images
from tests.enginehelpers import ROOT, losses, of_type, prepare, resume_from, train_in_process

EXAMPLE = ROOT / "docs" / "example-captions"
PROMPT = "a photo of sks shape"
QUIET = {"validation_steps": 100, "checkpointing_steps": 100}


def test_example_folder_captions_replace_the_prompt_per_image():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/example-captions/" in readme and "photo1.txt" in readme
    with_captions = load_images(str(EXAMPLE), PROMPT, 32, True, captions=True)
    assert with_captions.names == ["photo1.png", "photo2.png", "photo3.png"]
    assert with_captions.prompts == [
        (EXAMPLE / "photo1.txt").read_text(encoding="utf-8").strip(),
        (EXAMPLE / "photo2.txt").read_text(encoding="utf-8").strip(),
        PROMPT,  # no photo3.txt: the instance prompt
    ]
    assert len(set(with_captions.prompts)) == 3
    without = load_images(str(EXAMPLE), PROMPT, 32, True, captions=False)
    assert without.prompts == [PROMPT] * 3


def _trainer(tmp: Path, **train):
    from engine.config import load_config
    from engine.train import Trainer

    run_dir = prepare(tmp, train={**QUIET, **train})
    trainer = Trainer(run_dir, None, ["test"])
    trainer.cfg = load_config(run_dir / "config.yaml")
    trainer.setup()
    trainer.prepare()
    return trainer


@pytest.mark.parametrize("cache", [True, False])
def test_caption_dropout_trains_its_share_of_rows_on_the_empty_prompt(cache, tiny_dir, tmp_path):
    rate, seed, batch, micro_batches = 0.3, 42, 4, 25
    trainer = _trainer(
        tmp_path,
        caption_dropout=rate,
        seed=seed,
        train_batch_size=batch,
        cache_latents=cache,
        instance_prompt=PROMPT,
    )
    models = trainer.models
    with torch.no_grad():
        ref = models.family.encode_prompts(models.parts(), ["", PROMPT], trainer.device).hidden
    assert not torch.allclose(ref[0], ref[1], atol=1e-3)
    empty_rows = []
    for k in range(micro_batches):
        with torch.no_grad():
            _, cond, _, _ = trainer.batches.micro_batch(k)
        for row in cond.hidden_states:
            empty = torch.allclose(row, ref[0], atol=1e-5)
            assert empty or torch.allclose(row, ref[1], atol=1e-5)
            empty_rows.append(empty)
    positions = range(batch * micro_batches)  # one process: draw k*batch+i is row i of batch k
    assert empty_rows == [caption_dropped(seed, p, rate) for p in positions]
    n = len(empty_rows)
    assert 0.15 * n <= sum(empty_rows) <= 0.45 * n  # 0.3 of 100 rows, +-3.3 sd
    assert not any(caption_dropped(seed, p, 0.0) for p in positions)  # 0: off


def test_caption_and_lora_dropout_resume_is_exact(tiny_dir, tmp_path):
    code, run_dir, events = train_in_process(
        tmp_path,
        train={
            "method": "lora",
            "lora_dropout": 0.3,
            "caption_dropout": 0.5,
            "train_batch_size": 2,
            "max_train_steps": 4,
            "checkpointing_steps": 2,
            "validation_steps": 100,
            "learning_rate": 1e-3,
        },
    )
    assert code == 0, of_type(events, "error")
    straight = losses(events)
    resumed = resume_from(run_dir, 2)
    assert sorted(resumed) == [3, 4]
    for step, value in resumed.items():
        assert value == straight[step], step
