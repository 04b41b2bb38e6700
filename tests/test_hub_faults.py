"""A slow and failing Hub: a local fake Hub server (huggingface_hub talks to it over HTTP,
unchanged) that answers 429/500, drops connections or stops answering. Pushes retry within
bounds, then fail in one line; a push reports success only once its one commit was accepted
(docs/reliability.md, "Hub")."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakehub import FakeHub
from fakeruns import make_full_run
from huggingface_hub import constants

from engine.hub import HubError, push_model

ROOT = Path(__file__).resolve().parent.parent
MARKER = "hf_FAULTSmarker123456"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


class BadHub(FakeHub):
    """FakeHub whose `endpoint` ("create", "preupload", "commit") misbehaves `times` times:
    `fault` is an HTTP status, "drop" (the connection closes without an answer) or "hang" (no
    answer until the hub is closed)."""

    def __init__(self, endpoint: str, fault: int | str, times: int = 10**9) -> None:
        self.endpoint, self.fault, self.times = endpoint, fault, times
        self.accepted_commits = 0
        self.attempts = 0
        self._release = threading.Event()
        super().__init__()
        self.server.handle_error = lambda *args: None  # a dropped request is no traceback

    def respond(self, path: str, body: bytes) -> tuple[int, dict]:
        name = {"/api/repos/create": "create"}.get(path) or path.rsplit("/", 2)[-2]
        if name == self.endpoint:
            self.attempts += 1
            if self.times > 0:
                self.times -= 1
                if self.fault == "drop":
                    raise ConnectionAbortedError("dropped by the fake hub")
                if self.fault == "hang":
                    self._release.wait()
                    raise ConnectionAbortedError("released")
                return int(self.fault), {"error": f"fake hub says {self.fault}"}
        status, payload = super().respond(path, body)
        if name == "commit" and status == 200:
            self.accepted_commits += 1
        return status, payload

    def close(self) -> None:
        self._release.set()
        super().close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_full_run(tmp_path_factory.mktemp("hubfaults"), model=SD15)


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    def start(endpoint: str, fault: int | str, times: int = 10**9) -> BadHub:
        hub = BadHub(endpoint, fault, times)
        hubs.append(hub)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        return hub

    hubs: list[BadHub] = []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setenv("HF_TOKEN", MARKER)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield start
    for hub in hubs:
        hub.close()


@pytest.mark.parametrize(
    ("endpoint", "fault"), [("commit", 429), ("preupload", 503), ("commit", "drop")]
)
def test_a_push_retries_transient_failures_then_commits_once(run_dir, hub_env, endpoint, fault):
    hub = hub_env(endpoint, fault, times=2)
    lines: list[str] = []
    result = push_model(run_dir, "me/sks-shape", log=lines.append)
    assert result.url and lines[-1].startswith("pushed ")
    assert hub.attempts == 3  # two failures, then the one that went through
    assert hub.accepted_commits == 1
    assert "unet/diffusion_pytorch_model.safetensors" in hub.committed_files()


@pytest.mark.slow
@pytest.mark.timeout(150)  # without a request timeout the push waits forever
def test_a_hub_that_stops_answering_fails_in_one_line_within_bounds(run_dir, hub_env, monkeypatch):
    monkeypatch.setenv("DREAMBOOTH_TUI_HUB_TIMEOUT", "1")
    hub = hub_env("commit", "hang")
    lines: list[str] = []
    start = time.monotonic()
    with pytest.raises(HubError) as info:
        push_model(run_dir, "me/sks-shape", log=lines.append)
    took = time.monotonic() - start
    assert took < 90, took  # 6 tries of 1 s and huggingface_hub's back-off (1+2+4+8+8 s)
    assert 2 <= hub.attempts <= 6
    message = str(info.value)
    assert message.startswith("cannot reach the Hugging Face Hub") and "\n" not in message
    assert hub.accepted_commits == 0 and not any(line.startswith("pushed") for line in lines)


@pytest.mark.slow
def test_a_hub_that_keeps_failing_exits_1_with_one_line_and_no_commit(run_dir, tmp_path):
    hub = BadHub("commit", 500)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(
            HF_ENDPOINT=hub.url,
            HF_HUB_OFFLINE="0",
            TRANSFORMERS_OFFLINE="0",
            HF_TOKEN=MARKER,
            HF_HOME=str(tmp_path / "hf-home"),
            NO_PROXY="127.0.0.1,localhost",
            PYTHONPATH=str(ROOT),
        )
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "engine", "push-model", str(run_dir), "me/sks-shape"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - start
    finally:
        hub.close()
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: the Hugging Face Hub refused the upload (HTTP 500): fake hub says 500"
    ]
    assert "pushed" not in proc.stdout and MARKER not in proc.stdout + proc.stderr
    assert hub.accepted_commits == 0 and 2 <= hub.attempts <= 6
    assert took < 90
    assert not list(run_dir.glob(".hub-upload-*"))  # the staging folder is removed
