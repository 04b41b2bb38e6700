"""Where a model or data value points: the built-in tiny demo, a local folder, or a hub id.

DESIGN's one rule, for `train.model`, `train.instance_data`, `--model` and every other place that
names a model or a data set:

- ``builtin:tiny`` is the tiny demo (engine/tiny.py): its model folder or its concept images;
  ``builtin:tiny-shapes`` the tiny model pre-trained on generic shapes, which the demo teaches
  (engine/tiny_shapes.py; its images are builtin:tiny's); ``builtin:tiny-sdxl`` the tiny SDXL
  (engine/tiny_sdxl.py), a model only;
- a value that names an existing path, or starts with ``/``, ``./``, ``../`` or ``~``, is a
  local path (a relative one looked up under a base folder when one is given);
- anything else is a hub id (``owner/name``; a bare ``name`` passes the form check).

Torch-free: the app imports this module (the tiny model is built, lazily, only by `resolve`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

#: ``train.model: builtin:tiny`` is the built-in tiny demo model (engine/tiny.py), and
#: ``train.instance_data: builtin:tiny`` its synthetic concept images. Neither a path nor a hub id.
BUILTIN_TINY = "builtin:tiny"
#: ``train.model: builtin:tiny-sdxl`` is the tiny SDXL model (engine/tiny_sdxl.py); a model only.
BUILTIN_TINY_SDXL = "builtin:tiny-sdxl"
#: ``train.model: builtin:tiny-shapes`` is the tiny model pre-trained on generic shapes, the
#: demo's (engine/tiny_shapes.py); as data, the same concept images as builtin:tiny.
BUILTIN_TINY_SHAPES = "builtin:tiny-shapes"
BUILTINS = (BUILTIN_TINY, BUILTIN_TINY_SHAPES, BUILTIN_TINY_SDXL)

#: The tiny model's build version: a new one (engine/tiny.py builds a different model) is a new
#: cache folder, built once.
TINY_VERSION = 1
TINY_SDXL_VERSION = 1
TINY_SHAPES_VERSION = 1

#: The form of a hub id: `name` or `owner/name`, letters, digits, `_`, `.` and `-`.
HUB_ID_FORM = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")

Kind = Literal["builtin", "local", "hub"]
#: What `builtin:tiny` stands for: the model folder or the concept images.
What = Literal["model", "images"]


def is_builtin(value: str | None) -> bool:
    return value in BUILTINS


def is_local_path(value: str | None, base: str | Path | None = None) -> bool:
    """DESIGN rule: a value that names an existing path (under `base` when given, else the
    current folder), or starts with /, ./, ../ or ~, is a local path; anything else (and
    a builtin) is not."""
    if not value or is_builtin(value):
        return False
    if value.startswith(("/", "./", "../", "~")) or value in (".", ".."):
        return True
    return (Path(base) / value).exists() if base is not None else os.path.exists(value)


def kind_of(value: str) -> Kind:
    """Which of the three a value is."""
    if is_builtin(value):
        return "builtin"
    return "local" if is_local_path(value) else "hub"


def has_hub_id_form(value: str) -> bool:
    """Whether a (non-local) value has the form of a hub id: `name` or `owner/name`."""
    return bool(HUB_ID_FORM.match(value))


def repo_id_error(value: str) -> str | None:
    """Why `value` cannot be a Hub repository to push to (`owner/name`), or None when it can.

    The one rule of the app's push dialogs: huggingface_hub's own check (letters, digits, `_`,
    `.`, `-`; no `--` or `..`; at most 96 characters a part) plus the namespace a push needs.
    """
    parts = value.split("/")
    ok = (
        len(parts) == 2
        and all(HUB_ID_FORM.match(p) and len(p) <= 96 and not p.endswith((".", "-")) for p in parts)
        and "--" not in value
        and ".." not in value
    )
    return None if ok else "a Hub repo id is owner/name (letters, digits, - _ .), e.g. you/sks-dog"


def is_hub_id(value: str | None) -> bool:
    """A hub repository id proper: neither builtin:tiny nor a local path, and `owner/name`."""
    return bool(value) and not is_builtin(value) and not is_local_path(value) and "/" in value


def cache_root() -> Path:
    """Where the builtin models are built: $DREAMBOOTH_TUI_CACHE, else ~/.cache/dreambooth-tui."""
    return Path(os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui")


def default_cache_dir() -> Path:
    """The folder builtin:tiny is built in."""
    return cache_root() / f"tiny-v{TINY_VERSION}"


def tiny_sdxl_cache_dir() -> Path:
    """The folder builtin:tiny-sdxl is built in (its model in model/)."""
    return cache_root() / f"tiny-sdxl-v{TINY_SDXL_VERSION}"


def tiny_shapes_cache_dir() -> Path:
    """The folder builtin:tiny-shapes is built in (its model in model/)."""
    return cache_root() / f"tiny-shapes-v{TINY_SHAPES_VERSION}"


def builtin_model_path(value: str) -> Path:
    """The model folder a builtin model name points to; nothing is built."""
    if value == BUILTIN_TINY_SDXL:
        return tiny_sdxl_cache_dir() / "model"
    if value == BUILTIN_TINY_SHAPES:
        return tiny_shapes_cache_dir() / "model"
    return builtin_path("model")


def builtin_path(kind: str, cache_dir: str | Path | None = None) -> Path:
    """Where `builtin:tiny` points for a model ("model") or data ("images"); nothing is built."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / ("model" if kind == "model" else "images")


