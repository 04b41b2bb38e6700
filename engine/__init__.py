"""dreambooth-tui engine: the ML side (training, generation, hub).

The app (tui/) may import only the contract modules listed in tests/test_import_boundary.py
(CONTRACT_MODULES; also docs/architecture.md), lazily or not. Those modules, and whatever they
import at module level, must never import torch, diffusers, transformers, accelerate, peft,
bitsandbytes or datasets. The engine never imports tui.
"""

__version__ = "0.1.0"
