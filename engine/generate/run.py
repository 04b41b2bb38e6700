"""The generate run: options in; images, sidecars, the grid and events.jsonl out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import __version__
from engine.events import EVENTS_FILE, EventWriter
from engine.generate.errors import GenerateCancelled, GenerateError
from engine.generate.files import (
    GRID_FILE,
    default_output_dir,
    free_path,
    image_grid,
    image_name,
    write_image,
)
from engine.generate.options import GenerateOptions
from engine.generate.pipeline import check_device, default_device, load_source
from engine.generate.source import Source, resolve_source


def _device_info(device: str) -> dict[str, Any]:
    import torch

    from engine.gpu import device_info

    return device_info(torch.device(device))


def _public_options(opts: GenerateOptions) -> dict[str, Any]:
    data = asdict(opts)
    for key in ("output_dir", "run_dir", "base_output_dir"):
        data[key] = str(data[key]) if data[key] is not None else None
    return data


def _show(path: Path, caption: str, images: str | None = None, console=None) -> None:
    """Print an image in the terminal as large as fits (aspect kept, from the terminal's real
    cell size): `images` (--images, else DREAMBOOTH_TUI_IMAGES, else what the terminal
    supports: engine.term_images); half-cells where the detected one is plain text but colour
    is on; shades of grey (unicode) when piped without colour."""
    from rich.console import Console

    from engine import term_images

    console = console or Console()
    protocol = term_images.protocol(images)
    if protocol == "unicode" and term_images.normalize(images) == "auto" and console.color_system:
        protocol = "halfcell"
    console.print(caption, markup=False, highlight=False)
    rows = max(4, console.height - 3) if console.is_terminal else None
    console.print(term_images.renderable(path, protocol, min(64, console.width), rows))


def generate(
    opts: GenerateOptions,
    pipe=None,
    log=print,
    load: Callable[[Source, str, Any], Any] | None = None,
    interrupt: Callable[[], None] | None = None,
) -> list[Path]:
    """Make ``opts.total`` images; returns their paths (the grid last).

    Writes into ``opts.output_dir`` (created; default a new ``<stamp>`` folder under
    runs.images_base: RUN_DIR/generated or evaluation.output_dir) the PNGs, sidecars, grid.png
    and events.jsonl, emitting each ``sample`` event right after its PNG is written. ``pipe``:
    an already loaded pipeline; else ``load(source, device, dtype)`` gives it (the warm worker's
    cache), else load_source. ``interrupt``: called after every denoising step, raises
    GenerateCancelled to stop (the events end ``stopped``).
    Raises GenerateError; an error and a failed ``finished`` event are written first.
    """
    start = time.time()
    if opts.output_dir is None:
        out = default_output_dir(opts.base_output_dir.absolute())
    else:
        out = opts.output_dir.absolute()
        out.mkdir(parents=True, exist_ok=True)
    opts.output_dir = out
    events = EventWriter(out / EVENTS_FILE)
    outputs: list[Path] = []
    try:
        source = resolve_source(opts.model, opts.lora, opts.run_dir, opts.checkpoint)
        if opts.device:
            device = check_device(opts.device)
        else:
            device = str(pipe.device) if pipe is not None else default_device()
        events.emit(
            "run_started",
            kind="generate",
            run_id=out.name,
            config=_public_options(opts),
            total_steps=opts.total,
            device=_device_info(device),
            resumed_from_step=None,
            world_size=1,
        )
        events.emit("phase", name="loading_models", detail=source.model)
        if pipe is None:
            pipe = (load or load_source)(source, device, opts.dtype)
        outputs = _generate_images(pipe, opts, source, out, events, log, interrupt)
        grid = free_path(out / GRID_FILE)
        image_grid(outputs).save(grid)
        outputs.append(grid)
        log(f"grid: {grid}")
    except BaseException as exc:
        error = _as_generate_error(exc)
        interrupted = isinstance(exc, (KeyboardInterrupt, GenerateCancelled))
        if not interrupted:
            events.emit("error", kind=error.kind, message=error.message, hint=error.hint)
        events.emit(
            "finished",
            status="stopped" if interrupted else "failed",
            step=None,
            outputs={"images": [p.name for p in outputs]},
            duration_s=round(time.time() - start, 3),
        )
        events.close()
        if isinstance(exc, GenerateError) or not isinstance(exc, Exception):
            raise
        raise error from exc
    events.emit(
        "finished",
        status="completed",
        step=None,
        outputs={"images": [p.name for p in outputs[:-1]], "grid": outputs[-1].name},
        duration_s=round(time.time() - start, 3),
    )
    events.close()
    return outputs


def _as_generate_error(exc: BaseException) -> GenerateError:
    if isinstance(exc, GenerateError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return GenerateError("interrupted", kind="internal")
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return GenerateError(
                "out of GPU memory while generating",
                kind="oom",
                hint="lower --batch-size, --height or --width",
            )
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(exc, OSError) and exc.errno is not None:
        return GenerateError(f"cannot write the images ({exc.strerror})", kind="disk")
    return GenerateError(f"{type(exc).__name__}: {exc}", kind="internal")


def _generate_images(
    pipe, opts, source: Source, out: Path, events: EventWriter, log, interrupt=None
) -> list[Path]:
    from engine.render import render, use_sampler

    use_sampler(pipe, opts.scheduler)
    jobs = [
        (i, prompt, opts.seed + i)
        for i, prompt in enumerate(p for p in opts.prompts for _ in range(opts.num_images))
    ]
    events.emit("phase", name="generating", detail=f"{len(jobs)} images")
    paths: list[Path] = []
    for start in range(0, len(jobs), opts.batch_size):
        batch = jobs[start : start + opts.batch_size]
        images = render(
            pipe,
            [prompt for _, prompt, _ in batch],
            [seed for _, _, seed in batch],
            negative_prompt=opts.negative_prompt,
            num_inference_steps=opts.num_inference_steps,
            guidance_scale=opts.guidance_scale,
            height=opts.height,
            width=opts.width,
            interrupt=interrupt,
        )
        for (i, prompt, seed), image in zip(batch, images, strict=True):
            meta = {
                "prompt": prompt,
                "negative_prompt": opts.negative_prompt,
                "seed": seed,
                "steps": opts.num_inference_steps,
                "guidance_scale": opts.guidance_scale,
                "scheduler": opts.scheduler,
                **source.metadata(),
                "width": image.width,
                "height": image.height,
                "software": f"dreambooth-tui {__version__}",
            }
            path = free_path(out / image_name(i, prompt, seed), set(paths))
            write_image(image, path, meta)
            events.emit("sample", step=None, prompt=prompt, paths=[path.name], seed=seed, index=i)
            paths.append(path)
            log(f"[{i + 1}/{len(jobs)}] {path}")
            if opts.show:
                _show(path, f"{prompt} (seed {seed})", opts.images)
    return paths
