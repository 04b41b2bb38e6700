"""Generate images with a trained run, a checkpoint, a LoRA file or any Stable Diffusion model.

Output folder (see docs/hub.md):

    NNN-<prompt slug>-s<seed>.png   one per image; PNG text chunks hold the settings
    NNN-<prompt slug>-s<seed>.json  the same settings, as a sidecar
    grid.png                        all images in one picture
    events.jsonl                    run_started, phase, sample (one per image), error, finished

Image i (0-based, over all prompts in order, ``num_images`` per prompt) uses seed + i, so any
single image can be made again alone. torch and diffusers are imported inside the functions
that need them: ``image_grid`` and the option handling work without them.

    source.py    what to load: run, checkpoint, LoRA, folder or hub id -> Source (no torch)
    pipeline.py  loading that Source: device, dtype, checkpoint and LoRA weights
    options.py   GenerateOptions: prompts file, the run's evaluation defaults, value checks
    files.py     output folder, image names, PNG text chunks, sidecars, the grid
    run.py       the generate run itself: images and events.jsonl
    errors.py    GenerateError
"""

from __future__ import annotations

from engine.generate.errors import GenerateError
from engine.generate.files import (
    GRID_FILE,
    default_output_dir,
    free_path,
    image_grid,
    image_name,
    png_metadata,
    save_png,
    write_image,
)
from engine.generate.options import GenerateOptions, read_prompts_file, resolve_options
from engine.generate.pipeline import default_device, default_dtype, load_pipeline, load_source
from engine.generate.run import generate
from engine.generate.source import (
    Source,
    list_checkpoints,
    load_run_config,
    resolve_model,
    resolve_source,
)
from engine.runs import LORA_FILE

__all__ = [
    "GRID_FILE",
    "LORA_FILE",
    "GenerateError",
    "GenerateOptions",
    "Source",
    "default_device",
    "default_dtype",
    "default_output_dir",
    "free_path",
    "generate",
    "image_grid",
    "image_name",
    "list_checkpoints",
    "load_pipeline",
    "load_run_config",
    "load_source",
    "png_metadata",
    "read_prompts_file",
    "resolve_model",
    "resolve_options",
    "resolve_source",
    "save_png",
    "write_image",
]
