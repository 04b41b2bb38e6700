"""The Generate request model (tui/generate_request.py): pure, and the arguments it makes are
the ones the engine's `generate` verb reads back."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

import tui.generate_request as generate_request
from engine.cli import build_parser
from tui.generate_request import GenerateRequest, generate_args, output_dir_for

ROOT = Path(__file__).resolve().parent.parent


def _request(**kw: object) -> GenerateRequest:
    fields: dict = dict(
        source="custom",
        run_dir=None,
        model="builtin:tiny",
        lora="",
        prompt="a [b]sks[/b] dog, 'quoted'",
        negative_prompt="",
        num_images=" 3 ",
        steps="12",
        guidance="7.50",
        seed="41",
        scheduler="ddim",
    )
    fields.update(kw)
    return GenerateRequest(**fields)


def test_the_request_module_imports_neither_textual_nor_an_ml_library():
    code = (
        "import sys, json, tui.generate_request\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not loaded & {"textual", "torch", "diffusers", "transformers", "accelerate", "peft"}


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, {"model": "builtin:tiny", "lora": None, "run": None}),
        (
            {"source": "lora", "model": "base/model", "lora": " /w/l.safetensors "},
            {"model": "base/model", "lora": "/w/l.safetensors", "run": None},
        ),
        ({"source": "final", "run_dir": Path("/r/x")}, {"run": "/r/x", "checkpoint": None}),
        ({"source": "ckpt:300", "run_dir": Path("/r/x")}, {"run": "/r/x", "checkpoint": 300}),
    ],
)
def test_the_arguments_parse_back_with_the_engines_generate_verb(kw: dict, expected: dict):
    req = _request(negative_prompt="blurry", **kw)
    argv = ["generate", *generate_args(req), "--output-dir", "/tmp/out"]
    args = build_parser().parse_args(argv)
    assert args.verb == "generate"
    assert args.prompts == [req.prompt]  # literal, markup and quotes included
    assert args.negative_prompt == "blurry"
    assert (args.num_images, args.num_inference_steps) == (3, 12)
    assert args.guidance_scale == 7.5 and args.seed == 41 and args.scheduler == "ddim"
    for name, value in expected.items():
        assert getattr(args, name) == value, name


def test_an_empty_seed_leaves_the_seed_to_the_engine():
    args = build_parser().parse_args(["generate", *generate_args(_request(seed=" "))])
    assert args.seed is None


def test_output_dir_for_never_reuses_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    class FixedClock(datetime):
        @classmethod
        def now(cls, tz: timezone | None = None) -> datetime:
            return datetime(2026, 11, 29, 12, 0, 5, tzinfo=timezone.utc)

    monkeypatch.setattr(generate_request, "datetime", FixedClock)
    run = tmp_path / "run"
    first = output_dir_for(run, "images")
    assert first == (run / "generated" / "20261129-120005").absolute()  # a run keeps its images
    first.mkdir(parents=True)
    second = output_dir_for(run, "images")
    assert second.name == "20261129-120005-2" and not second.exists()
    no_run = output_dir_for(None, tmp_path / "images")
    assert no_run == tmp_path / "images" / "20261129-120005"
