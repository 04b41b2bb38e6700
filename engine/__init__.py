"""dreambooth-tui engine: the ML side (training, generation, hub).

The app (tui/) may import only the contract modules listed in tests/test_import_boundary.py
(CONTRACT_MODULES; also docs/architecture.md), lazily or not. Those modules, and whatever they
import at module level, must never import torch, diffusers, transformers, accelerate, peft,
bitsandbytes or datasets. The engine never imports tui.
"""

from pathlib import Path

__version__ = "0.1.0"


def sample_configs_dir() -> Path:
    """sample_configs/ next to the package (a checkout), else inside it (an install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "sample_configs", here / "sample_configs"):
        if candidate.is_dir():
            return candidate
    return here.parent / "sample_configs"
