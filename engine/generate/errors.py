"""The one-line failure every generate step raises (GenerateError)."""

from __future__ import annotations

from engine.errors import DreamboothError


class GenerateError(DreamboothError):
    """A failure with one clear line for the user.

    ``kind`` is an error-event kind (config, data, oom, network, internal); ``exit_code`` 2 for
    bad usage or config, 1 for failures at run time.
    """

    def __init__(self, message: str, kind: str = "internal", hint: str = "", exit_code: int = 1):
        self.message = message
        line = f"{message}; {hint}" if hint else message
        super().__init__(line, kind=kind, hint=hint, exit_code=exit_code)

    def line(self) -> str:
        return str(self)


class GenerateCancelled(GenerateError):
    """The request was cancelled (the warm worker's cancel): its events end `stopped`."""

    def __init__(self) -> None:
        super().__init__("cancelled", kind="internal")


def usage_error(message: str, hint: str = "") -> GenerateError:
    return GenerateError(message, kind="config", hint=hint, exit_code=2)
