"""Export from the app: which model of a run the Runs and Generate screens export, the formats
that apply to it, and the `python -m engine export` command it turns into (the conversion runs
in that child: the app never imports torch). Pure: no Textual."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from engine.config import load_config
from engine.export.request import TAKEN_TAIL
from engine.runs import CONFIG_FILE, read_run_json
from tui.generate_request import SOURCE_FINAL

__all__ = [
    "DTYPES",
    "FORMATS",
    "ExportChoice",
    "ExportSource",
    "export_command",
    "formats_for",
    "has_model",
    "newest_checkpoint",
    "run_method",
    "source_for",
    "source_for_choice",
    "said_in_the_dialog",
    "written_path",
]

# (value, label): the choices of `dreambooth-tui export`, worded for the dialog
FORMATS = (
    ("kohya", "kohya LoRA (AUTOMATIC1111, Forge, ComfyUI)"),
    ("single-file", "single file (.safetensors checkpoint for A1111/ComfyUI)"),
    ("diffusers", "diffusers (from_pretrained / load_lora_weights)"),
)
DTYPES = ("fp16", "bf16", "fp32")


@dataclass(frozen=True)
class ExportSource:
    """What a screen exports: a run's final model (checkpoint None) or one checkpoint."""

    run_dir: Path
    checkpoint: int | None
    method: str  # "lora" | "full" (as the run's config says)

    @property
    def label(self) -> str:
        return "final model" if self.checkpoint is None else f"checkpoint step {self.checkpoint}"


@dataclass(frozen=True)
class ExportChoice:
    """What the dialog picked."""

    format: str
    fuse: bool
    dtype: str


def run_method(run_dir: Path) -> str:
    """'lora' or 'full': run.json's method, else the run's config (full where neither says)."""
    method = read_run_json(run_dir).get("method")
    if method in ("lora", "full"):
        return str(method)
    try:
        return str(load_config(run_dir / CONFIG_FILE).train.method)
    except Exception:  # an unreadable config: the export itself says what is wrong with it
        return "full"


def newest_checkpoint(run_dir: Path) -> int | None:
    folder = run_dir / "checkpoints"
    steps = [
        int(m.group(1))
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.is_dir() and (m := re.fullmatch(r"step-(\d+)", p.name))
    ]
    return max(steps) if steps else None


def has_model(run_dir: Path) -> bool:
    """A final model or a checkpoint to export."""
    return (run_dir / "final").is_dir() or newest_checkpoint(run_dir) is not None


def source_for(run_dir: Path, checkpoint: int | None = None) -> ExportSource | None:
    """The Runs screen's source (checkpoint None): the final model, else the newest checkpoint;
    None where the run has neither. The Generate screen passes the checkpoint it shows."""
    if checkpoint is None and not (run_dir / "final").is_dir():
        checkpoint = newest_checkpoint(run_dir)
        if checkpoint is None:
            return None
    return ExportSource(run_dir, checkpoint, run_method(run_dir))


def source_for_choice(run_dir: Path | None, choice: str) -> ExportSource | None:
    """The source for the Generate screen's model choice: the run's final model ("final") or a
    checkpoint ("ckpt:STEP"); None for the other choices (a hub id, a LoRA) or no run."""
    if run_dir is None:
        return None
    if choice == SOURCE_FINAL:
        return source_for(run_dir)
    if choice.startswith("ckpt:"):
        return source_for(run_dir, int(choice.removeprefix("ckpt:")))
    return None


def formats_for(method: str) -> list[tuple[str, str]]:
    """The formats a run's method exports to: kohya is for LoRA runs only."""
    return [f for f in FORMATS if method == "lora" or f[0] != "kohya"]


def export_command(source: ExportSource, choice: ExportChoice) -> list[str]:
    """`python -m engine export RUN_DIR --format F --dtype D [--fuse] [--checkpoint N]`."""
    cmd = [sys.executable, "-m", "engine", "export", str(source.run_dir)]
    cmd += ["--format", choice.format, "--dtype", choice.dtype]
    if choice.fuse and source.method == "lora":
        cmd.append("--fuse")
    if source.checkpoint is not None:
        cmd += ["--checkpoint", str(source.checkpoint)]
    return cmd


def said_in_the_dialog(line: str) -> str:
    """The export's last line as the app's dialog says it: the dialog has no --output to give,
    so an output that is there is met by another format or precision."""
    if line.endswith(TAKEN_TAIL):
        return (
            line.removesuffix(TAKEN_TAIL)
            + "remove it or pick another format or precision (never replaced)"
        )
    return line


def written_path(output: str) -> Path | None:
    """The file or folder a successful export wrote: its last line `wrote PATH`."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if lines and lines[-1].startswith("wrote "):
        return Path(lines[-1].removeprefix("wrote ").strip())
    return None
