"""Sample now, the Train screen's `n`: a dialog for the prompt, then a request the live engine
takes at its next step (engine.sample_request); the samples arrive as `sample` events and show
with the others. Everything the user typed is shown and sent literally."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.suggester import SuggestFromList

from engine.sample_request import request_samples
from tui.widgets.modals import PromptModal

SHOWN_PROMPTS = 3  # the config's prompts listed in the dialog (then "and N more")


def validation_prompts(config: dict[str, Any]) -> list[str]:
    """evaluation.prompts of a run's config (its run_started event), as strings."""
    prompts = (config.get("evaluation") or {}).get("prompts") or []
    return [str(p) for p in prompts] if isinstance(prompts, list) else []


def dialog_text(prompts: list[str]) -> str:
    lines = ["Samples at the run's next step; training goes on.", ""]
    if prompts:
        lines.append("Prompt (empty: the config's validation prompts):")
        lines += [f"  · {p}" for p in prompts[:SHOWN_PROMPTS]]
        if len(prompts) > SHOWN_PROMPTS:
            lines.append(f"  and {len(prompts) - SHOWN_PROMPTS} more")
    else:
        lines.append("Prompt (the config has no validation prompts):")
    return "\n".join(lines)


def sample_now_dialog(config: dict[str, Any]) -> PromptModal:
    """The dialog: one prompt, empty for the config's; Tab completes a config prompt."""
    prompts = validation_prompts(config)
    return PromptModal(
        "Sample now",
        dialog_text(prompts),
        placeholder="the config's prompts" if prompts else "a prompt",
        validate=None if prompts else (lambda v: None if v else "type a prompt"),
        submit_label="Sample",
        suggester=SuggestFromList(prompts, case_sensitive=False) if prompts else None,
    )


def send_request(run_dir: Path, prompt: str) -> str:
    """Write the request (SampleRequestError where the run is not live); what to tell the user."""
    request_samples(run_dir, [prompt] if prompt else [])
    what = "the config's prompts" if not prompt else "your prompt"
    return f"Asked for samples with {what}: they come at the next step"


def sample_answer(run_dir: Path, prompt: str) -> tuple[str, str]:
    """Sends the request: what to tell the user and its severity (the error, where it failed)."""
    try:
        return send_request(run_dir, prompt), "information"
    except Exception as exc:  # shown to the user, never a crash
        return str(exc), "error"
