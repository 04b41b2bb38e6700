"""Share on the Hub: dry runs, model and dataset cards, and the real upload path against a local
fake Hub (huggingface_hub's own calls run unchanged; only the server is replaced)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fakeruns import make_full_run, make_lora_run
from huggingface_hub import DatasetCard, ModelCard, constants
from PIL import Image

from engine.generate import generate, resolve_options
from engine.hub import HubError, push_dataset, push_model
from engine.progress import fmt_bytes
from engine.tiny import ensure_tiny

REPO = Path(__file__).resolve().parent.parent
MARKER = "hf_MARKER_xyz123"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


class FakeHub:
    """The few Hub endpoints an upload uses, on 127.0.0.1; records every request.

    ``fail`` maps an endpoint ("create", "preupload", "commit") to the HTTP status it answers.
    Every file is accepted as a "regular" upload, so its content travels in the commit payload.
    """

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.requests: list[dict] = []
        self.fail = fail or {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                hub.requests.append(
                    {"method": self.command, "path": self.path, "headers": headers, "body": body}
                )
                status, payload = hub.respond(self.path.split("?")[0], body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def respond(self, path: str, body: bytes) -> tuple[int, dict]:
        def failing(name):
            return self.fail[name], {"error": f"{name} refused by the fake hub"}

        if path == "/api/repos/create":
            if "create" in self.fail:
                return failing("create")
            d = json.loads(body)
            prefix = "datasets/" if d.get("type") == "dataset" else ""
            return 200, {"url": f"{self.url}/{prefix}{d['organization']}/{d['name']}"}
        if path == "/api/validate-yaml":
            return 200, {}
        if path.endswith("/preupload/main"):
            if "preupload" in self.fail:
                return failing("preupload")
            files = json.loads(body)["files"]
            return 200, {
                "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ]
            }
        if path.endswith("/commit/main"):
            if "commit" in self.fail:
                return failing("commit")
            repo = path.removeprefix("/api/").removesuffix("/commit/main").split("/", 1)[1]
            return 200, {"commitUrl": f"{self.url}/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40}
        return 404, {"error": "not found"}

    def api(self, suffix: str) -> list[dict]:
        return [r for r in self.requests if r["path"].split("?")[0].endswith(suffix)]

    def committed_files(self) -> dict[str, bytes]:
        files = {}
        for r in self.api("/commit/main"):
            for line in r["body"].splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        return files

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubruns")
    return {"full": make_full_run(root, model=SD15), "lora": make_lora_run(root)}


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "my-shapes"
    folder.mkdir()
    for src in sorted((ensure_tiny() / "images").glob("*.png")):
        shutil.copy(src, folder / src.name)
    (folder / "shape-00.txt").write_text('a photo of sks shape, [red] "quoted"\n')
    (folder / "shape-03.txt").write_text("a photo of sks shape on the beach")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Any request huggingface_hub tries fails: proves a code path touches no network."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """In-process pushes go to a FakeHub, with the marker token from HF_TOKEN."""
    hub = FakeHub()
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "harnesses.json"))
    monkeypatch.setenv("HF_TOKEN", MARKER)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield hub
    hub.close()


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
