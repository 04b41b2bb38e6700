"""The base of every expected failure: one line for the user, an error kind, a hint, an exit code."""

from __future__ import annotations

# The error-event kinds (events.jsonl `error.kind`) an expected failure may carry.
KINDS = ("config", "data", "oom", "network", "internal")


class DreamboothError(Exception):
    """An expected failure, as opposed to a bug.

    ``str(e)`` is the one line the user sees. ``kind`` is an error-event kind (see KINDS),
    ``hint`` the fix when it is kept apart from the message (else ""), ``exit_code`` 2 for bad
    usage, config or input, 1 for a failure at run time. Subclasses keep their own constructors
    and set these three, as class defaults or per instance.
    """

    kind: str = "internal"
    hint: str = ""
    exit_code: int = 1

    def __init__(
        self,
        message: str = "",
        *,
        kind: str | None = None,
        hint: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        if hint is not None:
            self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


def exit_code_for(kind: str) -> int:
    """2 for a config or data problem (the user's to fix), 1 for one at run time."""
    return 2 if kind in ("config", "data") else 1
