"""The warm generate worker (engine/generate/worker.py) through the app's client
(tui/generate_worker.py), as real processes on the tiny model: the second request with the same
model does not load the pipeline again and makes the images a cold `generate` makes; another
model reloads in the same process; errors are one line and the worker survives them; cancel
stops mid-request; the worker ends when idle, when its stdin closes and when its parent is
SIGKILLed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tui.generate_worker import GenerateWorker

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300
TINY = ["--model", "builtin:tiny", "--num-inference-steps", "3", "--num-images", "1"]


def ask(worker: GenerateWorker, argv: list[str], on_message=None) -> list[dict[str, Any]]:
    """Submit `argv`; the worker's messages about it, up to and including `done`."""
    request_id = worker.submit(argv)
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        message = worker.next_message(0.2)
        if on_message is not None:
            on_message(request_id)
        if message is None or message.get("id") != request_id:
            continue
        messages.append(message)
        if message["type"] in ("done", "exit"):
            return messages
    raise AssertionError(f"no answer to {argv} in {TIMEOUT_S}s: {messages}")


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


def pixels(paths: list[str]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths if not p.endswith("grid.png")]


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def worker():
    """One worker for the tests that load models (each asserts its own loads: the model it
    starts with differs from the one the other leaves loaded)."""
    client = GenerateWorker(idle_s=600)
    yield client
    client.close()


def test_second_request_does_not_load_again_and_matches_a_cold_generate(tiny_dir, tmp_path, worker):
    first = [*TINY, "--prompt", "a red circle", "--num-images", "2", "--seed", "0"]
    second = [*TINY, "--prompt", "a blue square", "--seed", "7", "--scheduler", "euler_a"]
    one = ask(worker, [*first, "--output-dir", str(tmp_path / "1")])
    pid = worker.pid
    two = ask(worker, [*second, "--output-dir", str(tmp_path / "2")])
    again = ask(worker, [*first, "--output-dir", str(tmp_path / "3")])  # back to dpmpp_2m

    assert kinds(one) == ["accepted", "loading", "loaded", "done"], one
    assert kinds(two) == ["accepted", "done"] and kinds(again) == ["accepted", "done"]
    assert worker.pid == pid
    assert all(m["status"] == "completed" for m in (one[-1], two[-1], again[-1]))

    from engine.cli import main  # a cold `generate`: a fresh pipeline, as the CLI loads it

    assert main(["generate", *second, "--output-dir", str(tmp_path / "cold")]) == 0
    cold = pixels(sorted(str(p) for p in (tmp_path / "cold").glob("0*.png")))
    warm = pixels(two[-1]["images"])
    assert len(warm) == len(cold) == 1 and np.array_equal(warm[0], cold[0])
    # the sampler is rebuilt from the pipeline's own config each time, whatever came before
    for a, b in zip(pixels(one[-1]["images"]), pixels(again[-1]["images"]), strict=True):
        assert np.array_equal(a, b)


