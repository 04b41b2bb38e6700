"""`train.export`: the chosen formats written into RUN_DIR/exports/ when a run ends (fp16).

An export that fails is a warning, not a failed run: final/ is whole, and the same export can be
made again with `dreambooth-tui export`. A run that ends again (resumed after it had finished)
replaces its earlier end-of-run exports, which were made from the earlier final/.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.errors import DreamboothError
from engine.export.request import EXPORTS_DIR, default_output, resolve_request

DTYPE = "fp16"


def write_run_export(run_dir: Path, fmt: str, method: str) -> Path:
    """One format of a finished run at its default place (a LoRA's single file: fused)."""
    fuse = fmt == "single-file" and method == "lora"
    name = default_output(run_dir, fmt, fuse, DTYPE, None).name + ".safetensors"
    out = run_dir / EXPORTS_DIR / name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-end-{out.name}")
    tmp.unlink(missing_ok=True)  # a killed export's leftover
    req = resolve_request(run_dir, fmt, None, fuse, DTYPE, tmp)
    from engine.export.run import export

    try:
        export(req, log=lambda _line: None)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def export_at_end(ctx: Any) -> list[str]:
    """The run's `train.export` formats, written by the main process; their paths relative to
    the run folder. Each failure is one warning in the event stream."""
    formats = list(ctx.cfg.train.export or [])
    if not formats or not ctx.is_main:
        return []
    ctx.phase("exporting", ", ".join(formats))
    written = []
    for fmt in formats:
        try:
            path = write_run_export(ctx.run_dir, fmt, ctx.cfg.train.method)
        except DreamboothError as exc:
            ctx.log(
                f"train.export {fmt}: {exc}; final/ is whole: make it later with "
                f"`dreambooth-tui export {ctx.run_dir} --format {fmt}`",
                "warning",
            )
            continue
        written.append(f"{EXPORTS_DIR}/{path.name}")
        ctx.log(f"exported {fmt}: {EXPORTS_DIR}/{path.name}")
    return written
