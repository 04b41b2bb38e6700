"""dreambooth-tui engine: the ML side (training, generation, hub).

This package root and engine.config, engine.events, engine.runs and engine.doctor are imported by
the TUI, so they must never import torch, diffusers, transformers, accelerate or datasets.
"""

__version__ = "0.1.0"
