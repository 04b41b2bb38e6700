"""Export a run for other tools: a LoRA in the kohya/A1111 layout, a full model as one original
Stable Diffusion `.safetensors`, a LoRA fused into its base, or a diffusers copy in a dtype.

request.py resolves and refuses (torch-free); kohya.py and single_file.py convert; run.py loads
and writes; files.py writes whole, never over an existing output.
"""

from __future__ import annotations

from engine.export.request import DTYPES, FORMATS, ExportError, ExportRequest, resolve_request

__all__ = ["DTYPES", "FORMATS", "ExportError", "ExportRequest", "resolve_request"]
