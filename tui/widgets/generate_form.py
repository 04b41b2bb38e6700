"""The Generate form: model source, prompt, negative prompt and sampling fields, read back as a
GenerateRequest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select

from engine.config import EVAL_SCHEDULERS
from tui.generate_request import (
    SOURCE_CUSTOM,
    SOURCE_LORA,
    GenerateRequest,
    model_choices,
)
from tui.widgets.form_select import FormSelect
from tui.widgets.prompt_input import HistoryInput, PromptHistory

__all__ = ["GenerateForm"]


class GenerateForm(Vertical):
    """The fields of a generate request, one row each (the sampling numbers share a row)."""

    def __init__(self, history: PromptHistory, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("model", classes="label")
            yield FormSelect(
                model_choices(None),
                id="model-source",
                compact=True,
                allow_blank=False,
                value=SOURCE_CUSTOM,
            )
            yield Input(
                placeholder="hub id or folder (base model for a LoRA)",
                id="model-id",
                compact=True,
            )
            yield Input(placeholder="LoRA .safetensors", id="lora-file", compact=True)
        with Horizontal(classes="row"):
            yield Label("prompt", classes="label")
            yield HistoryInput(
                self.history,
                placeholder="what to draw (↑/↓: earlier prompts)",
                id="prompt",
                compact=True,
            )
        with Horizontal(classes="row"):
            yield Label("negative", classes="label")
            yield Input(placeholder="what the images should not show", id="negative", compact=True)
        with Horizontal(classes="row", id="params"):
            yield Label("count", classes="label")
            yield Input("4", type="integer", id="count", classes="num", compact=True)
            yield Label("steps", classes="label-s")
            yield Input("25", type="integer", id="steps", classes="num", compact=True)
            yield Label("guidance", classes="label-s")
            yield Input("7.5", type="number", id="guidance", classes="num", compact=True)
            yield Label("seed", classes="label-s")
            yield Input(
                "0",
                type="integer",
                id="seed",
                classes="num",
                compact=True,
                placeholder="random",
            )
            yield FormSelect(
                [(s, s) for s in EVAL_SCHEDULERS],
                id="scheduler",
                compact=True,
                allow_blank=False,
                value=EVAL_SCHEDULERS[0],
            )

    def _input(self, selector: str) -> Input:
        return self.query_one(selector, Input)

    def fill_defaults(self, cfg: Any) -> None:
        """The config's evaluation settings and model as the starting values."""
        ev = cfg.evaluation
        self._input("#count").value = str(ev.num_images)
        self._input("#steps").value = str(ev.num_inference_steps)
        self._input("#guidance").value = f"{ev.guidance_scale:g}"
        self._input("#seed").value = "" if ev.seed is None else str(ev.seed)
        self._input("#negative").value = ev.negative_prompt or ""
        if ev.scheduler in EVAL_SCHEDULERS:
            self.query_one("#scheduler", Select).value = ev.scheduler
        if ev.prompts:
            self._input("#prompt").value = ev.prompts[0]
        self._input("#model-id").value = str(cfg.train.model)

    def set_model_choices(self, choices: list[tuple[str, str]], keep_current: bool) -> None:
        """New options for the model Select; the current one stays if allowed and offered."""
        select = self.query_one("#model-source", Select)
        current = select.value
        select.set_options(choices)
        values = [v for _, v in choices]
        select.value = current if current in values and keep_current else values[0]
        self.update_model_fields()

    def model_picker_open(self) -> bool:
        """The model Select's list is open (the user is choosing: leave its options alone)."""
        return self.query_one("#model-source", Select).expanded

    def picked_model(self) -> str:
        return str(self.query_one("#model-source", Select).value)

    @on(Select.Changed, "#model-source")
    def update_model_fields(self) -> None:
        """Show the typed-model and LoRA fields only for the sources that need them."""
        select = self.query_one("#model-source", Select)
        source = select.value
        select.set_class(source in (SOURCE_CUSTOM, SOURCE_LORA), "-typed")
        self.query_one("#model-id").display = source in (SOURCE_CUSTOM, SOURCE_LORA)
        self.query_one("#lora-file").display = source == SOURCE_LORA

    def request(self, run_dir: Path | None) -> GenerateRequest:
        """The fields as typed, for `run_dir` (the run whose models the Select offers)."""
        return GenerateRequest(
            source=str(self.query_one("#model-source", Select).value),
            run_dir=run_dir,
            model=self._input("#model-id").value,
            lora=self._input("#lora-file").value,
            prompt=self._input("#prompt").value,
            negative_prompt=self._input("#negative").value,
            num_images=self._input("#count").value,
            steps=self._input("#steps").value,
            guidance=self._input("#guidance").value,
            seed=self._input("#seed").value,
            scheduler=str(self.query_one("#scheduler", Select).value),
        )
