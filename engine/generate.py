"""Generate images with a trained run, a checkpoint, a LoRA file or any Stable Diffusion model.

Output folder (see docs/hub.md):

    NNN-<prompt slug>-s<seed>.png   one per image; PNG text chunks hold the settings
    NNN-<prompt slug>-s<seed>.json  the same settings, as a sidecar
    grid.png                        all images in one picture
    events.jsonl                    run_started, phase, sample (one per image), error, finished

Image i (0-based, over all prompts in order, ``num_images`` per prompt) uses seed + i, so any
single image can be made again alone. torch and diffusers are imported inside the functions
that need them: ``image_grid`` and the option handling work without them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine import __version__
from engine.errors import DreamboothError
from engine.events import EVENTS_FILE, EventWriter
from engine.runs import CONFIG_FILE, images_base, slugify

GRID_FILE = "grid.png"
LORA_FILE = "pytorch_lora_weights.safetensors"


class GenerateError(DreamboothError):
    """A failure with one clear line for the user.

    ``kind`` is an error-event kind (config, data, oom, network, internal); ``exit_code`` 2 for
    bad usage or config, 1 for failures at run time.
    """

    def __init__(self, message: str, kind: str = "internal", hint: str = "", exit_code: int = 1):
        self.message = message
        line = f"{message}; {hint}" if hint else message
        super().__init__(line, kind=kind, hint=hint, exit_code=exit_code)

    def line(self) -> str:
        return str(self)


def _usage(message: str, hint: str = "") -> GenerateError:
    return GenerateError(message, kind="config", hint=hint, exit_code=2)


# ------------------------------------------------------------------------------------------
# what to load


@dataclass
class Source:
    """What a generate call loads: a pipeline, optionally with a LoRA or checkpoint on top."""

    model: str  # as the user or the run's config names it (hub id, folder, builtin:tiny)
    pipeline: str  # what from_pretrained gets: a resolved folder or a hub id
    lora: Path | None = None  # a LoRA safetensors file
    checkpoint: int | None = None
    checkpoint_dir: Path | None = None
    run_dir: Path | None = None
    method: str | None = None  # the run's method, when there is a run

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        if self.lora is not None:
            out["lora"] = str(self.lora)
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        if self.run_dir is not None:
            out["run"] = str(self.run_dir)
        return out


def resolve_model(value: str) -> str:
    """builtin:tiny -> the tiny model folder (built once); a local path -> the folder, which must
    be a diffusers pipeline; anything else is a hub id, returned as is."""
    from engine import sources

    if sources.is_local_path(value):
        folder = Path(sources.resolve_model(value))
        if not folder.exists():
            raise _usage(f"model folder '{value}' does not exist")
        if not (folder / "model_index.json").exists():
            raise _usage(
                f"'{value}' is not a diffusers pipeline folder (no model_index.json)",
                "give a folder saved with save_pretrained, a run (--run) or a hub id",
            )
        return str(folder)
    return sources.resolve_model(value)


def list_checkpoints(run_dir: Path) -> list[int]:
    from engine.checkpoint import list_checkpoints as found

    return [step for step, _ in found(Path(run_dir))]


def load_run_config(run_dir: Path):
    from engine.config import ConfigError, load_config

    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise _usage(f"run folder '{run_dir}' does not exist")
    if not path.exists():
        raise _usage(f"'{run_dir}' is not a run folder (no {CONFIG_FILE})")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise _usage(str(exc)) from None


def resolve_source(
    model: str | None = None,
    lora: str | Path | None = None,
    run_dir: str | Path | None = None,
    checkpoint: int | str | None = None,
) -> Source:
    """Work out what to load, without loading anything (no torch)."""
    lora_path = None
    if lora is not None:
        lora_path = Path(lora).expanduser()
        if lora_path.is_dir():
            lora_path = lora_path / LORA_FILE
        if not lora_path.is_file():
            raise _usage(f"LoRA file '{lora}' does not exist")
    if run_dir is None:
        if not model:
            raise _usage("nothing to generate with", "give --run RUN_DIR or --model ID_OR_DIR")
        if checkpoint is not None:
            raise _usage("--checkpoint needs --run RUN_DIR")
        from engine.sources import is_local_path

        if is_local_path(model) and not Path(model).expanduser().exists():
            raise _usage(f"model folder '{model}' does not exist")
        return Source(model=model, pipeline=model, lora=lora_path)

    run_dir = Path(run_dir).expanduser()
    cfg = load_run_config(run_dir)
    base = model or cfg.train.model
    method = cfg.train.method
    if checkpoint is not None:
        steps = list_checkpoints(run_dir)
        if not steps:
            raise _usage(f"run '{run_dir}' has no checkpoints")
        step = steps[-1] if checkpoint == "latest" else int(checkpoint)
        if step not in steps:
            raise _usage(
                f"run '{run_dir}' has no checkpoint at step {step}",
                "it has " + ", ".join(str(s) for s in steps),
            )
        ckpt = run_dir / "checkpoints" / f"step-{step:06d}"
        try:
            state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
            method = state.get("method") or method
        except (OSError, ValueError):
            pass
        ckpt_lora = ckpt / LORA_FILE if method == "lora" else None
        return Source(
            model=base,
            pipeline=base,
            lora=lora_path or ckpt_lora,
            checkpoint=step,
            checkpoint_dir=ckpt,
            run_dir=run_dir,
            method=method,
        )
    final = run_dir / "final"
    if (final / "model_index.json").exists():
        return Source(
            model=str(final), pipeline=str(final), lora=lora_path, run_dir=run_dir, method=method
        )
    if (final / LORA_FILE).exists():
        return Source(
            model=base,
            pipeline=base,
            lora=lora_path or final / LORA_FILE,
            run_dir=run_dir,
            method=method,
        )
    steps = list_checkpoints(run_dir)
    raise _usage(
        f"run '{run_dir}' has no final model (did it finish?)",
        f"pick a checkpoint with --checkpoint {steps[-1]}" if steps else "train it first",
    )


# ------------------------------------------------------------------------------------------
# loading


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def default_dtype(device: str):
    """bf16 where the GPU has it, else fp16 on a GPU; fp32 on the CPU."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


