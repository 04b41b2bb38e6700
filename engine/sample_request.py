"""Sample now: a request, written into a live run's folder, for validation samples at the next
step, without stopping the run.

The app (the Train screen's `n`) and `dreambooth-tui sample RUN_DIR [--prompt P ...]` write
RUN_DIR/sample-request.json (a temp file renamed into place: whole or absent, also on shared
storage); the engine's main process takes it at the next step boundary by renaming it away
(atomic: a request written meanwhile is the next one), makes the samples and trains on. A second
request written before the engine took the first replaces it.

Torch-free: the app imports this module (tests/test_import_boundary.py).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import DreamboothError
from engine.runs import is_locked

REQUEST_FILE = "sample-request.json"
MAX_PROMPTS = 16  # what one request may ask for (each prompt: evaluation.num_images images)


class SampleRequestError(DreamboothError, ValueError):
    """A request that cannot be sent (no such run, not live, a bad prompt): one line, exit 2."""

    kind, exit_code = "config", 2


@dataclass(frozen=True)
class SampleRequest:
    """What a request asks for: its prompts (empty: the run's evaluation.prompts)."""

    prompts: list[str] = field(default_factory=list)
    asked: float = 0.0  # when it was written (unix seconds)


def clean_prompts(prompts: list[str]) -> list[str]:
    """The prompts stripped, empty ones dropped; SampleRequestError where there are too many."""
    kept = [p.strip() for p in prompts if p and p.strip()]
    if len(kept) > MAX_PROMPTS:
        raise SampleRequestError(
            f"{len(kept)} prompts: a sample request takes at most {MAX_PROMPTS}"
        )
    return kept


def request_samples(run_dir: str | Path, prompts: list[str] | None = None) -> Path:
    """Ask the live engine of `run_dir` for samples at its next step (with `prompts`, or its
    config's evaluation.prompts where none are given). Returns the request file.

    Raises SampleRequestError where `run_dir` is not a run or its engine is not running."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SampleRequestError(f"{run_dir}: no such run folder")
    if not is_locked(run_dir):
        raise SampleRequestError(
            f"{run_dir.name}: no engine is running on it; `generate --run {run_dir}` makes "
            "images from a finished run"
        )
    body = {"v": 1, "prompts": clean_prompts(list(prompts or [])), "t": time.time()}
    target = run_dir / REQUEST_FILE
    tmp = run_dir / f".{REQUEST_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.write_text(json.dumps(body, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SampleRequestError(f"{target}: cannot write the request ({exc.strerror})") from None
    return target


def parse_request(text: str) -> SampleRequest:
    """A request file's content; ValueError (one line) where it is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        raise ValueError(f"{REQUEST_FILE} is not JSON") from None
    prompts = body.get("prompts") if isinstance(body, dict) else None
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f'{REQUEST_FILE}: "prompts" must be a list of strings')
    asked = body.get("t")
    return SampleRequest(
        clean_prompts(prompts),  # (SampleRequestError is a ValueError)
        float(asked) if isinstance(asked, int | float) else 0.0,
    )


def take_request(run_dir: str | Path) -> SampleRequest | None:
    """The pending request, taken (the file is gone after this), or None when there is none.
    ValueError (one line) for a file that is not a request; it is gone too."""
    run_dir = Path(run_dir)
    taken = run_dir / f".{REQUEST_FILE}.taken-{os.getpid()}"
    try:
        os.replace(run_dir / REQUEST_FILE, taken)
    except FileNotFoundError:
        return None
    try:
        text = taken.read_text(encoding="utf-8", errors="replace")
    finally:
        taken.unlink(missing_ok=True)
    return parse_request(text)


def discard_request(run_dir: str | Path) -> bool:
    """Remove a request the engine will not serve (the run ended first); True if there was one."""
    try:
        (Path(run_dir) / REQUEST_FILE).unlink()
    except FileNotFoundError:
        return False
    return True
