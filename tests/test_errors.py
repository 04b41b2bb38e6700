"""Every expected failure shares one base (engine.errors): one line, a kind, a hint, an exit code."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from engine.errors import KINDS, DreamboothError

ROOT = Path(__file__).resolve().parent.parent


def _error_classes() -> list[tuple[str, str]]:
    """(module, class) for every `class ...Error` defined in the engine, read from the source."""
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                found.append((module, node.name))
    return found


def test_every_engine_error_class_subclasses_the_base():
    classes = _error_classes()
    assert len(classes) >= 10  # the walker sees the engine's error classes
    outside = [
        f"{module}.{name}"
        for module, name in classes
        if not issubclass(getattr(importlib.import_module(module), name), DreamboothError)
    ]
    assert outside == []


def _cases() -> list[tuple[DreamboothError, str, str, str, int]]:
    """(error, str(error), kind, hint, exit_code) as each class is raised in the engine."""
    from engine.config import ConfigError
    from engine.data import DataError
    from engine.generate import GenerateError
    from engine.hub import HubError
    from engine.images import ImageLoadError
    from engine.model_family import ModelIndexError
    from engine.models import ModelLoadError
    from engine.runlock import RunLockedError
    from engine.runstop import StopRefusedError
    from engine.train import EngineError

    return [
        (ConfigError("bad; fix", file="c.yaml", key="train.x"), "c.yaml: train.x: bad; fix",
         "config", "", 2),
        (ModelIndexError("no index"), "no index", "config", "", 2),
        (ModelIndexError("offline", kind="network"), "offline", "network", "", 1),
        (ModelLoadError("no such folder", hint="fix it"), "no such folder", "config", "fix it", 2),
        (ModelLoadError("hub down", kind="network"), "hub down", "network", "", 1),
        (GenerateError("bad", kind="config", hint="fix", exit_code=2), "bad; fix", "config",
         "fix", 2),
        (GenerateError("crashed"), "crashed", "internal", "", 1),
        (HubError("not a folder", exit_code=2), "not a folder", "config", "", 2),
        (HubError("refused"), "refused", "network", "", 1),
        (EngineError("data", "no images", "add some", exit_code=2), "no images", "data",
         "add some", 2),
        (EngineError("internal", "boom"), "boom", "internal", "", 1),
        (DataError("no images", "add some"), "no images", "data", "add some", 2),
        (DataError("offline", kind="network"), "offline", "network", "", 1),
        (ImageLoadError(Path("/x/a.png"), "not an image"), "a.png: not an image", "data", "", 2),
        (RunLockedError(Path("/r"), 12),
         "/r: already in use by a running engine (pid 12); stop it first or pick another run",
         "config", "", 2),
        (StopRefusedError("pid reused"), "pid reused", "config", "", 2),
    ]  # fmt: skip


def test_each_error_keeps_its_line_and_carries_kind_hint_and_exit_code():
    for error, line, kind, hint, exit_code in _cases():
        assert (str(error), error.kind, error.hint, error.exit_code) == (
            line,
            kind,
            hint,
            exit_code,
        ), type(error).__name__
        assert error.kind in KINDS
        assert not hasattr(error, "code")  # one name for the exit code


ERSTWHILE_RUNTIME_ERRORS = [
    ("engine.data", "DataError"),
    ("engine.train", "EngineError"),
    ("engine.models", "ModelLoadError"),
    ("engine.runlock", "RunLockedError"),
    ("engine.runstop", "StopRefusedError"),
]


@pytest.mark.parametrize(("module", "name"), ERSTWHILE_RUNTIME_ERRORS)
def test_errors_that_were_runtime_errors_still_are(module, name):
    # `except RuntimeError` callers (and tests) keep catching them.
    assert issubclass(getattr(importlib.import_module(module), name), RuntimeError)
