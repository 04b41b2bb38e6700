"""What an export writes, worked out from the run folder before any weights load (torch-free).

An export reads a finished run's final/ or one of its checkpoints and writes one file (or one
folder) that other tools load. Every refusal is an ExportError with one line naming the thing
and the fix (exit 2), raised before anything is written; an existing output is never replaced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from engine.errors import DreamboothError
from engine.runs import LORA_FILE

FORMATS = ("kohya", "single-file", "diffusers")
DTYPES = ("fp16", "bf16", "fp32")
EXPORTS_DIR = "exports"  # RUN_DIR/exports/: where an export goes without --output
SD_PIPELINE = "StableDiffusionPipeline"
SDXL_PIPELINE = "StableDiffusionXLPipeline"
EXPORTABLE = (SD_PIPELINE, SDXL_PIPELINE)  # the families (pipeline classes) export takes


class ExportError(DreamboothError):
    """An export that cannot be done: bad input (exit 2) or a failure while converting (1)."""

    def __init__(self, message: str, kind: str = "config", exit_code: int = 2) -> None:
        super().__init__(message, kind=kind, exit_code=exit_code)


TAKEN_TAIL = "remove it or give another --output (never replaced)"


def output_taken(output: Path) -> ExportError:
    """The one error for an output that is already there (checked first, and again where a
    file appeared while the export ran)."""
    return ExportError(f"'{output}' exists; {TAKEN_TAIL}")


class LayoutError(ExportError):
    """The pipeline does not map onto the original layout: nothing is written (a bug, exit 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"single-file export: {message}; nothing written", "internal", 1)


@dataclass(frozen=True)
class ExportRequest:
    """One export, resolved: where the weights are and where the result goes."""

    run_dir: Path
    method: str  # "lora" or "full"
    base_model: str  # the run's train.model (what a LoRA applies to)
    format: str  # one of FORMATS
    fuse: bool
    dtype: str  # one of DTYPES
    output: Path
    checkpoint: int | None = None  # a checkpoint's step; None: final/
    pipeline: str = SD_PIPELINE  # the base model's pipeline class (its family)
    revision: str | None = None  # the run's train.revision of the base model

    @property
    def source_dir(self) -> Path:
        """final/ or the checkpoint's folder."""
        if self.checkpoint is None:
            return self.run_dir / "final"
        return self.run_dir / "checkpoints" / f"step-{self.checkpoint:06d}"

    @property
    def lora_file(self) -> Path:
        return self.source_dir / LORA_FILE

    @property
    def writes_folder(self) -> bool:
        """A diffusers pipeline folder (a full model as diffusers, or a fused LoRA)."""
        return self.format == "diffusers" and (self.method == "full" or self.fuse)


def _checkpoint_step(run_dir: Path, checkpoint: int | str) -> int:
    from engine.checkpoint import list_checkpoints  # noqa: PLC0415 (torch: only when asked)

    steps = [step for step, _ in list_checkpoints(run_dir)]
    if not steps:
        raise ExportError(
            f"run '{run_dir}' has no checkpoints; export its final model (leave out --checkpoint)"
        )
    step = steps[-1] if checkpoint == "latest" else int(checkpoint)
    if step not in steps:
        have = ", ".join(str(s) for s in steps)
        raise ExportError(f"run '{run_dir}' has no checkpoint at step {step}; it has {have}")
    return step


def _method_of(source: Path, default: str) -> str:
    try:
        state = json.loads((source / "state.json").read_text(encoding="utf-8"))
        return str(state.get("method") or default)
    except (OSError, ValueError):
        return default


def default_output(run_dir: Path, fmt: str, fuse: bool, dtype: str, step: int | None) -> Path:
    """RUN_DIR/exports/<run>[-step-N]-<format>[-fused]-<dtype>[.safetensors]."""
    name = run_dir.name + (f"-step-{step}" if step is not None else "") + f"-{fmt}"
    name += ("-fused" if fuse else "") + f"-{dtype}"
    return run_dir / EXPORTS_DIR / name


