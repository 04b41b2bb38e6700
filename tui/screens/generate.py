"""Generate: make images with a trained run (final model or a checkpoint), a LoRA on a base
model, or any hub id / local diffusers folder; push the run's model to the Hub.

`python -m engine generate ... --output-dir DIR` runs as a child process (stdin /dev/null,
output to DIR/generate.log); a thread worker follows DIR/events.jsonl and each `sample` event
puts its image into the grid as soon as it is written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from engine.config import EVAL_SCHEDULERS
from engine.events import EVENTS_FILE, EventTail
from engine.redact import redact
from engine.runs import images_base
from tui import engine_client
from tui.child_process import run_polled
from tui.widgets.image_grid import ImageGrid
from tui.widgets.modals import Choice, ChoiceModal, PromptModal

__all__ = [
    "GenerateRequest",
    "GenerateScreen",
    "HistoryInput",
    "PromptHistory",
    "generate_args",
    "model_choices",
]

POLL_S = 0.2
SOURCE_FINAL, SOURCE_CUSTOM, SOURCE_LORA = "final", "custom", "lora"


# -- prompt history ---------------------------------------------------------------------------


def history_path() -> Path:
    root = os.environ.get("DREAMBOOTH_TUI_CACHE") or Path.home() / ".cache" / "dreambooth-tui"
    return Path(root) / "prompt_history.json"


class PromptHistory:
    """Prompts used before, oldest first, no repeats, at most `limit`; saved as JSON."""

    def __init__(self, path: Path | None = None, limit: int = 200) -> None:
        self.path = path or history_path()
        self.limit = limit
        self.items: list[str] = []
        self._cursor = 0
        self._draft = ""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, list):
                self.items = [str(p) for p in data if isinstance(p, str) and p][-limit:]
        except (OSError, ValueError):
            pass
        self._cursor = len(self.items)

    def add(self, prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        if prompt in self.items:
            self.items.remove(prompt)
        self.items.append(prompt)
        self.items = self.items[-self.limit :]
        self._cursor = len(self.items)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.items, ensure_ascii=False, indent=0), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: history lives for this session only

    def previous(self, current: str) -> str | None:
        if self._cursor == len(self.items):
            self._draft = current
        if self._cursor == 0:
            return None
        self._cursor -= 1
        return self.items[self._cursor]

    def next(self) -> str | None:
        if self._cursor >= len(self.items):
            return None
        self._cursor += 1
        return self._draft if self._cursor == len(self.items) else self.items[self._cursor]

    def reset(self) -> None:
        self._cursor = len(self.items)


class HistoryInput(Input):
    """An Input whose up/down keys recall earlier prompts."""

    BINDINGS = [
        Binding(
            "up",
            "history_previous",
            "Earlier prompt",
            id="generate.history_previous",
            tooltip="Recall the previous prompt from the history",
            show=False,
        ),
        Binding(
            "down",
            "history_next",
            "Later prompt",
            id="generate.history_next",
            tooltip="Recall the next prompt from the history",
            show=False,
        ),
    ]

    def __init__(self, history: PromptHistory, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history

    def action_history_previous(self) -> None:
        value = self.history.previous(self.value)
        if value is not None:
            self.value = value
            self.cursor_position = len(value)

    def action_history_next(self) -> None:
        value = self.history.next()
        if value is not None:
            self.value = value
            self.cursor_position = len(value)


# -- the request ------------------------------------------------------------------------------


@dataclass
class GenerateRequest:
    source: str  # "final" | "ckpt:<step>" | "custom" | "lora"
    run_dir: Path | None
    model: str  # hub id / folder (custom) or the base model (lora)
    lora: str
    prompt: str
    negative_prompt: str
    num_images: str
    steps: str
    guidance: str
    seed: str
    scheduler: str


def _int_field(name: str, value: str, minimum: int | None = 1) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"{name}: a whole number, e.g. 4 (got {value!r})") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name}: at least {minimum} (got {number})")
    return number


def generate_args(req: GenerateRequest) -> list[str]:
    """The `python -m engine generate` arguments for a request (without --output-dir).

    Raises ValueError with one line naming the field and what would be valid."""
    args: list[str] = []
    if req.source == SOURCE_FINAL or req.source.startswith("ckpt:"):
        if req.run_dir is None:
            raise ValueError("model: no run is selected; pick a hub id / folder instead")
        args += ["--run", str(req.run_dir)]
        if req.source.startswith("ckpt:"):
            args += ["--checkpoint", req.source.removeprefix("ckpt:")]
    elif req.source == SOURCE_CUSTOM:
        if not req.model.strip():
            raise ValueError("model: type a hub id (user/name) or a local diffusers folder")
        args += ["--model", req.model.strip()]
    elif req.source == SOURCE_LORA:
        if not req.model.strip():
            raise ValueError("model: type the base model (hub id or folder) for the LoRA")
        if not req.lora.strip():
            raise ValueError("LoRA file: type the path of the .safetensors file")
        args += ["--model", req.model.strip(), "--lora", req.lora.strip()]
    else:
        raise ValueError("model: pick where the model comes from")
    if not req.prompt.strip():
        raise ValueError("prompt: type what the images should show")
    args += ["--prompt", req.prompt]
    if req.negative_prompt:
        args += ["--negative-prompt", req.negative_prompt]
    args += ["--num-images", str(_int_field("count", req.num_images))]
    args += ["--num-inference-steps", str(_int_field("steps", req.steps))]
    try:
        guidance = float(req.guidance.strip())
    except ValueError:
        raise ValueError(f"guidance: a number, e.g. 7.5 (got {req.guidance!r})") from None
    if guidance < 0:
        raise ValueError(f"guidance: 0 or more (got {guidance})")
    args += ["--guidance-scale", f"{guidance:g}"]
    if req.seed.strip():
        args += ["--seed", str(_int_field("seed", req.seed, minimum=0))]
    if req.scheduler not in EVAL_SCHEDULERS:
        raise ValueError(f"scheduler: one of {', '.join(EVAL_SCHEDULERS)}")
    args += ["--scheduler", req.scheduler]
    return args


def model_choices(run_dir: Path | None) -> list[tuple[str, str]]:
    """(label, value) for the model Select: the run's final model and checkpoints, then the
    free-form sources."""
    choices: list[tuple[str, str]] = []
    if run_dir is not None:
        # the run's start time names it in the picker: its whole id does not fit beside it
        name = run_dir.name[:15] if re.match(r"\d{8}-\d{6}", run_dir.name) else run_dir.name
        if (run_dir / "final").exists():
            choices.append((f"final model · {name}", SOURCE_FINAL))
        ckpt_dir = run_dir / "checkpoints"
        steps: list[int] = []
        if ckpt_dir.is_dir():
            for entry in ckpt_dir.iterdir():
                tail = entry.name.removeprefix("step-")
                if entry.is_dir() and tail.isdigit():
                    steps.append(int(tail))
        for step in sorted(steps, reverse=True):
            choices.append((f"checkpoint step {step} · {name}", f"ckpt:{step}"))
    choices.append(("hub id or local folder (type it)", SOURCE_CUSTOM))
    choices.append(("LoRA file on a base model (type both)", SOURCE_LORA))
    return choices


def newest_run_with_model(output_dir: Path) -> Path | None:
    """The newest run with a final model or a checkpoint (what a user generates from next)."""
    from engine.runs import list_runs

    for info in list_runs(output_dir):
        if (info.run_dir / "final").exists() or any((info.run_dir / "checkpoints").glob("step-*")):
            return info.run_dir
    return None


def output_dir_for(run_dir: Path | None, images_dir: str | Path = "images") -> Path:
    """A new <stamp> folder under runs.images_base (the rule `generate` follows too)."""
    base = images_base(run_dir, images_dir).absolute()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    candidate = base / stamp
    n = 2
    while candidate.exists():
        candidate = base / f"{stamp}-{n}"
        n += 1
    return candidate


# -- messages from workers ---------------------------------------------------------------------


class GenEvents(Message):
    def __init__(self, out_dir: Path, events: list[dict[str, Any]]) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.events = events


class GenDone(Message):
    def __init__(self, out_dir: Path, returncode: int | None, log: list[str]) -> None:
        super().__init__()
        self.out_dir = out_dir
        self.returncode = returncode
        self.log = log


class PushResult(Message):
    def __init__(self, repo: str, private: bool, dry_run: bool, returncode: int, output: str):
        super().__init__()
        self.repo = repo
        self.private = private
        self.dry_run = dry_run
        self.returncode = returncode
        self.output = output


# -- the screen -------------------------------------------------------------------------------


class GenerateScreen(Screen):
    CSS_PATH = "generate.tcss"
    AUTO_FOCUS = None
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding(
            "ctrl+g",
            "generate",
            "Generate",
            id="generate.run",
            priority=True,
            tooltip="Make images with these settings (also enter in the prompt)",
        ),
        Binding(
            "g",
            "generate",
            "Generate",
            id="generate.run_key",
            show=False,
            tooltip="Make images with these settings",
        ),
        Binding(
            "c",
            "cancel",
            "Cancel",
            id="generate.cancel",
            tooltip="Stop the generation that is running",
        ),
        Binding(
            "o",
            "open_image",
            "Open image",
            id="generate.open",
            tooltip="Show the selected (or newest) image large",
        ),
        Binding(
            "p",
            "push",
            "Push model",
            id="generate.push",
            tooltip="Push this run's model to the Hugging Face Hub (dry run first)",
        ),
        Binding(
            "slash", "focus_prompt", "Prompt", id="generate.focus_prompt", tooltip="Type a prompt"
        ),
        Binding(
            "escape",
            "blur",
            "Leave field",
            id="generate.blur",
            show=False,
            tooltip="Leave the text field, so single keys work again",
        ),
    ]

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.history = PromptHistory()
        self.proc: subprocess.Popen | None = None
        self.out_dir: Path | None = None
        self.made = 0
        self.expected = 0
        self._run_dir: Path | None = None
        self._pushing = False
        self._t0 = 0.0
        self._choices: list[tuple[str, str]] = []

    # -- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label("model", classes="label")
                yield Select(
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
                yield Input(
                    placeholder="what the images should not show", id="negative", compact=True
                )
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
                yield Select(
                    [(s, s) for s in EVAL_SCHEDULERS],
                    id="scheduler",
                    compact=True,
                    allow_blank=False,
                    value=EVAL_SCHEDULERS[0],
                )
        yield Static(id="gen-status", markup=False)
        yield Static(id="gen-error", markup=False)
        yield ImageGrid(
            id="images", rows=40, grow=True, empty="images appear here as they are made"
        )  # tiles as large as the images fit the space
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#images").border_title = "images"
        self._fill_defaults()
        self._sync_models()
        self._set_status(Text("ctrl+g (or g) generates · / types a prompt", style="dim"))

    def on_screen_resume(self) -> None:
        self._sync_models()

    def _state(self) -> Any:
        return getattr(self.app, "state", None)

    def _fill_defaults(self) -> None:
        cfg = getattr(self._state(), "config", None)
        if cfg is None:
            return
        ev = cfg.evaluation
        self.query_one("#count", Input).value = str(ev.num_images)
        self.query_one("#steps", Input).value = str(ev.num_inference_steps)
        self.query_one("#guidance", Input).value = f"{ev.guidance_scale:g}"
        self.query_one("#seed", Input).value = "" if ev.seed is None else str(ev.seed)
        self.query_one("#negative", Input).value = ev.negative_prompt or ""
        if ev.scheduler in EVAL_SCHEDULERS:
            self.query_one("#scheduler", Select).value = ev.scheduler
        if ev.prompts:
            self.query_one("#prompt", Input).value = ev.prompts[0]
        self.query_one("#model-id", Input).value = str(cfg.train.model)

    def _sync_models(self) -> None:
        """The model Select follows the app's run (final model and checkpoints); with none
        attached, the newest run under the output dir that has a model to offer."""
        state = self._state()
        run_dir = getattr(state, "run_dir", None)
        run_dir = Path(run_dir) if run_dir else None
        if run_dir is None and state is not None:
            run_dir = newest_run_with_model(state.runs_dir)
        choices = model_choices(run_dir)
        select = self.query_one("#model-source", Select)
        if run_dir == self._run_dir and choices == self._choices:
            return
        self._run_dir, self._choices = run_dir, choices
        current = select.value
        select.set_options(choices)
        values = [v for _, v in choices]
        select.value = current if current in values and run_dir is None else values[0]
        self.refresh_bindings()
        self._update_model_fields()

    @on(Select.Changed, "#model-source")
    def _update_model_fields(self) -> None:
        source = self.query_one("#model-source", Select).value
        self.query_one("#model-id").display = source in (SOURCE_CUSTOM, SOURCE_LORA)
        self.query_one("#lora-file").display = source == SOURCE_LORA

    # -- generating -----------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "generate":
            return not self.generating
        if action == "cancel":
            return self.generating
        if action == "push":
            return self._run_dir is not None and not self._pushing
        if action == "open_image":
            grids = self.query("#images")
            return bool(grids) and bool(grids.first(ImageGrid).items)
        return True

    def request(self) -> GenerateRequest:
        def value(selector: str) -> str:
            return self.query_one(selector, Input).value

        return GenerateRequest(
            source=str(self.query_one("#model-source", Select).value),
            run_dir=self._run_dir,
            model=value("#model-id"),
            lora=value("#lora-file"),
            prompt=value("#prompt"),
            negative_prompt=value("#negative"),
            num_images=value("#count"),
            steps=value("#steps"),
            guidance=value("#guidance"),
            seed=value("#seed"),
            scheduler=str(self.query_one("#scheduler", Select).value),
        )

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self) -> None:
        self.action_generate()

    def action_generate(self) -> None:
        if self.generating:
            return
        req = self.request()
        try:
            args = generate_args(req)
        except ValueError as exc:
            self._show_error(str(exc))
            self.notify(str(exc), title="Cannot generate", severity="error", markup=False)
            return
        self._show_error(None)
        self.history.add(req.prompt)
        state = self._state()
        config = getattr(state, "config", None)
        images_dir = config.evaluation.output_dir if config is not None else "images"
        run_dir = self._run_dir if req.source != SOURCE_CUSTOM else None
        out_dir = output_dir_for(run_dir, images_dir)
        try:
            proc = engine_client.start_generate(args, out_dir)
        except OSError as exc:
            self._show_error(f"could not start the generator: {exc}")
            return
        self.proc, self.out_dir = proc, out_dir
        self.made, self.expected = 0, int(req.num_images)
        self._t0 = time.monotonic()
        self.query_one("#images", ImageGrid).clear()
        self._set_status(Text(f"generating {self.expected} image(s)…", style="bold"))
        self.refresh_bindings()
        self._follow(proc, out_dir)

    @work(thread=True, exclusive=True, group="generate-follow", exit_on_error=False)
    def _follow(self, proc: subprocess.Popen, out_dir: Path) -> None:
        worker = get_current_worker()
        tail = EventTail(out_dir / EVENTS_FILE)
        while True:
            exited = proc.poll() is not None
            events = tail.poll()
            if events:
                self.post_message(GenEvents(out_dir, events))
            if any(e.get("type") == "finished" for e in events) or exited:
                break
            if worker.is_cancelled:
                proc.terminate()
                break
            time.sleep(POLL_S)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log = engine_client.log_tail(out_dir / engine_client.GENERATE_LOG) if code else []
        self.post_message(GenDone(out_dir, code, log))

    @on(GenEvents)
    def _on_gen_events(self, message: GenEvents) -> None:
        if message.out_dir != self.out_dir:
            return
        grid = self.query_one("#images", ImageGrid)
        for event in message.events:
            kind = event.get("type")
            if kind == "sample":
                paths = event.get("paths") or []
                seed = event.get("seed")
                prompt = str(event.get("prompt") or "")
                for rel in paths if isinstance(paths, list) else [paths]:
                    path = Path(rel) if Path(rel).is_absolute() else message.out_dir / rel
                    caption = f"seed {seed} · {prompt}" if seed is not None else prompt
                    grid.add_image(path, caption)
                    self.made += 1
                self._set_status(
                    Text(f"generating: {self.made}/{self.expected} made", style="bold")
                )
            elif kind == "phase" and self.made == 0:
                phase = str(event.get("name") or "").replace("_", " ")
                detail = str(event.get("detail") or "")
                self._set_status(Text(f"{phase}: {detail}…" if detail else f"{phase}…"))
            elif kind == "error":
                msg = f"{event.get('kind', 'error')}: {event.get('message', '')}"
                if event.get("hint"):
                    msg += f"\n→ {event['hint']}"
                self._show_error(msg)
            elif kind == "log" and str(event.get("level")) in ("warning", "error"):
                self.notify(str(event.get("message", "")), markup=False, severity="warning")
        self.refresh_bindings()

    @on(GenDone)
    def _on_gen_done(self, message: GenDone) -> None:
        if message.out_dir != self.out_dir:
            return
        took = time.monotonic() - self._t0
        self.proc = None
        if message.returncode == 0:
            text = Text(f"{self.made} image(s) in {took:.1f}s · ", style="bold")
            text.append(str(message.out_dir), style="dim")
            self._set_status(text)
        elif message.returncode is not None and message.returncode < 0:
            self._set_status(Text("cancelled", style="yellow"))
        else:
            tail = [line for line in message.log if line.strip()][-6:]
            self._show_error(
                f"the generator failed (exit {message.returncode})"
                + ("\n" + "\n".join(tail) if tail else "")
            )
            self._set_status(Text(f"failed · {self.made} image(s) made", style="red"))
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.generating and self.proc is not None:
            self.proc.terminate()
            self._set_status(Text("cancelling…", style="yellow"))

    def _set_status(self, text: Text) -> None:
        self.query_one("#gen-status", Static).update(text)

    def _show_error(self, message: str | None) -> None:
        panel = self.query_one("#gen-error", Static)
        panel.display = bool(message)
        panel.update(Text(message or ""))

    @on(ImageGrid.Changed)
    def _grid_changed(self) -> None:
        self.refresh_bindings()

    # -- other keys -----------------------------------------------------------------------------
    def action_open_image(self) -> None:
        self.query_one("#images", ImageGrid).open_selected()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_blur(self) -> None:
        self.set_focus(None)
        self.history.reset()

    # -- push to the Hub ------------------------------------------------------------------------
    def action_push(self) -> None:
        if self._run_dir is None:
            return
        cfg = getattr(self._state(), "config", None)
        repo = (cfg.hub.model_repo if cfg is not None else None) or ""
        private = bool(cfg.hub.private) if cfg is not None else True
        self.app.push_screen(
            PromptModal(
                "Push the model to the Hub",
                f"Repository id for {self._run_dir.name} (user/name). "
                "A dry run shows what would be uploaded first.",
                value=repo,
                placeholder="user/my-dreambooth-model",
                option="Private repository",
                option_value=private,
                validate=lambda v: None if "/" in v.strip("/") else "user/name, e.g. me/sks-dog",
                submit_label="Dry run",
            ),
            self._push_repo_chosen,
        )

    def _push_repo_chosen(self, answer: tuple[str, bool] | None) -> None:
        if not answer or self._run_dir is None:
            return
        repo, private = answer
        self._pushing = True
        self.refresh_bindings()
        self._set_status(Text(f"dry run: what would go to {repo}…"))
        self._push(self._run_dir, repo, private, dry_run=True)

    @work(thread=True, group="generate-push", exit_on_error=False)
    def _push(self, run_dir: Path, repo: str, private: bool, dry_run: bool) -> None:
        cmd = [sys.executable, "-m", "engine", "push-model", str(run_dir), repo]
        if private:
            cmd.append("--private")
        if dry_run:
            cmd.append("--dry-run")
        worker = get_current_worker()
        try:  # polled: quitting the app stops the upload instead of waiting up to an hour for it
            code, output = run_polled(
                cmd,
                lambda: worker.is_cancelled,
                env=engine_client.engine_env(),
                timeout_s=3600,
            )
            output = redact(output.strip())  # the engine masks tokens too; never show one
        except OSError as exc:
            output, code = str(exc), 1
        if worker.is_cancelled:
            return
        self.post_message(PushResult(repo, private, dry_run, code, output))

    @on(PushResult)
    def _on_push_result(self, message: PushResult) -> None:
        lines = message.output.splitlines()
        if message.returncode != 0:
            self._pushing = False
            self.refresh_bindings()
            last = next((ln for ln in reversed(lines) if ln.strip()), "failed")
            self._show_error(f"push-model{' --dry-run' if message.dry_run else ''}: {last}")
            self._set_status(Text("push failed", style="red"))
            return
        if not message.dry_run:
            self._pushing = False
            self.refresh_bindings()
            self._set_status(Text(f"pushed to {message.repo}", style="bold green"))
            self.notify(
                lines[-1] if lines else f"pushed to {message.repo}", title="Hub", markup=False
            )
            return
        listing = "\n".join(lines[-25:]) or "(nothing listed)"
        self._set_status(Text(f"dry run done for {message.repo}"))

        def answered(choice: str | None) -> None:
            if choice == "push" and self._run_dir is not None:
                self._set_status(Text(f"pushing to {message.repo}…", style="bold"))
                self._push(self._run_dir, message.repo, message.private, dry_run=False)
            else:
                self._pushing = False
                self.refresh_bindings()

        self.app.push_screen(
            ChoiceModal(
                f"Push to {message.repo}?",
                Text(f"The dry run would upload:\n{listing}"),
                [
                    Choice("push", "Push for real", key="p", variant="warning"),
                    Choice("cancel", "Cancel", key="c"),
                ],
                default="cancel",
                cancel="cancel",
            ),
            answered,
        )
