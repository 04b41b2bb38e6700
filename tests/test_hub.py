"""Share on the Hub: the real upload path against a local fake Hub (huggingface_hub's own calls
run unchanged; only the server is replaced), its refusals in one line, and the token written
nowhere. Dry runs and the cards are in test_hub_dry_run.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakehub import (  # noqa: F401 - the fixtures `fake_hub`, `image_folder`, `runs`
    MARKER,
    FakeHub,
    fake_hub_fixture,
    image_folder_fixture,
    runs_fixture,
)
from fakeruns import make_lora_run
from huggingface_hub import DatasetCard, ModelCard, constants

from engine.generate import generate, resolve_options
from engine.hub import HubError, push_dataset, push_model

REPO = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), NO_PROXY="127.0.0.1,localhost")
    env["no_proxy"] = env["NO_PROXY"]
    return {**env, **extra}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


# ---------------------------------------------------------------------------- real uploads


def test_real_push_model_cli_reaches_the_hub_with_token_and_card(runs, tmp_path):
    hub = FakeHub()
    try:
        proc = _cli(
            ["push-model", str(runs["lora"]), "me/sks-lora", "--private"],
            _env(tmp_path, HF_ENDPOINT=hub.url, HF_TOKEN=MARKER, HF_HUB_OFFLINE="0"),
        )
    finally:
        hub.close()
    assert proc.returncode == 0, proc.stderr
    assert f"pushed 3 files to {hub.url}/me/sks-lora" in proc.stdout
    assert MARKER not in proc.stdout + proc.stderr

    (create,) = hub.api("/api/repos/create")
    body = json.loads(create["body"])
    assert (body["organization"], body["name"], body["visibility"]) == ("me", "sks-lora", "private")
    for r in [create, *hub.api("/preupload/main"), *hub.api("/commit/main")]:
        assert r["headers"]["authorization"] == f"Bearer {MARKER}"
    (preupload,) = hub.api("/api/models/me/sks-lora/preupload/main")
    paths = {f["path"] for f in json.loads(preupload["body"])["files"]}
    assert paths == {"README.md", "pytorch_lora_weights.safetensors", "samples.png"}

    files = hub.committed_files()
    dry = push_model(
        runs["lora"], "me/sks-lora", dry_run=True, output_dir=tmp_path / "dry", log=print
    )
    assert files["README.md"] == (dry.folder / "README.md").read_bytes()  # the card, as dry run
    assert ModelCard(files["README.md"].decode()).data.instance_prompt == "a photo of sks shape"
    lora = runs["lora"] / "final" / "pytorch_lora_weights.safetensors"
    assert files["pytorch_lora_weights.safetensors"] == lora.read_bytes()
    assert not list(runs["lora"].glob(".hub-upload-*"))  # the staging folder is gone


def test_real_push_dataset(fake_hub, image_folder):
    result = push_dataset(image_folder, "me/shapes", private=False, log=print)
    assert result.url == f"{fake_hub.url}/datasets/me/shapes"
    body = json.loads(fake_hub.api("/api/repos/create")[0]["body"])
    assert body["type"] == "dataset" and body["visibility"] == "public"
    files = fake_hub.committed_files()
    assert set(files) == {"README.md", "data/train-00000-of-00001.parquet"}
    assert fake_hub.api("/api/datasets/me/shapes/commit/main")
    assert DatasetCard(files["README.md"].decode()).data.task_categories == ["text-to-image"]


@pytest.mark.parametrize(
    "fail, message",
    [
        ({"create": 401}, "the Hugging Face token was rejected (401 unauthorized)"),
        ({"create": 403}, "not permitted to write to 'me/sks-lora' (403 forbidden)"),
        ({"preupload": 404}, "repository 'me/sks-lora' not found (404)"),
        (
            {"commit": 400},
            "the Hugging Face Hub refused the upload (HTTP 400): commit refused by the fake hub",
        ),
    ],
)
def test_hub_refusals_are_one_line(fake_hub, runs, fail, message):
    fake_hub.fail = fail
    with pytest.raises(HubError) as err:
        push_model(runs["lora"], "me/sks-lora", log=lambda _: None)
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text and MARKER not in text
    assert err.value.exit_code == 1


def test_missing_token_is_one_line_and_sends_nothing(fake_hub, runs, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match=r"^no Hugging Face token: set HF_TOKEN or run `hf auth"):
        push_model(runs["lora"], "me/sks-lora", log=print)
    assert not fake_hub.api("/api/repos/create")


def test_no_network_is_one_line(fake_hub, runs, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(HubError, match=r"^cannot reach the Hugging Face Hub \(no network\?\)"):
        push_model(runs["lora"], "me/sks-lora", log=print)


def test_offline_push_fails_with_one_line(image_folder, tmp_path):
    proc = _cli(
        ["push-dataset", str(image_folder), "me/shapes"],
        _env(tmp_path, HF_TOKEN=MARKER, HF_HUB_OFFLINE="1"),
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and MARKER not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("warning:")]
    assert errors == [
        "error: cannot reach the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE); "
        "unset it and check the network to push"
    ]


# ----------------------------------------------------------------------------- the token


def test_marker_token_is_written_nowhere(tmp_path, fake_hub, image_folder, monkeypatch):
    root = image_folder.parent
    run = make_lora_run(root / "runs")
    monkeypatch.chdir(root)
    generate(resolve_options(run_dir=run, num_images=1, num_inference_steps=2))  # images/<stamp>
    push_model(run, "me/sks-lora", dry_run=True, log=print)
    push_dataset(image_folder, "me/shapes", dry_run=True, log=print)
    push_model(run, "me/sks-lora", log=print)
    push_dataset(image_folder, "me/shapes", log=print)

    assert any(MARKER in r["headers"].get("authorization", "") for r in fake_hub.requests)
    checked = [p for p in root.rglob("*") if p.is_file()]
    assert len(checked) > 20 and any(p.name == "README.md" for p in checked)
    assert any(p.name == "events.jsonl" and "generated" in p.parts for p in checked)
    leaks = [p for p in checked if MARKER.encode() in p.read_bytes()]
    assert leaks == []