def resolve_request(
    run_dir: str | Path,
    fmt: str,
    checkpoint: int | str | None = None,
    fuse: bool = False,
    dtype: str = "fp16",
    output: str | Path | None = None,
) -> ExportRequest:
    """Check everything an export needs that can be checked without weights; raise ExportError."""
    from engine.config import ConfigError, load_config
    from engine.runs import CONFIG_FILE

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise ExportError(
            f"run folder '{run}' does not exist; give a folder under train.output_dir"
        )
    if not (run / CONFIG_FILE).is_file():
        raise ExportError(f"'{run}' is not a run folder (no {CONFIG_FILE}); give a run's folder")
    try:
        cfg = load_config(run / CONFIG_FILE)
    except ConfigError as exc:
        raise ExportError(f"{run / CONFIG_FILE}: {exc}") from None
    method = cfg.train.method
    step = None if checkpoint is None else _checkpoint_step(run, checkpoint)
    if step is not None:
        method = _method_of(run / "checkpoints" / f"step-{step:06d}", method)
    request = ExportRequest(
        run_dir=run,
        method=method,
        base_model=cfg.train.model,
        format=fmt,
        fuse=fuse,
        dtype=dtype,
        output=Path(),
        checkpoint=step,
        revision=cfg.train.revision,
    )
    _check_method(request)
    request = replace(request, pipeline=refuse_unsupported_family(cfg.train.model, run))
    if fmt == "kohya" and cfg.train.use_dora:
        raise ExportError(
            f"run '{run}' is a DoRA (use_dora: true): the kohya layout has no place for its "
            "magnitude vectors; use --format single-file --fuse (or diffusers)"
        )
    _check_source(request)
    out = default_output(run, fmt, fuse, dtype, step)
    if output:  # an existing folder receives the export under its default name
        given = Path(output).expanduser()
        out = given / out.name if given.is_dir() and not request.writes_folder else given
    if not request.writes_folder and out.suffix != ".safetensors":
        out = out.with_name(out.name + ".safetensors")
    if out.exists() or out.is_symlink():
        raise output_taken(out)
    if not out.parent.is_dir() and output:
        raise ExportError(f"folder '{out.parent}' of --output does not exist; create it first")
    return ExportRequest(**{**request.__dict__, "output": out})


def _check_method(req: ExportRequest) -> None:
    if req.method == "lora":
        if req.format == "single-file" and not req.fuse:
            raise ExportError(
                f"run '{req.run_dir}' is a LoRA: a single-file checkpoint needs --fuse "
                "(the LoRA merged into its base), or use --format kohya for the LoRA alone"
            )
        if req.format == "kohya" and req.fuse:
            raise ExportError(
                "--fuse makes a full model: use --format single-file or diffusers with it, "
                "or leave out --fuse for the kohya LoRA"
            )
        return
    if req.format == "kohya":
        raise ExportError(
            f"run '{req.run_dir}' is a full fine-tune, not a LoRA: --format kohya is for LoRA "
            "runs; use --format single-file (A1111, ComfyUI) or diffusers"
        )
    if req.fuse:
        raise ExportError(
            f"run '{req.run_dir}' is a full fine-tune: --fuse is for LoRA runs; leave it out"
        )


def _check_source(req: ExportRequest) -> None:
    source = req.source_dir
    if req.checkpoint is not None:
        if req.method == "lora" and not req.lora_file.is_file():
            raise ExportError(
                f"checkpoint '{source}' has no {LORA_FILE}; pick another --checkpoint"
            )
        if req.method == "full" and not (source / "unet.safetensors").is_file():
            raise ExportError(f"checkpoint '{source}' has no unet.safetensors; pick another one")
        return
    whole = (
        req.lora_file.is_file() if req.method == "lora" else (source / "model_index.json").is_file()
    )
    if not whole:
        raise ExportError(
            f"run '{req.run_dir}' has no final model (did it finish?); export a checkpoint with "
            "--checkpoint latest, or finish the run (train --resume)"
        )


def refuse_unsupported_family(model: str, run_dir: Path) -> str:
    """The base model's pipeline class: Stable Diffusion 1.x/2.x and SDXL export in every
    format; other families are one line, before any weights load."""
    from engine.model_family import ModelIndexError, family_name, read_model_index

    index = None
    final_index = run_dir / "final" / "model_index.json"
    try:
        if final_index.is_file():
            index = json.loads(final_index.read_text(encoding="utf-8"))
        else:
            index = read_model_index(model)
    except (ModelIndexError, OSError, ValueError):
        return SD_PIPELINE  # unreadable here: loading the weights says why, in its own line
    cls = str((index or {}).get("_class_name") or SD_PIPELINE)
    if cls not in EXPORTABLE:
        raise ExportError(
            f"run '{run_dir}' is a {family_name(cls)} model: export of it is not there yet "
            "(Stable Diffusion 1.x/2.x and SDXL only); use its final/ diffusers folder meanwhile"
        )
    return cls
