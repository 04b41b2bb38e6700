"""Shared fixtures: the tiny model built once per session; everything offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
    # Several workers share the CPUs: one torch thread each (and in the engines they start), or
    # their threads fight for the cores and every test slows down several times.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tiny_dir) -> Path:
    """The tiny SDXL (engine/tiny_sdxl.py), built once beside the tiny model; `builtin:tiny-sdxl`
    resolves here. Returns the folder holding model/."""
    from engine.tiny_sdxl import default_cache_dir, ensure_tiny_sdxl

    return ensure_tiny_sdxl(default_cache_dir())
