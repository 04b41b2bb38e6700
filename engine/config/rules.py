"""The rules between config keys (one key's value limits another's), in one place.

`engine.config` applies them to every config it loads (file, raw YAML, overrides), and the app's
form applies them to the whole form before it saves or uses it, so a config that breaks one is
refused the same way everywhere: one line naming the key and the fix.

Torch-free: the app imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Schedulers that have no warmup in diffusers.optimization.get_scheduler (it is ignored there).
NO_WARMUP_SCHEDULERS = ("constant", "piecewise_constant")
#: get_scheduler's polynomial decay ends at this learning rate (and refuses a smaller start).
POLYNOMIAL_LR_END = 1e-7
#: How `lr_step_rules` is written, for the messages that ask for it.
STEP_RULES_EXAMPLE = (
    "e.g. '1:100,0.1:300,0.01' (x1 before step 100, x0.1 before step 300, then x0.01)"
)
#: Prior preservation without class_data (this rule, and `check_paths` for a config built in code).
CLASS_DATA_REQUIRED = (
    "required when prior_preservation is true; e.g. './class-dog' "
    "(a folder, filled up with generated class images)"
)


@dataclass(frozen=True)
class RuleProblem:
    """A broken rule: `key` is the dotted key to fix, `problem` the one-line text, `near` the
    key whose line the message points at in the file (often the same)."""

    key: str
    problem: str
    near: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


def parse_step_rules(text: str) -> list[tuple[float, int]] | str:
    """`lr_step_rules` in diffusers' format ("1:100,0.1:300,0.01": x1 before step 100, x0.1
    before step 300, x0.01 after) as [(multiplier, step), ..., (last, -1)], or a problem."""
    parts = [p.strip() for p in str(text).split(",")]
    rules: list[tuple[float, int]] = []
    try:
        for part in parts[:-1]:
            mult, _, step = part.partition(":")
            rules.append((float(mult), int(step)))
        last = float(parts[-1])
    except ValueError:
        return f"{text!r} is not a list of multiplier:step rules ending in a multiplier, {STEP_RULES_EXAMPLE}"
    steps = [s for _, s in rules]
    if any(s < 1 for s in steps) or steps != sorted(set(steps)):
        return f"{text!r}: the steps must be whole numbers >= 1, in increasing order"
    if any(m < 0 for m, _ in rules) or last < 0:
        return f"{text!r}: the multipliers must be >= 0"
    return [*rules, (last, -1)]


def rule_problems(train: Any) -> list[RuleProblem]:
    """Every cross-key rule a `train` section (a TrainConfig) breaks, in form order."""
    out: list[RuleProblem] = []
    if train.prior_preservation and not train.class_data:
        out.append(RuleProblem("train.class_data", CLASS_DATA_REQUIRED, "train.prior_preservation"))
    rules = getattr(train, "lr_step_rules", None)
    if train.lr_scheduler == "piecewise_constant" and not rules:
        out.append(
            RuleProblem(
                "train.lr_step_rules",
                f"required when lr_scheduler is piecewise_constant; {STEP_RULES_EXAMPLE}",
                "train.lr_scheduler",
            )
        )
    elif rules:
        parsed = parse_step_rules(rules)
        if isinstance(parsed, str):
            out.append(RuleProblem("train.lr_step_rules", parsed, "train.lr_step_rules"))
    if train.lr_warmup_steps and train.lr_scheduler in NO_WARMUP_SCHEDULERS:
        out.append(
            RuleProblem(
                "train.lr_warmup_steps",
                f"{train.lr_scheduler} has no warmup (it would be ignored); set lr_scheduler: "
                "constant_with_warmup (or another scheduler), or lr_warmup_steps: 0",
                "train.lr_warmup_steps",
            )
        )
    if "kohya" in (getattr(train, "export", None) or []) and train.method != "lora":
        out.append(
            RuleProblem(
                "train.export",
                "kohya is a LoRA format and method is full; use single-file (A1111, ComfyUI), "
                "or method: lora",
                "train.export",
            )
        )
    if getattr(train, "text_encoder_lr", None) is not None and not train.train_text_encoder:
        out.append(
            RuleProblem(
                "train.text_encoder_lr",
                "has no effect while train_text_encoder is false; set train_text_encoder: true, "
                "or text_encoder_lr: null",
                "train.text_encoder_lr",
            )
        )
    te_lr = getattr(train, "text_encoder_lr", None)
    if train.optimizer == "prodigy" and te_lr is not None and te_lr != train.learning_rate:
        out.append(
            RuleProblem(
                "train.text_encoder_lr",
                "prodigy takes one learning rate for every parameter (it finds the step size "
                "itself); set text_encoder_lr: null, or optimizer: adamw",
                "train.text_encoder_lr",
            )
        )
    if "kohya" in (getattr(train, "export", None) or []) and getattr(train, "use_dora", False):
        out.append(
            RuleProblem(
                "train.export",
                "kohya cannot hold a DoRA (use_dora: true); use single-file (the LoRA fused "
                "into its base), or use_dora: false",
                "train.export",
            )
        )
    if train.lr_scheduler == "polynomial" and train.learning_rate <= POLYNOMIAL_LR_END:
        out.append(
            RuleProblem(
                "train.learning_rate",
                f"polynomial decays to {POLYNOMIAL_LR_END:g}, so the learning rate must be "
                "larger; raise it or pick another lr_scheduler",
                "train.learning_rate",
            )
        )
    return out


#: Prodigy's learning_rate multiplies the step size it finds: outside this range, a warning.
PRODIGY_LR_RANGE = (0.1, 10.0)


def rule_warnings(train: Any) -> list[RuleProblem]:
    """Settings that train but are probably not what was meant (a warning line each)."""
    out: list[RuleProblem] = []
    lo, hi = PRODIGY_LR_RANGE
    if train.optimizer == "prodigy" and not lo <= train.learning_rate <= hi:
        out.append(
            RuleProblem(
                "train.learning_rate",
                f"{train.learning_rate:g} with optimizer prodigy, which finds its own step size "
                "and multiplies it by learning_rate: 1.0 is recommended (0.5-2 when tuning); "
                "a value meant for AdamW makes it far too small or too large",
                "train.learning_rate",
            )
        )
    return out