def _dtype(value: Any):
    import torch

    if value is None or isinstance(value, torch.dtype):
        return value
    names = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    names.update({"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16})
    try:
        return names[str(value)]
    except KeyError:
        raise _usage(f"unknown dtype '{value}'; choose fp32, fp16 or bf16") from None


def _hub_error(model_id: str, exc: BaseException) -> GenerateError:
    """Why a hub model could not be loaded, in one line."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    chain = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(isinstance(c, GatedRepoError) for c in chain):
        return GenerateError(
            f"'{model_id}' is gated on the Hugging Face Hub",
            kind="network",
            hint="accept its license on the Hub and log in (hf auth login or HF_TOKEN)",
        )
    if any(isinstance(c, RepositoryNotFoundError) for c in chain):
        return GenerateError(
            f"model '{model_id}' not found on the Hugging Face Hub",
            kind="config",
            hint="check the id; for a private model log in (hf auth login or HF_TOKEN)",
        )
    return GenerateError(
        f"cannot download '{model_id}' from the Hugging Face Hub (offline / no network)",
        kind="network",
        hint="use a local diffusers folder or check the connection",
    )


def load_pipeline(
    model: str | None = None,
    lora: str | Path | None = None,
    run_dir: str | Path | None = None,
    checkpoint: int | str | None = None,
    device: str | None = None,
    dtype: Any = None,
):
    """A ready StableDiffusionPipeline on ``device`` (default: the GPU if any).

    ``model``: a hub id, a local diffusers folder or ``builtin:tiny`` (with ``run_dir``: the base
    model, default the run's ``train.model``). ``lora``: a LoRA safetensors file (or a folder
    holding pytorch_lora_weights.safetensors). ``run_dir``: a training run; its final model, or
    with ``checkpoint`` (a step or "latest") that checkpoint. Half precision and SDPA attention on
    a GPU, fp32 on the CPU. Raises GenerateError.
    """
    return _load(resolve_source(model, lora, run_dir, checkpoint), device, dtype)


def _load(source: Source, device: str | None = None, dtype: Any = None):
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as dlogging

    device = device or default_device()
    dtype = _dtype(dtype) or default_dtype(device)
    pipeline = resolve_model(source.pipeline)
    dtype_kwarg = {_dtype_kwarg_name(): dtype}
    previous = dlogging.get_verbosity()
    bars = dlogging.is_progress_bar_enabled()
    dlogging.set_verbosity_error()  # "Couldn't connect to the Hub..." is said once, by us
    dlogging.disable_progress_bar()
    _transformers_bars(False)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(pipeline, **dtype_kwarg)
    except OSError as exc:
        if Path(pipeline).exists():
            raise GenerateError(
                f"cannot load the model folder '{source.pipeline}' ({exc})", kind="config"
            ) from exc
        raise _hub_error(source.pipeline, exc) from exc
    except Exception as exc:
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError

        if isinstance(exc, HFValidationError):
            raise _usage(
                f"'{source.pipeline}' is neither a model folder nor a valid hub id",
                "a hub id looks like 'owner/name'; a folder must exist",
            ) from exc
        if isinstance(exc, HfHubHTTPError) and not Path(pipeline).exists():
            raise _hub_error(source.pipeline, exc) from exc
        raise
    finally:
        dlogging.set_verbosity(previous)
        if bars:
            dlogging.enable_progress_bar()
            _transformers_bars(True)

    if source.checkpoint_dir is not None and source.method != "lora":
        _load_full_checkpoint(pipe, source.checkpoint_dir)
    if source.lora is not None:
        try:
            pipe.load_lora_weights(str(source.lora.parent), weight_name=source.lora.name)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            raise GenerateError(
                f"cannot apply the LoRA '{source.lora}' to '{source.model}' ({exc})",
                kind="config",
                hint="was it trained on this base model?",
            ) from exc
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    if device.startswith("cuda"):
        # SDPA attention: diffusers' default processor on torch 2 (AttnProcessor2_0).
        torch.backends.cuda.matmul.allow_tf32 = True
    return pipe


def _transformers_bars(on: bool) -> None:
    try:
        from transformers.utils import logging as tlogging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    tlogging.enable_progress_bar() if on else tlogging.disable_progress_bar()


def _dtype_kwarg_name() -> str:
    """Newer diffusers call from_pretrained's torch_dtype `dtype` (the old name warns)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def _load_full_checkpoint(pipe, ckpt: Path) -> None:
    """Put a full fine-tune checkpoint's trained weights into the base pipeline."""
    from safetensors.torch import load_file

    for name, module in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)):
        path = ckpt / f"{name}.safetensors"
        if not path.exists():
            if name == "unet":
                raise GenerateError(f"checkpoint '{ckpt}' has no unet.safetensors", kind="data")
            continue
        state = load_file(str(path))
        dtype = next(module.parameters()).dtype
        state = {k: v.to(dtype) for k, v in state.items()}
        result = module.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise GenerateError(
                f"checkpoint '{path}' does not fit the base model "
                f"({len(result.unexpected_keys)} unknown weights, e.g. {result.unexpected_keys[0]})",
                kind="config",
            )


