"""The hub tests' local fake Hub server (huggingface_hub's own calls run unchanged; only the
server is replaced) and their fixtures: fake runs, an image folder, no network, the fake Hub."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fakeruns import make_full_run, make_lora_run
from huggingface_hub import constants

from engine.tiny import ensure_tiny

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


@pytest.fixture(scope="module", name="runs")
def runs_fixture(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hubruns")
    return {"full": make_full_run(root, model=SD15), "lora": make_lora_run(root)}


@pytest.fixture(name="image_folder")
def image_folder_fixture(tmp_path) -> Path:
    folder = tmp_path / "my-shapes"
    folder.mkdir()
    for src in sorted((ensure_tiny() / "images").glob("*.png")):
        shutil.copy(src, folder / src.name)
    (folder / "shape-00.txt").write_text('a photo of sks shape, [red] "quoted"\n')
    (folder / "shape-03.txt").write_text("a photo of sks shape on the beach")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "empty.png").write_bytes(b"")
    return folder


@pytest.fixture(name="no_network")
def no_network_fixture(monkeypatch, tmp_path) -> None:
    """Any request huggingface_hub tries fails: proves a code path touches no network."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture(name="fake_hub")
def fake_hub_fixture(monkeypatch, tmp_path) -> Iterator[FakeHub]:
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
