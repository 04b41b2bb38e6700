"""Keep the Hugging Face token out of everything the project writes or shows.

The token is handed to huggingface_hub and nowhere else, but a user can paste it where it does
not belong (as a repo id, a model id, a prompt): then an error message, an event, a config copy
or a traceback would carry it. Every output of the engine's verbs (stdout, stderr: engine.log for
a run), every event line and every config copy goes through `redact`.

Torch-free and light: the TUI imports it (the event writer does). The token is found the way
huggingface_hub finds it (HF_TOKEN, the older HUGGING_FACE_HUB_TOKEN, the `hf auth login` file),
without importing huggingface_hub.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

MASK = "hf_***"  # plain text in YAML too (a bare *** would be an alias)
_MIN_LEN = 8  # shorter values are not tokens, and masking them would garble ordinary text


def _token_file() -> Path:
    if os.environ.get("HF_TOKEN_PATH"):
        return Path(os.path.expandvars(os.path.expanduser(os.environ["HF_TOKEN_PATH"])))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return Path(os.path.expandvars(os.path.expanduser(home))) / "token"


def hub_tokens() -> list[str]:
    """Every Hugging Face token this process could use (longest first)."""
    found = {os.environ.get("HF_TOKEN", ""), os.environ.get("HUGGING_FACE_HUB_TOKEN", "")}
    try:
        found.add(_token_file().read_text(encoding="utf-8", errors="replace"))
    except OSError:
        pass
    tokens = {t.strip() for t in found if t and len(t.strip()) >= _MIN_LEN}
    return sorted(tokens, key=len, reverse=True)


def redact(text: str, tokens: list[str] | None = None) -> str:
    """`text` with every token replaced by MASK."""
    for token in hub_tokens() if tokens is None else tokens:
        if token in text:
            text = text.replace(token, MASK)
    return text


class RedactingStream:
    """A text stream that masks the tokens in whatever is written to it."""

    def __init__(self, stream: TextIO, tokens: list[str]) -> None:
        self._stream = stream
        self._tokens = tokens

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._tokens))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def redact_output() -> None:
    """Mask the tokens in everything this process prints (tracebacks included)."""
    tokens = hub_tokens()
    if not tokens:
        return
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream, tokens))
