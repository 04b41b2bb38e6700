"""GenerateOptions: the prompts file, the run's evaluation defaults, the checks on each value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.generate.errors import usage_error
from engine.generate.source import load_run_config
from engine.runs import images_base
from engine.schedulers import SCHEDULERS


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
    scheduler: str = SCHEDULERS[0]
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
        raise usage_error(
            f"cannot read the prompts file '{path}' ({exc.strerror or exc})"
        ) from None
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

    if run_dir is None and not model:
        raise usage_error("nothing to generate with", "give --run RUN_DIR or --model ID_OR_DIR")
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
            raise usage_error("no prompt", "give --prompt TEXT (repeatable) or --prompts-file FILE")
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
            raise usage_error(f"--{name.replace('_', '-')} must be at least 1")
    if opts.seed < 0:
        raise usage_error("--seed must be 0 or more")
    if opts.guidance_scale < 0:
        raise usage_error("--guidance-scale must be 0 or more")
    if opts.scheduler not in SCHEDULERS:
        raise usage_error(
            f"unknown scheduler '{opts.scheduler}'", "choose one of " + ", ".join(SCHEDULERS)
        )
    for name in ("height", "width"):
        value = getattr(opts, name)
        if value is not None and (value < 8 or value % 8):
            raise usage_error(f"--{name} must be a positive multiple of 8 (got {value})")
    return opts
