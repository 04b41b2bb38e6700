"""ConfigError: one line naming the file, the key path, the problem and the fix; and the
wording its messages share (values as written in YAML, 'did you mean')."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from engine.errors import DreamboothError


class ConfigError(DreamboothError):
    """A config problem (kind "config", exit 2). ``str(e)`` is one line:
    ``<file>: <key.path>: <problem>; <fix>``.

    ``file`` is the config file as the user named it (or None), ``key`` the dotted key path in the
    file's own format (or None for file-level problems), ``line`` the 1-based line where known,
    ``problem`` the message without the file and key prefix. ``more`` holds the further problems
    found in the same file (each a ConfigError), in file order; ``str(e)`` names only the first.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        more: list[ConfigError] | None = None,
    ) -> None:
        self.problem = " ".join(str(problem).split("\n")).strip()
        self.file = file
        self.key = key
        self.line = line
        self.more: list[ConfigError] = list(more or [])
        super().__init__(self._text(), kind="config", exit_code=2)

    def _text(self) -> str:
        parts: list[str] = []  # joined below into one line, whatever a key or file name holds
        if self.file:
            parts.append(self.file)
        if self.key:
            parts.append(self.key)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        parts.append(self.problem)
        return " ".join(": ".join(parts).splitlines())

    def __str__(self) -> str:
        return self._text()


def show_value(value: Any) -> str:
    """A value as the user would have written it in YAML, for 'got ...' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def and_list(words: Iterable[str]) -> str:
    """'a, b and c' (the way messages list the keys a section needs)."""
    words = list(words)
    return " and ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:
        close = [v for v in valid if key.lower() in v.lower() or v.lower() in key.lower()][:1]
    return f"did you mean '{close[0]}'?" if close else ""


def unknown_key_message(key: str, valid: list[str], what: str = "key") -> str:
    hint = did_you_mean(key, valid)
    if hint:
        return f"unknown {what}; {hint}"
    if len(valid) <= 12:
        return f"unknown {what}; valid: {', '.join(valid)}"
    return f"unknown {what}; the valid keys are listed in sample_configs/sd15-full.yaml"


def loc_text(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
