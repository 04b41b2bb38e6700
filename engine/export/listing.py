"""A run's exports as other tools take them: which file goes where (torch-free; the model card
and `push-model` read it)."""

from __future__ import annotations

from pathlib import Path

from engine.export.request import EXPORTS_DIR

# the format part of an export's default name -> where the file goes, in words
TOOLS = {
    "kohya": "LoRA for AUTOMATIC1111/Forge (`models/Lora`) and ComfyUI (`models/loras`)",
    "single-file": "whole model for AUTOMATIC1111/Forge (`models/Stable-diffusion`) and "
    "ComfyUI (`models/checkpoints`)",
    "diffusers": "LoRA for diffusers' `load_lora_weights`",
}


def export_kind(name: str) -> str | None:
    """The format an export's default file name says (`<run>-kohya-fp16.safetensors`), or None."""
    for fmt in TOOLS:
        if f"-{fmt}-" in name:
            return fmt
    return None


def exported_files(run_dir: Path) -> list[tuple[Path, str]]:
    """The run's exported `.safetensors` files (RUN_DIR/exports/, temp files left out), each with
    the tool it is for; sorted by name."""
    folder = run_dir / EXPORTS_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.safetensors")):
        kind = export_kind(path.name)
        if path.is_file() and not path.name.startswith(".") and kind:
            out.append((path, TOOLS[kind]))
    return out


def files_section(files: list[tuple[str, str]], main: str) -> str:
    """The model card's "Files" section: each file and the tool it is for."""
    rows = [f"| `{main}` | diffusers (`from_pretrained` / `load_lora_weights`) |"]
    rows += [f"| `{name}` | {tool} |" for name, tool in files]
    table = "\n".join(rows)
    return f"\n## Files\n\n| file | for |\n|---|---|\n{table}\n"