# ------------------------------------------------------------------------------------------
# options


@dataclass
class GenerateOptions:
    """Everything one generate call needs, resolved (see :func:`resolve_options`)."""

    prompts: list[str]
    model: str | None = None
    lora: str | None = None
    run_dir: Path | None = None
    checkpoint: int | str | None = None
    negative_prompt: str = ""
    num_images: int = 1  # per prompt
    num_inference_steps: int = 25
    guidance_scale: float = 7.5
    seed: int = 0
    scheduler: str = "dpmpp_2m"
    height: int | None = None
    width: int | None = None
    batch_size: int = 1
    output_dir: Path | None = None  # None: a new timestamped folder (see default_output_dir)
    device: str | None = None
    dtype: str | None = None
    show: bool = False
    images: str | None = None  # --show's protocol (None: DREAMBOOTH_TUI_IMAGES, else detected)
    base_output_dir: Path = field(default=Path("images"))

    @property
    def total(self) -> int:
        return len(self.prompts) * self.num_images


def read_prompts_file(path: str | Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise _usage(f"cannot read the prompts file '{path}' ({exc.strerror or exc})") from None
    prompts = [line.strip() for line in text.splitlines()]
    return [p for p in prompts if p and not p.startswith("#")]


def resolve_options(
    *,
    run_dir: str | Path | None = None,
    model: str | None = None,
    lora: str | None = None,
    checkpoint: int | str | None = None,
    prompts: list[str] | None = None,
    prompts_file: str | Path | None = None,
    negative_prompt: str | None = None,
    num_images: int | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int | None = None,
    scheduler: str | None = None,
    height: int | None = None,
    width: int | None = None,
    batch_size: int = 1,
    output_dir: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    show: bool = False,
    images: str | None = None,
) -> GenerateOptions:
    """Options given here win; the rest come from the run's ``evaluation`` section (with a run),
    else the config defaults. Raises GenerateError (exit code 2) on bad values."""
    from engine.config import EvaluationConfig
    from engine.schedulers import SCHEDULERS

    if run_dir is None and not model:
        raise _usage("nothing to generate with", "give --run RUN_DIR or --model ID_OR_DIR")
    ev = EvaluationConfig()
    resolution = None
    if run_dir is not None:
        cfg = load_run_config(Path(run_dir).expanduser())
        ev, resolution = cfg.evaluation, cfg.train.resolution

    all_prompts = list(prompts or [])
    if prompts_file:
        all_prompts += read_prompts_file(prompts_file)
    if not all_prompts:
        if run_dir is None:
            raise _usage("no prompt", "give --prompt TEXT (repeatable) or --prompts-file FILE")
        all_prompts = list(ev.prompts)

    def pick(value, default):
        return default if value is None else value

    opts = GenerateOptions(
        prompts=all_prompts,
        model=model,
        lora=lora,
        run_dir=Path(run_dir).expanduser() if run_dir is not None else None,
        checkpoint=checkpoint,
        negative_prompt=pick(negative_prompt, ev.negative_prompt),
        num_images=int(pick(num_images, ev.num_images)),
        num_inference_steps=int(pick(num_inference_steps, ev.num_inference_steps)),
        guidance_scale=float(pick(guidance_scale, ev.guidance_scale)),
        seed=int(pick(seed, ev.seed)),
        scheduler=pick(scheduler, ev.scheduler),
        height=pick(height, ev.height or resolution),
        width=pick(width, ev.width or resolution),
        batch_size=int(batch_size),
        output_dir=Path(output_dir).expanduser() if output_dir else None,
        device=device,
        dtype=dtype,
        show=show,
        images=images,
        base_output_dir=images_base(run_dir, ev.output_dir),
    )
    for name in ("num_images", "num_inference_steps", "batch_size"):
        if getattr(opts, name) < 1:
            raise _usage(f"--{name.replace('_', '-')} must be at least 1")
    if opts.seed < 0:
        raise _usage("--seed must be 0 or more")
    if opts.guidance_scale < 0:
        raise _usage("--guidance-scale must be 0 or more")
    if opts.scheduler not in SCHEDULERS:
        raise _usage(
            f"unknown scheduler '{opts.scheduler}'", "choose one of " + ", ".join(SCHEDULERS)
        )
    for name in ("height", "width"):
        value = getattr(opts, name)
        if value is not None and (value < 8 or value % 8):
            raise _usage(f"--{name} must be a positive multiple of 8 (got {value})")
    return opts


# ------------------------------------------------------------------------------------------
# files


def default_output_dir(base: Path, now: datetime | None = None) -> Path:
    """<base>/<UTC yyyymmdd-hhmmss>, with -2, -3, ... where that folder exists already."""
    now = now or datetime.now(timezone.utc)
    stamp = f"{now:%Y%m%d-%H%M%S}"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise GenerateError(f"{base}: could not create a new output folder")


def free_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path``, or ``stem-2.ext``, ``stem-3.ext``... : never an existing file."""
    taken = taken or set()
    candidate, n = path, 1
    while candidate.exists() or candidate.with_suffix(".json").exists() or candidate in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def image_name(index: int, prompt: str, seed: int) -> str:
    return f"{index:03d}-{slugify(prompt, 40)}-s{seed}.png"


def save_png(image, path: Path, metadata: dict[str, Any]) -> None:
    """Write ``image`` with every metadata value in a PNG text chunk (iTXt where not Latin-1)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in metadata.items():
        if value is None:
            continue
        info.add_text(key, value if isinstance(value, str) else json.dumps(value))
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", pnginfo=info)
    tmp.replace(path)  # whole or absent: the TUI may read it as soon as it appears


def png_metadata(path: str | Path) -> dict[str, str]:
    """The text chunks of a PNG (what save_png wrote)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return dict(getattr(im, "text", {}) or {})


def image_grid(images: list, cols: int | None = None, pad: int = 2, background=(24, 24, 24)):
    """A near-square grid of PIL images (or paths), each cell the size of the largest."""
    from PIL import Image

    loaded = []
    for im in images:
        if isinstance(im, (str, Path)):
            with Image.open(im) as f:
                im = f.convert("RGB")
        loaded.append(im)
    if not loaded:
        raise ValueError("no images for a grid")
    n = len(loaded)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w = max(im.width for im in loaded)
    h = max(im.height for im in loaded)
    grid = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), background)
    for i, im in enumerate(loaded):
        r, c = divmod(i, cols)
        grid.paste(im, (pad + c * (w + pad), pad + r * (h + pad)))
    return grid


# ------------------------------------------------------------------------------------------
# generating


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


def generate(opts: GenerateOptions, pipe=None, log=print) -> list[Path]:
    """Make ``opts.total`` images; returns their paths (the grid last).

    Writes into ``opts.output_dir`` (created; default a new ``<stamp>`` folder under
    runs.images_base: RUN_DIR/generated or evaluation.output_dir) the PNGs, sidecars, grid.png and events.jsonl, emitting each ``sample`` event right
    after its PNG is written. ``pipe``: an already loaded pipeline (else load_pipeline's).
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
        device = opts.device or (str(pipe.device) if pipe is not None else default_device())
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
            pipe = _load(source, device, opts.dtype)
        outputs = _generate_images(pipe, opts, source, out, events, log)
        grid = free_path(out / GRID_FILE)
        image_grid(outputs).save(grid)
        outputs.append(grid)
        log(f"grid: {grid}")
    except BaseException as exc:
        error = _as_generate_error(exc)
        interrupted = isinstance(exc, KeyboardInterrupt)
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


def _generate_images(pipe, opts, source: Source, out: Path, events: EventWriter, log) -> list[Path]:
    from engine.render import render
    from engine.schedulers import make_scheduler

    pipe.scheduler = make_scheduler(opts.scheduler, pipe.scheduler.config)
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
            save_png(image, path, meta)
            path.with_suffix(".json").write_text(
                json.dumps({"file": path.name, **meta}, indent=2, ensure_ascii=False) + "\n",
                encoding="utf-8",
            )
            events.emit("sample", step=None, prompt=prompt, paths=[path.name], seed=seed, index=i)
            paths.append(path)
            log(f"[{i + 1}/{len(jobs)}] {path}")
            if opts.show:
                _show(path, f"{prompt} (seed {seed})", opts.images)
    return paths
