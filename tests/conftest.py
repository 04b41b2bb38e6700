"""Shared fixtures: the tiny model built once per session; everything offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny model + demo images, built once; `builtin:tiny` resolves here (also in
    subprocesses, through DREAMBOOTH_TUI_CACHE)."""
    cache_root = os.environ.get("DREAMBOOTH_TUI_TEST_CACHE")
    root = Path(cache_root) if cache_root else tmp_path_factory.getbasetemp() / "cache"
    os.environ["DREAMBOOTH_TUI_CACHE"] = str(root)
    from engine.tiny import default_cache_dir, ensure_tiny

    return ensure_tiny(default_cache_dir())