def test_errors_are_one_line_another_model_reloads_and_cancel_keeps_the_model(
    tiny_dir, tmp_path, worker
):
    first = ask(worker, [*TINY, "--prompt", "x", "--output-dir", str(tmp_path / "a")])
    assert first[-1]["status"] == "completed"
    pid = worker.pid

    nope = ["--model", str(tmp_path / "nope"), "--prompt", "x"]
    missing = ask(worker, [*nope, "--output-dir", str(tmp_path / "m")])
    assert missing[-1]["status"] == "failed"
    assert missing[-1]["error"]["message"] == f"model folder '{tmp_path / 'nope'}' does not exist"

    bad_lora = tmp_path / "bad.safetensors"
    bad_lora.write_bytes(b"not a safetensors file")
    lora = ask(worker, [*TINY, "--prompt", "x", "--lora", str(bad_lora), "--output-dir",
                        str(tmp_path / "b")])  # fmt: skip
    assert lora[-1]["status"] == "failed" and "\n" not in lora[-1]["error"]["message"]
    assert lora[-1]["error"]["message"].startswith(f"cannot apply the LoRA '{bad_lora}'")
    events = [json.loads(line) for line in (tmp_path / "b" / "events.jsonl").open()]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "failed"

    other = tmp_path / "other-model"
    shutil.copytree(tiny_dir / "model", other)
    argv = ["--model", str(other), *TINY[2:], "--prompt", "y"]
    reloaded = ask(worker, [*argv, "--output-dir", str(tmp_path / "c")])
    assert kinds(reloaded) == ["accepted", "loading", "loaded", "done"], reloaded
    assert reloaded[1]["model"] == str(other) and reloaded[-1]["status"] == "completed"
    assert worker.pid == pid  # the errors did not end it; the new model loaded in it

    out = tmp_path / "d"
    long = [*argv, "--num-images", "4", "--num-inference-steps", "20", "--output-dir", str(out)]

    def cancel_after_the_first_image(request_id: int) -> None:
        if any(out.glob("000-*.png")):
            worker.cancel(request_id)

    cancelled = ask(worker, long, on_message=cancel_after_the_first_image)
    assert cancelled[-1]["status"] == "stopped", cancelled
    assert 1 <= len(list(out.glob("0*.png"))) < 4
    events = [json.loads(line) for line in (out / "events.jsonl").open()]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "stopped"
    after = ask(worker, [*argv, "--output-dir", str(tmp_path / "e")])
    assert kinds(after) == ["accepted", "done"] and after[-1]["status"] == "completed"
    assert worker.pid == pid


def test_an_idle_worker_ends_and_the_next_request_starts_a_new_one(tmp_path):
    worker = GenerateWorker(idle_s=1)
    try:
        bad = ["--prompt", "no model"]  # answered at once: no pipeline needed
        assert ask(worker, bad)[-1]["status"] == "failed"
        pid = worker.pid
        assert pid is not None and wait_gone(pid, 30), "the idle worker did not end"
        seen = []
        while (message := worker.next_message(0.5)) is not None:
            seen.append(message)
        assert {"type": "bye", "reason": "idle"} in seen
        assert ask(worker, bad)[-1]["status"] == "failed"
        assert worker.pid not in (None, pid)
    finally:
        worker.close()


def test_the_worker_ends_when_its_stdin_closes():
    from tui.engine_client import engine_env

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "generate-worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=engine_env(),
        text=True,
    )
    assert json.loads(proc.stdout.readline())["type"] == "ready"
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert json.loads(proc.stdout.readline()) == {"type": "bye", "reason": "eof"}


PARENT = """
import sys, time
from tui.generate_worker import GenerateWorker
worker = GenerateWorker(idle_s=600)
worker.submit(["--prompt", "no model"])
while (m := worker.next_message(60)) is not None and m.get("type") != "done":
    pass
print(worker.pid, flush=True)
time.sleep(600)
"""


def test_the_worker_ends_when_its_parent_is_killed(tmp_path):
    from tui.engine_client import engine_env

    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=engine_env()
    )
    try:
        pid = int(parent.stdout.readline())
        assert running(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_gone(pid, 20), "the worker outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


ENDING_WORKER = """
import json, os, sys
marker = sys.argv[1]
if not os.path.exists(marker):  # the first worker: ending (idle) as the request comes
    sys.stdin.readline()
    open(marker, "w").close()
    print(json.dumps({"type": "bye", "reason": "idle"}), flush=True)
    sys.exit(0)
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"type": "accepted", "id": request["id"]}), flush=True)
    print(json.dumps({"type": "done", "id": request["id"], "status": "completed",
                      "images": [], "error": None, "argv": request["argv"]}), flush=True)
"""


def test_a_request_the_ending_worker_never_accepted_goes_to_a_new_one(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(ENDING_WORKER)

    class Ending(GenerateWorker):
        def command(self) -> list[str]:
            return [sys.executable, str(script), str(tmp_path / "first-ended")]

    worker = Ending(idle_s=600)
    try:
        answer = ask(worker, ["--prompt", "sent once"])
        assert (tmp_path / "first-ended").exists()
        assert kinds(answer) == ["accepted", "done"]
        assert answer[-1]["argv"] == ["--prompt", "sent once"]
    finally:
        worker.close()
