"""`train.report_to`: the run's events also written for TensorBoard or Weights & Biases.

The reporter is fed the events the engine already writes to events.jsonl (as written: tokens
masked), on the main process only, and writes into the run folder: `RUN_DIR/tensorboard/`, or
`RUN_DIR/wandb/` (W&B offline unless the user set WANDB_MODE, e.g. `online`; the project is
WANDB_PROJECT or "dreambooth-tui"). From `step` events: loss (and its instance/prior parts), lr,
grad norm, speed and memory; from `sample` events: the sample images. Nothing in the app reads
these; a reporter that fails says so once in a warning and stops, the run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Reporter", "open_reporter", "step_scalars"]

_GIB = float(1 << 30)


def _number(value: Any) -> float | None:
    """A step field as a float ("nan"/"inf" as written for non-finite values); None: absent."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def step_scalars(event: dict[str, Any]) -> dict[str, float]:
    """A `step` event's figures under the names the trackers show."""
    fields = {
        "train/loss": event.get("loss"),
        "train/loss_instance": event.get("loss_instance"),
        "train/loss_prior": event.get("loss_prior"),
        "train/lr": event.get("lr"),
        "train/grad_norm": event.get("grad_norm"),
        "speed/it_s": event.get("it_s"),
        "speed/samples_s": event.get("samples_s"),
    }
    for key, value in (event.get("mem") or {}).items():
        fields[f"memory/{key}_gib"] = None if _number(value) is None else float(value) / _GIB
    out = {k: _number(v) for k, v in fields.items()}
    return {k: v for k, v in out.items() if v is not None}


class Reporter:
    """Turns events into a tracker's records; subclasses write them."""

    name = "reporter"

    def __init__(self, run_dir: Path, warn: Callable[[str], None]) -> None:
        self.run_dir = run_dir
        self.warn = warn
        self.failed = False
        self.prompts: dict[str, int] = {}  # prompt -> its index in evaluation.prompts

    def on_event(self, event: dict[str, Any]) -> None:
        """One event of the stream; a failure disables the reporter with one warning."""
        if self.failed:
            return
        try:
            kind = event.get("type")
            if kind == "run_started":
                prompts = ((event.get("config") or {}).get("evaluation") or {}).get("prompts")
                self.prompts = {p: n for n, p in enumerate(prompts or [])}
                self.start(event)
            elif kind == "step" and isinstance(event.get("step"), int):
                self.scalars(event["step"], step_scalars(event))
            elif kind == "sample" and isinstance(event.get("step"), int):
                self.sample(event)
        except Exception as exc:  # a tracker's failure never ends the run
            self.failed = True
            self.warn(
                f"train.report_to: {self.name} stopped recording ({exc.__class__.__name__}: "
                f"{exc}); the run goes on"
            )

    def sample(self, event: dict[str, Any]) -> None:
        prompt = str(event.get("prompt", ""))
        index = self.prompts.setdefault(prompt, len(self.prompts))
        images = []
        for rel in event.get("paths") or []:
            with Image.open(self.run_dir / rel) as im:
                images.append(np.asarray(im.convert("RGB")))
        if images:
            self.images(event["step"], f"samples/{index}", prompt, images)

    def start(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def scalars(self, step: int, values: dict[str, float]) -> None:
        raise NotImplementedError

    def images(self, step: int, tag: str, prompt: str, images: list[np.ndarray]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and close (the run's end, whatever happened); a failure is a warning."""
        try:
            self.finish()
        except Exception as exc:
            self.warn(f"train.report_to: {self.name} could not finish ({exc.__class__.__name__})")

    def finish(self) -> None:
        pass


class TensorBoardReporter(Reporter):
    """Event files in RUN_DIR/tensorboard/; a resumed run drops the steps after its checkpoint
    that an earlier attempt had written (TensorBoard's purge_step)."""

    name = "tensorboard"
    folder = "tensorboard"

    def __init__(self, run_dir: Path, warn: Callable[[str], None]) -> None:
        super().__init__(run_dir, warn)
        self.writer: Any = None

    def start(self, event: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        resumed = event.get("resumed_from_step")
        self.writer = SummaryWriter(
            log_dir=str(self.run_dir / self.folder),
            purge_step=resumed + 1 if isinstance(resumed, int) else None,
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def images(self, step: int, tag: str, prompt: str, images: list[np.ndarray]) -> None:
        for n, im in enumerate(images):  # one tag per image: a stable series per seed
            self.writer.add_image(f"{tag}/{n}", im, step, dataformats="HWC")
        self.writer.add_text(f"{tag}/prompt", prompt, step)
        self.writer.flush()

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbReporter(Reporter):
    """A W&B run in RUN_DIR/wandb/: offline unless WANDB_MODE says otherwise."""

    name = "wandb"

    def __init__(self, run_dir: Path, warn: Callable[[str], None]) -> None:
        super().__init__(run_dir, warn)
        self.run: Any = None

    def start(self, event: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "dreambooth-tui",
            name=str(event.get("run_id") or self.run_dir.name),
            dir=str(self.run_dir),
            mode=os.environ.get("WANDB_MODE") or "offline",
            config=event.get("config") or {},
            settings=wandb.Settings(console="off", save_code=False, silent=True),
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def images(self, step: int, tag: str, prompt: str, images: list[np.ndarray]) -> None:
        import wandb

        self.run.log({tag: [wandb.Image(im, caption=prompt) for im in images]}, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def open_reporter(report_to: str, run_dir: Path, warn: Callable[[str], None]) -> Reporter | None:
    """The reporter `train.report_to` names (None for "none")."""
    kinds = {"tensorboard": TensorBoardReporter, "wandb": WandbReporter}
    kind = kinds.get(report_to)
    return kind(run_dir, warn) if kind else None