def local_folder(value: str | None, what: What = "images") -> Path | None:
    """The local folder a value names (builtin:tiny's included, maybe not built yet), else None
    (empty, or a hub id)."""
    if not value:
        return None
    if is_builtin(value):
        return builtin_model_path(value) if what == "model" else builtin_path(what)
    return Path(value).expanduser() if is_local_path(value) else None


def resolve(value: str, what: What) -> str:
    """What a loader opens: builtin:tiny -> its folder (the tiny model built once, here);
    a local path -> the folder, `~` expanded; a hub id unchanged."""
    if value == BUILTIN_TINY_SDXL and what == "model":
        from engine.tiny_sdxl import ensure_tiny_sdxl

        ensure_tiny_sdxl()
        return str(builtin_model_path(value))
    if value == BUILTIN_TINY_SHAPES and what == "model":
        from engine.tiny_shapes import ensure_tiny_shapes

        ensure_tiny_shapes()
        return str(builtin_model_path(value))
    if is_builtin(value):  # builtin:tiny, and the tiny concept images for either
        from engine.tiny import ensure_tiny

        ensure_tiny()
        return str(builtin_path(what))
    if is_local_path(value):
        return str(Path(value).expanduser())
    return value


def resolve_model(value: str) -> str:
    """builtin:tiny -> the built tiny model folder; local paths expanded; hub ids unchanged."""
    return resolve(value, "model")


def resolve_data(value: str) -> str:
    """builtin:tiny -> the built concept images; local paths expanded; hub ids unchanged."""
    return resolve(value, "images")


def public_base_model(value: str) -> tuple[str, bool]:
    """What a public card may say about the base model: (name, is a hub id).

    A hub id stays itself. A local folder never publishes this machine's path: a hub-cache
    snapshot (`.../models--ORG--NAME/snapshots/SHA`) becomes its hub id `ORG/NAME`, any other
    folder only its own name. (The hub forbids `--` in repo ids, so the split is exact.)
    """
    if is_builtin(value) or not is_local_path(value):
        return value, is_hub_id(value)
    parts = Path(value.rstrip("/")).parts
    for i in range(len(parts) - 2):
        if parts[i].startswith("models--") and parts[i + 1] == "snapshots":
            repo_id = "/".join(parts[i][len("models--") :].split("--"))
            if repo_id:
                return repo_id, True
    return Path(value).expanduser().name or value, False
