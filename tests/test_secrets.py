"""The Hugging Face token never reaches a file under the run folder, a generate or dry-run
folder, engine.log, the CLI's output or the app's screen, whatever fails: here the token is
pasted where it does not belong (the model, the prompt, the repo id), so every error message
would carry it (docs/reliability.md, "Secrets")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_tui import screen_text, wait_for
from tui_synthetic import write_finished_run

from engine.events import EventWriter, read_events
from engine.redact import MASK, hub_tokens, redact

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_SECRETmarker0123456789"  # from HF_TOKEN
LOGIN = "hf_LOGINmarker9876543210"  # from the `hf auth login` file


@pytest.fixture
def token_env(tmp_path, monkeypatch) -> dict[str, str]:
    home = tmp_path / "hf-home"
    home.mkdir()
    (home / "token").write_text(LOGIN + "\n")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def leaks(*texts: str, folders: tuple[Path, ...] = ()) -> list[str]:
    found = [t[:80] for t in texts if TOKEN in t or LOGIN in t]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and (
                TOKEN.encode() in (data := path.read_bytes()) or LOGIN.encode() in data
            ):
                found.append(str(path))
    return found


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def test_tokens_are_found_like_huggingface_hub_finds_them(token_env):
    assert hub_tokens() == sorted([TOKEN, LOGIN], key=len, reverse=True)
    assert redact(f"a {TOKEN} b {LOGIN}") == f"a {MASK} b {MASK}"


def test_event_writer_masks_the_token(token_env, tmp_path):
    with EventWriter(tmp_path / "out" / "events.jsonl") as w:
        w.emit("error", kind="config", message=f"model '{TOKEN}' not found", hint=LOGIN)
    assert leaks(folders=(tmp_path / "out",)) == []
    event = read_events(tmp_path / "out" / "events.jsonl")[0]
    assert (event["message"], event["hint"]) == (f"model '{MASK}' not found", MASK)


@pytest.mark.slow
def test_token_pasted_as_model_or_prompt_of_a_failing_run_is_written_nowhere(
    tiny_dir, token_env, tmp_path
):
    # The token as a hub id whose model_index.json alone is in the hub cache: check and the
    # engine's family check pass, the weights cannot be downloaded (offline), the run fails.
    repo = Path(token_env["HF_HOME"]) / "hub" / f"models--{TOKEN}"
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    index = (tiny_dir / "model" / "model_index.json").read_bytes()
    (repo / "snapshots" / ("a" * 40) / "model_index.json").write_bytes(index)
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "train:\n"
        f"  model: {TOKEN}\n"
        "  instance_data: builtin:tiny\n"
        f"  instance_prompt: a photo of {LOGIN} shape\n"
        "  resolution: 32\n"
        "  max_train_steps: 2\n"
        f"  output_dir: {tmp_path / 'runs'}\n"
        "evaluation:\n"
        f"  prompts: [a photo of {TOKEN} shape]\n",
        encoding="utf-8",
    )
    proc = cli(["train", str(config), "--quiet"], token_env, tmp_path)
    assert proc.returncode == 1, proc.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    names = {p.name for p in runs[0].iterdir()}
    assert {"config.yaml", "run.json", "events.jsonl", "engine.log"} <= names
    # The run's config.yaml holds the masked id, so the engine fails on it: one error line.
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")], proc.stderr
    assert leaks(proc.stdout, proc.stderr, folders=(runs[0],)) == []


@pytest.mark.slow
def test_token_pasted_as_generate_model_or_repo_id_is_printed_and_written_nowhere(
    token_env, tmp_path
):
    proc = cli(
        ["generate", "--model", TOKEN, "--prompt", f"a photo of {LOGIN}", "--num-images", "1"],
        token_env,
        tmp_path,
    )
    assert proc.returncode != 0 and (tmp_path / "images").is_dir()
    assert leaks(proc.stdout, proc.stderr, folders=(tmp_path / "images",)) == []

    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    for repo in (TOKEN, f"{TOKEN}/my model"):
        proc = cli(["push-model", str(run_dir), repo, "--dry-run"], token_env, tmp_path)
        assert proc.returncode in (0, 2), proc.stderr
        assert leaks(proc.stdout, proc.stderr, folders=(run_dir,)) == []


@pytest.mark.slow
async def test_app_masks_a_token_pasted_as_a_repo_id_and_pushes_nothing(
    token_env, tmp_path, monkeypatch
):
    from textual.widgets import Input

    import tui.screens.generate_push as generate_push
    from tui.app import DreamBoothApp
    from tui.state import AppState
    from tui.widgets.modals import TOKEN_PASTED, PromptModal

    started: list[list[str]] = []
    monkeypatch.setattr(generate_push, "push_command", lambda *a: started.append(a) or ["true"])
    monkeypatch.setenv("DREAMBOOTH_TUI_IMAGES", "halfcell")
    run_dir = write_finished_run(tmp_path / "runs")
    (run_dir / "final").mkdir()
    app = DreamBoothApp(AppState(output_dir=tmp_path / "runs", run_dir=run_dir))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("4")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal), 5, "the repo prompt")
        app.screen.query_one(Input).value = f"{TOKEN}/my-model"  # pasted into the wrong field
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptModal)  # still asking: nothing went further
        assert app.screen.query_one(Input).value == f"{MASK}/my-model"
        text = screen_text(app)
        assert TOKEN_PASTED.split(":")[0] in text
        assert TOKEN not in text and MASK in text
    assert started == []
