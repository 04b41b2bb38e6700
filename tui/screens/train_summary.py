"""What the Train screen would start: the config's essentials as literal text."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tui.widgets.loss_plot import fmt_value

__all__ = ["config_summary"]


def config_summary(state: Any) -> Text:
    """What `s` would start: the config's essentials, literal."""
    text = Text()
    cfg = getattr(state, "config", None)
    path = getattr(state, "config_path", None)
    error = getattr(state, "config_error", None)
    text.append("Config  ", style="bold")
    text.append(str(path) if path else "(not saved to a file)", style="")
    text.append("\n")
    if error:
        text.append("\n" + str(error) + "\n", style="red")
    if cfg is None:
        text.append("\nNo config loaded: open one on the Config screen (2).\n", style="yellow")
        return text
    t, e = cfg.train, cfg.evaluation
    rows = [
        ("model", str(t.model)),
        ("data", str(t.instance_data)),
        ("prompt", str(t.instance_prompt)),
        ("method", f"{t.method}" + (f" (rank {t.lora_rank})" if t.method == "lora" else "")),
        (
            "steps",
            f"{t.max_train_steps} × batch {t.train_batch_size}×{t.gradient_accumulation_steps}"
            f" · lr {fmt_value(float(t.learning_rate))} · precision {t.mixed_precision}",
        ),
        (
            "samples",
            f"every {t.validation_steps} steps{' and at step 0' if t.validation_at_start else ''}"
            f" · {len(e.prompts)} prompt(s) × {e.num_images}",
        ),
        ("output", str(t.output_dir)),
    ]
    for label, value in rows:
        text.append(f"\n{label:<9}", style="dim")
        text.append(value)
    return text
