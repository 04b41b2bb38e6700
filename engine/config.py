"""The typed config (pydantic v2) and its YAML file: load, validate, save, and the tutorial importer.

The file format is DESIGN.md's "Config" section: three sections, ``train`` (required),
``evaluation`` and ``hub`` (both optional). Files in the tutorial's own format (top level
``train_params:`` / ``eval_params:``) load too, translated to this format.

Every problem is reported as one :class:`ConfigError` whose text is a single line naming the file,
the key path, what is wrong and what would be valid, e.g.::

    demo.yaml: train.learnig_rate: unknown key; did you mean 'learning_rate'?

This module is imported by the TUI, so it must stay light: stdlib, pydantic and ruamel.yaml only
(no torch, diffusers, transformers, accelerate, datasets or textual).
"""

from __future__ import annotations

import copy
import difflib
import io
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from engine.config_rules import rule_problems
from engine.errors import DreamboothError
from engine.sources import BUILTIN_TINY, has_hub_id_form, is_builtin, is_local_path

__all__ = [
    "BUILTIN_TINY",
    "Config",
    "ConfigError",
    "EvaluationConfig",
    "FIELD_GROUPS",
    "HubConfig",
    "LR_SCHEDULERS",
    "TrainConfig",
    "check_paths",
    "config_to_dict",
    "dump_config",
    "is_local_path",
    "load_config",
    "parse_config_text",
    "read_config",
    "save_config",
    "summary",
    "validate_value",
]

#: The schedulers of ``diffusers.optimization`` (hard-coded: this module must not import diffusers).
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "piecewise_constant",
)
METHODS = ("full", "lora")
OPTIMIZERS = ("adamw", "adamw8bit")
MIXED_PRECISIONS = ("no", "fp16", "bf16")
EVAL_SCHEDULERS = ("dpmpp_2m", "euler_a", "ddim", "pndm")

SECTIONS = ("train", "evaluation", "hub")
TUTORIAL_SECTIONS = ("train_params", "eval_params")

_REQUIRED_EXAMPLES = {
    "model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "instance_data": "./my-dog",
    "instance_prompt": "a photo of sks dog",
}


# --------------------------------------------------------------------------------------------
# errors


class ConfigError(DreamboothError):
    """A config problem (kind "config", exit 2). ``str(e)`` is one line:
    ``<file>: <key.path>: <problem>; <fix>``.

    ``file`` is the config file as the user named it (or None), ``key`` the dotted key path in the
    file's own format (or None for file-level problems), ``line`` the 1-based line where known,
    ``problem`` the message without the file and key prefix. ``more`` holds the further problems
    found in the same file (each a ConfigError), in file order; ``str(e)`` names only the first.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        more: list[ConfigError] | None = None,
    ) -> None:
        self.problem = " ".join(str(problem).split("\n")).strip()
        self.file = file
        self.key = key
        self.line = line
        self.more: list[ConfigError] = list(more or [])
        super().__init__(self._text(), kind="config", exit_code=2)

    def _text(self) -> str:
        parts: list[str] = []  # joined below into one line, whatever a key or file name holds
        if self.file:
            parts.append(self.file)
        if self.key:
            parts.append(self.key)
        elif self.line is not None:
            parts.append(f"line {self.line}")
        parts.append(self.problem)
        return " ".join(": ".join(parts).splitlines())

    def __str__(self) -> str:
        return self._text()


def _show(value: Any) -> str:
    """A value as the user would have written it in YAML, for 'got ...' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


# --------------------------------------------------------------------------------------------
# field types: each raises ValueError with the exact message the user will read


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"expected an integer, got {_show(v)}")
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d+\s*", v):
        return int(v)
    raise ValueError(f"expected an integer, got {_show(v)}")


def _as_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {_show(v)}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {_show(v)}") from None
    else:
        raise ValueError(f"expected a number, got {_show(v)}")
    if not math.isfinite(f):
        raise ValueError(f"expected a finite number, got {_show(v)}")
    return f


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def _as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {_show(v)}")


def _as_str(v: Any) -> str:
    if isinstance(v, str):
        return str(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise ValueError(f"expected text, got {_show(v)}")


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        return None if v is None else conv(v)

    return inner


def _choice(choices: tuple[str, ...], *, false_means: str | None = None) -> Callable[[Any], str]:
    def inner(v: Any) -> str:
        if v is False and false_means is not None:
            return false_means  # YAML 1.1 reads an unquoted `no` as false
        if isinstance(v, str) and v.strip().lower() in choices:
            return v.strip().lower()
        raise ValueError(f"must be one of {', '.join(choices)}; got {_show(v)}")

    return inner


def _gt(bound: float) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        if v is not None and not v > bound:
            raise ValueError(f"must be > {bound:g}, got {_show(v)}")
        return v

    return inner


def _ge(bound: float) -> Callable[[Any], Any]:
    def inner(v: Any) -> Any:
        if v is not None and not v >= bound:
            raise ValueError(f"must be >= {bound:g}, got {_show(v)}")
        return v

    return inner


def _multiple_of_8(v: int | None) -> int | None:
    if v is not None and (v < 8 or v % 8):
        lo, hi = max(8, v // 8 * 8), max(8, -(-v // 8) * 8)
        hint = f"e.g. {lo}" if lo == hi else f"e.g. {lo} or {hi}"
        raise ValueError(f"must be a positive multiple of 8, got {_show(v)}; {hint}")
    return v


def _prompt_list(v: Any) -> list[str]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"expected a list of prompts (or one prompt), got {_show(v)}")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise ValueError(f"item {i + 1}: expected a prompt (text), got {_show(item)}")
        out.append(str(item))
    if not out:
        raise ValueError("needs at least one prompt; e.g. ['a photo of sks dog on the beach']")
    return out


def _nonempty(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v


def _as_opt_str(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None  # "" clears an optional text
    return _as_str(v)


Str = Annotated[str, BeforeValidator(_as_str)]  # may be empty
Text = Annotated[str, BeforeValidator(_as_str), AfterValidator(_nonempty)]
OptStr = Annotated[str | None, BeforeValidator(_as_opt_str)]
Bool = Annotated[bool, BeforeValidator(_as_bool)]
Int = Annotated[int, BeforeValidator(_as_int)]
PosInt = Annotated[int, BeforeValidator(_as_int), AfterValidator(_ge(1))]
NonNegInt = Annotated[int, BeforeValidator(_as_int), AfterValidator(_ge(0))]
OptPosInt = Annotated[int | None, BeforeValidator(_optional(_as_int)), AfterValidator(_ge(1))]
PosFloat = Annotated[float, BeforeValidator(_as_float), AfterValidator(_gt(0))]
NonNegFloat = Annotated[float, BeforeValidator(_as_float), AfterValidator(_ge(0))]
OptPosFloat = Annotated[float | None, BeforeValidator(_optional(_as_float)), AfterValidator(_gt(0))]
Resolution = Annotated[int, BeforeValidator(_as_int), AfterValidator(_multiple_of_8)]
OptSize = Annotated[int | None, BeforeValidator(_optional(_as_int)), AfterValidator(_multiple_of_8)]


def _enum(choices: tuple[str, ...], **kw: Any) -> Any:
    return Annotated[Literal[choices], BeforeValidator(_choice(choices, **kw))]  # type: ignore[valid-type]


Method = _enum(METHODS)
Optimizer = _enum(OPTIMIZERS)
MixedPrecision = _enum(MIXED_PRECISIONS, false_means="no")
LrScheduler = _enum(LR_SCHEDULERS)
EvalScheduler = _enum(EVAL_SCHEDULERS)
Prompts = Annotated[list[str], BeforeValidator(_prompt_list)]


# --------------------------------------------------------------------------------------------
# the schema (field order = the order of DESIGN.md, which is the order files are written in)


DEFAULT_LEARNING_RATES = {"full": 5.0e-6, "lora": 1.0e-4}

# Keys earlier versions wrote (run directories keep their config.yaml): accepted and ignored.
RETIRED_KEYS = {
    ("train", "dataloader_num_workers"): "images are decoded once into memory",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrainConfig(_Section):
    """The ``train:`` section."""

    @model_validator(mode="before")
    @classmethod
    def _default_learning_rate(cls, data: Any) -> Any:
        """An unset learning rate follows the method: 5e-6 full fine-tune, 1e-4 LoRA."""
        if isinstance(data, dict) and data.get("learning_rate") is None:
            method = str(data.get("method") or "full").lower()
            if method in ("full", "lora"):
                data = {**data, "learning_rate": DEFAULT_LEARNING_RATES[method]}
        return data

    model: Text = Field(
        description="Base model: a hub id, a local diffusers folder, builtin:tiny or builtin:tiny-sdxl."
    )
    revision: OptStr = Field(None, description="Hub revision (branch, tag or commit) of the model.")
    instance_data: Text = Field(
        description="Your concept's images: a folder, a hub dataset id, or builtin:tiny."
    )
    instance_prompt: Text = Field(
        description="Prompt naming your concept with a rare token, e.g. 'a photo of sks dog'."
    )
    captions: Bool = Field(
        False, description="Use per-image .txt captions, where present, instead of the prompt."
    )
    prior_preservation: Bool = Field(
        False, description="Also train on class images so the class keeps its general look."
    )
    class_data: OptStr = Field(
        None, description="Folder of class images, filled up to num_class_images by generating."
    )
    class_prompt: Text = Field(
        "a photo of dog", description="Prompt for the class images (the class, no rare token)."
    )
    num_class_images: PosInt = Field(
        100, description="How many class images prior preservation uses."
    )
    sample_batch_size: PosInt = Field(4, description="Batch size when generating class images.")
    prior_loss_weight: NonNegFloat = Field(
        1.0, description="Weight of the class-image (prior) loss."
    )
    resolution: Resolution = Field(
        512, description="Training image size in pixels (a multiple of 8)."
    )
    center_crop: Bool = Field(
        True, description="Crop images at the centre (false: at a random place)."
    )
    random_flip: Bool = Field(False, description="Flip images left-right at random.")
    shuffle: Bool = Field(True, description="Shuffle the training images every epoch.")
    method: Method = Field(
        "full", description="full: fine-tune all UNet weights; lora: train small adapters."
    )
    lora_rank: PosInt = Field(4, description="LoRA rank (adapter size); used by method lora.")
    lora_alpha: PosInt = Field(4, description="LoRA alpha; the update is scaled by alpha / rank.")
    train_text_encoder: Bool = Field(
        False, description="Fine-tune the text encoder too (more memory, often better faces)."
    )
    max_train_steps: PosInt = Field(400, description="Number of optimizer updates to train for.")
    train_batch_size: PosInt = Field(1, description="Images per batch on each GPU.")
    gradient_accumulation_steps: PosInt = Field(
        1, description="Batches added up before each optimizer update."
    )
    learning_rate: PosFloat = Field(
        5.0e-6,
        description="Learning rate of the optimizer (when unset: 5e-6 for full, 1e-4 for lora).",
    )
    lr_scheduler: LrScheduler = Field(
        "constant", description="How the learning rate changes over training."
    )
    lr_warmup_steps: NonNegInt = Field(
        0, description="Updates over which the learning rate ramps up from 0."
    )
    lr_num_cycles: PosInt = Field(
        1, description="Restarts of cosine_with_restarts (its number of cosine cycles)."
    )
    lr_power: PosFloat = Field(1.0, description="Power of the polynomial decay (1.0: linear).")
    lr_step_rules: OptStr = Field(
        None,
        description="piecewise_constant's rules, e.g. '1:100,0.1:300,0.01' (x1 before step "
        "100, x0.1 before 300, then x0.01).",
    )
    optimizer: Optimizer = Field(
        "adamw", description="adamw, or adamw8bit (bitsandbytes, less memory, CUDA only)."
    )
    max_grad_norm: PosFloat = Field(1.0, description="Gradients are clipped to this norm.")
    mixed_precision: MixedPrecision = Field(
        "no", description="no (fp32), fp16 or bf16 mixed precision."
    )
    gradient_checkpointing: Bool = Field(
        False, description="Recompute activations in the backward pass: less memory, slower."
    )
    cache_latents: Bool = Field(
        True, description="Encode images and frozen text embeddings once, before training."
    )
    torch_compile: Bool = Field(
        False,
        description="torch.compile the UNet's repeated blocks: the first step compiles (cached "
        "for later runs of the same model and shapes), then faster steps.",
    )
    snr_gamma: OptPosFloat = Field(
        None, description="Min-SNR loss weighting gamma (5.0 is usual); null: off."
    )
    offset_noise: NonNegFloat = Field(
        0.0, description="Offset noise strength (0.1 helps very dark/bright images); 0: off."
    )
    seed: NonNegInt = Field(42, description="Random seed for training.")
    checkpointing_steps: PosInt = Field(
        500, description="Save a resumable checkpoint every N updates."
    )
    checkpoints_total_limit: OptPosInt = Field(
        2, description="Keep at most this many checkpoints (null: keep all)."
    )
    validation_steps: PosInt = Field(
        100, description="Generate sample images from evaluation.prompts every N updates."
    )
    num_processes: PosInt = Field(
        1, description="GPUs to train on; more than 1 launches through accelerate."
    )
    output_dir: Text = Field("runs", description="Folder that holds the run directories.")
    run_name: OptStr = Field(
        None, description="Name used in the run id (default: from the instance prompt)."
    )


class EvaluationConfig(_Section):
    """The ``evaluation:`` section: sample images during training, and generation defaults."""

    prompts: Prompts = Field(
        default_factory=lambda: ["a photo of sks dog on the beach"],
        description="Prompts for the sample images (a list, or one prompt).",
    )
    negative_prompt: Str = Field("", description="What the images should not show.")
    num_images: PosInt = Field(4, description="Images per prompt.")
    num_inference_steps: PosInt = Field(25, description="Denoising steps per image.")
    guidance_scale: NonNegFloat = Field(
        7.5, description="How strongly images follow the prompt (1: no guidance)."
    )
    seed: NonNegInt = Field(0, description="Random seed for sampling (same seed, same images).")
    scheduler: EvalScheduler = Field(
        "dpmpp_2m", description="Sampler: dpmpp_2m, euler_a, ddim or pndm."
    )
    height: OptSize = Field(
        None, description="Image height, a multiple of 8 (null: the training resolution)."
    )
    width: OptSize = Field(
        None, description="Image width, a multiple of 8 (null: the training resolution)."
    )
    output_dir: Text = Field("images", description="Folder for images made by generate.")


class HubConfig(_Section):
    """The ``hub:`` section. The token is never stored here: it comes from HF_TOKEN or the login."""

    model_repo: OptStr = Field(
        None, description="Hub repo id to push the trained model to, e.g. 'you/sks-dog'."
    )
    dataset_repo: OptStr = Field(
        None, description="Hub dataset repo id to push the instance images to."
    )
    private: Bool = Field(True, description="Create the hub repos as private.")


class Config(BaseModel):
    """A whole config file: ``train`` (required), ``evaluation`` and ``hub``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    train: TrainConfig = Field(description="What to train on and how.")
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="Sample images and generation settings."
    )
    hub: HubConfig = Field(default_factory=HubConfig, description="Hugging Face Hub repos.")


SECTION_MODELS: dict[str, type[_Section]] = {
    "train": TrainConfig,
    "evaluation": EvaluationConfig,
    "hub": HubConfig,
}

#: The groups of the config form, in order; together they name every field exactly once.
FIELD_GROUPS: dict[str, list[tuple[str, str]]] = {
    "Model and data": [
        ("train", k)
        for k in (
            "model",
            "revision",
            "instance_data",
            "instance_prompt",
            "captions",
            "resolution",
            "center_crop",
            "random_flip",
            "shuffle",
        )
    ],
    "Method": [
        ("train", k)
        for k in (
            "method",
            "lora_rank",
            "lora_alpha",
            "train_text_encoder",
            "prior_preservation",
            "class_data",
            "class_prompt",
            "num_class_images",
            "sample_batch_size",
            "prior_loss_weight",
        )
    ],
    "Optimisation": [
        ("train", k)
        for k in (
            "max_train_steps",
            "train_batch_size",
            "gradient_accumulation_steps",
            "learning_rate",
            "lr_scheduler",
            "lr_warmup_steps",
            "lr_num_cycles",
            "lr_power",
            "lr_step_rules",
            "optimizer",
            "max_grad_norm",
            "snr_gamma",
            "offset_noise",
            "seed",
        )
    ],
    "Memory": [
        ("train", k)
        for k in (
            "mixed_precision",
            "gradient_checkpointing",
            "cache_latents",
            "torch_compile",
            "num_processes",
        )
    ],
    "Sampling and checkpoints": [
        ("train", k)
        for k in (
            "validation_steps",
            "checkpointing_steps",
            "checkpoints_total_limit",
            "output_dir",
            "run_name",
        )
    ],
    "Evaluation": [("evaluation", k) for k in EvaluationConfig.model_fields],
    "Hub": [("hub", k) for k in HubConfig.model_fields],
}


# --------------------------------------------------------------------------------------------
# YAML


def _yaml_rt() -> YAML:
    y = YAML()  # round trip, YAML 1.2: `no` is the string "no", 5e-6 is a float
    y.preserve_quotes = True
    y.allow_duplicate_keys = False
    y.width = 4096
    y.representer.add_representer(
        type(None), lambda r, d: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    y.representer.add_representer(
        float, lambda r, d: r.represent_scalar("tag:yaml.org,2002:float", _float_text(d))
    )
    return y


def _float_text(value: float) -> str:
    """5e-06 -> '5.0e-6', 0.5 -> '0.5', 2.0 -> '2.0': floats that YAML 1.1 readers read too."""
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
    elif "." not in text:
        text += ".0"
    return text


def _yaml_error(exc: YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    m = re.search(r'found duplicate key "(.*?)"', str(problem))
    if m:
        return ConfigError(f"duplicate key '{m.group(1)}'", file=source, line=line)
    return ConfigError(f"YAML syntax error: {problem}", file=source, line=line)


# A config is ~60 values. These bounds keep a hostile or broken file (deep nesting, an alias
# "billion laughs", a self-referencing alias) to one error line instead of a RecursionError or
# gigabytes of memory.
MAX_DEPTH = 32
MAX_VALUES = 20_000
MAX_FILE_BYTES = 1 << 20


def _flow_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text``, brackets in quotes and comments included (an
    over-estimate is fine: it only has to bound what the YAML scanner, slow on deep flow
    nesting, is given)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def _load_yaml(text: str, source: str) -> Any:
    if _flow_depth(text) > MAX_DEPTH:
        raise ConfigError(
            f"nested too deeply; a config is at most {MAX_DEPTH} levels deep", file=source
        )
    try:
        tree = _yaml_rt().load(text)
    except MarkedYAMLError as exc:
        raise _yaml_error(exc, source) from None
    except YAMLError as exc:  # unmarked, rare
        raise ConfigError(f"YAML error: {exc}", file=source) from None
    except RecursionError:
        raise ConfigError(
            f"nested too deeply; a config is at most {MAX_DEPTH} levels deep", file=source
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(
            f"a value cannot be read: {' '.join(str(exc).split())}", file=source
        ) from None
    _check_size(tree, source)
    return tree


def _check_size(tree: Any, source: str) -> None:
    """Refuse a tree deeper than MAX_DEPTH or with more than MAX_VALUES values once its aliases
    are expanded (walked without recursion, stopping at the first bound crossed)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(
                f"too large: more than {MAX_VALUES} values (counting what its aliases repeat)",
                file=source,
            )
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"nested too deeply (or an alias contains itself); a config is at most "
                f"{MAX_DEPTH} levels deep",
                file=source,
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node if isinstance(k, (tuple, list)))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


def _plain(node: Any) -> Any:
    """ruamel's round-trip types -> plain Python (dict, list, str, int, float, bool, None)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _line_of(tree: Any, loc: tuple) -> int | None:
    """1-based line of the deepest part of ``loc`` found in the round-trip tree."""
    line = None
    node = tree
    for part in loc:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                return line
        except (AttributeError, KeyError, TypeError, IndexError):
            return line
    return line


def _deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# pydantic errors -> one-line ConfigErrors


def _did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:
        close = [v for v in valid if key.lower() in v.lower() or v.lower() in key.lower()][:1]
    return f"did you mean '{close[0]}'?" if close else ""


def _unknown_key_message(key: str, valid: list[str], what: str = "key") -> str:
    hint = _did_you_mean(key, valid)
    if hint:
        return f"unknown {what}; {hint}"
    if len(valid) <= 12:
        return f"unknown {what}; valid: {', '.join(valid)}"
    return f"unknown {what}; the valid keys are listed in sample_configs/sd15-full.yaml"


def _fields_at(prefix: tuple) -> list[str]:
    """The valid keys inside the mapping at ``prefix`` (() is the top level)."""
    if not prefix:
        return list(SECTIONS)
    model = SECTION_MODELS.get(str(prefix[0]))
    return list(model.model_fields) if model else []


def _message_for(err: dict) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    value = err.get("input")
    if kind == "missing":
        if len(loc) == 1:
            return "required section; it needs model, instance_data and instance_prompt"
        example = _REQUIRED_EXAMPLES.get(str(loc[-1]))
        return f"required; e.g. '{example}'" if example else "required"
    if kind == "extra_forbidden":
        what = "section" if len(loc) == 1 else "key"
        return _unknown_key_message(str(loc[-1]), _fields_at(loc[:-1]), what)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if value is None:
            if loc == ("train",):
                return "is empty; it needs model, instance_data and instance_prompt"
            return "is empty; remove the line or give it keys"
        return f"expected a section of keys, got {_show(value)}"
    if kind == "value_error":
        ctx = err.get("ctx") or {}
        return str(ctx.get("error", err.get("msg", "invalid value")))
    if kind == "literal_error":
        return f"{err.get('msg', 'invalid choice')}; got {_show(value)}"
    return f"{err.get('msg', 'invalid value')}, got {_show(value)}"


def _loc_text(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _errors_from_validation(
    exc: ValidationError,
    source: str,
    tree: Any,
    key_map: Callable[[tuple], tuple] | None = None,
) -> ConfigError:
    found: list[tuple[float, int, ConfigError]] = []
    for i, err in enumerate(exc.errors(include_url=False)):
        loc = tuple(err["loc"])
        shown = key_map(loc) if key_map else loc
        line = _line_of(tree, shown)
        if err["type"] == "missing":
            line = None  # a missing key has no line: after everything that is in the file
        ce = ConfigError(_message_for(err), file=source, key=_loc_text(shown), line=line)
        found.append((line if line is not None else math.inf, i, ce))
    found.sort(key=lambda t: (t[0], t[1]))
    first = found[0][2]
    first.more = [t[2] for t in found[1:]]
    return first


# --------------------------------------------------------------------------------------------
# the tutorial format (train_params / eval_params)

# tutorial key -> (section, key) of this app's format; None: accepted, unused
_TUTORIAL_TRAIN: dict[str, tuple[str, str] | None] = {
    "stable_diffusion_backbone": ("train", "model"),
    "feature_extractor": None,
    "hugging_face_image_store": ("train", "instance_data"),
    "learning_rate": ("train", "learning_rate"),
    "max_train_steps": ("train", "max_train_steps"),
    "resolution": ("train", "resolution"),
    "train_bs": ("train", "train_batch_size"),
    "grad_accum_steps": ("train", "gradient_accumulation_steps"),
    "max_gradient_norm": ("train", "max_grad_norm"),
    "sample_batch_size": ("train", "sample_batch_size"),
    "model_checkpoint_name": ("train", "run_name"),
    "random_shuffle_train_set": ("train", "shuffle"),
    "use_8bit_optimizer": ("train", "optimizer"),
    "concept_name": ("train", "instance_prompt"),
    "item_type": ("train", "instance_prompt"),
}
_TUTORIAL_EVAL: dict[str, tuple[str, str] | None] = {
    "image_save_path": ("evaluation", "output_dir"),
    "eval_prompt": ("evaluation", "prompts"),
    # not in the tutorial's file (its eval script hard-codes them), accepted as a convenience
    "num_inference_steps": ("evaluation", "num_inference_steps"),
    "guidance_scale": ("evaluation", "guidance_scale"),
}
_TUTORIAL_REQUIRED = {
    "stable_diffusion_backbone": "CompVis/stable-diffusion-v1-4",
    "hugging_face_image_store": "you/my-concept-images",
    "concept_name": "sks",
    "item_type": "dog",
}


def is_tutorial_format(data: Any) -> bool:
    """True for a mapping whose top level has ``train_params`` or ``eval_params``."""
    return isinstance(data, dict) and any(k in data for k in TUTORIAL_SECTIONS)


def _translate_tutorial(tree: Any, source: str) -> tuple[dict, dict[tuple, tuple], list[str]]:
    """Tutorial mapping -> (this app's dict, map of our key path -> tutorial key path, warnings)."""
    data = _plain(tree)
    errors: list[ConfigError] = []

    def err(problem: str, loc: tuple) -> None:
        errors.append(
            ConfigError(problem, file=source, key=_loc_text(loc), line=_line_of(tree, loc))
        )

    mixed = [k for k in data if k in SECTIONS]
    if mixed:
        err(
            "mixes this app's format with the tutorial format (train_params/eval_params); "
            "use one of them",
            (mixed[0],),
        )
    for k in data:
        if k not in TUTORIAL_SECTIONS and k not in SECTIONS:
            err(_unknown_key_message(str(k), list(TUTORIAL_SECTIONS), "section"), (k,))

    out: dict[str, dict] = {"train": {}, "evaluation": {}}
    key_map: dict[tuple, tuple] = {}
    warnings: list[str] = []
    sections = (("train_params", _TUTORIAL_TRAIN), ("eval_params", _TUTORIAL_EVAL))
    for name, table in sections:
        section = data.get(name)
        if section is None:
            if name == "train_params":
                err(
                    "required section; it needs stable_diffusion_backbone, "
                    "hugging_face_image_store, concept_name and item_type",
                    (name,),
                )
            continue
        if not isinstance(section, dict):
            err(f"expected a section of keys, got {_show(section)}", (name,))
            continue
        for key, value in section.items():
            if key not in table:
                err(_unknown_key_message(str(key), list(table), "key"), (name, key))
                continue
            target = table[key]
            if target is None:
                warnings.append(
                    f"{source}: {name}.{key}: accepted, unused; this app takes the feature "
                    "extractor (if any) from the model"
                )
                continue
            sec, field = target
            if key in ("concept_name", "item_type"):
                continue  # combined below
            if key == "use_8bit_optimizer":
                try:
                    value = "adamw8bit" if _as_bool(value) else "adamw"
                except ValueError as exc:
                    err(str(exc), (name, key))
                    continue
            out[sec][field] = value
            key_map[(sec, field)] = (name, key)

    train = data.get("train_params")
    if isinstance(train, dict):
        for key, example in _TUTORIAL_REQUIRED.items():
            if train.get(key) is None:
                errors.append(
                    ConfigError(
                        f"required; e.g. '{example}'", file=source, key=f"train_params.{key}"
                    )
                )
        concept, item = train.get("concept_name"), train.get("item_type")
        for key, value in (("concept_name", concept), ("item_type", item)):
            if value is not None and (isinstance(value, (bool, dict, list, float))):
                err(f"expected text, got {_show(value)}", ("train_params", key))
        if concept is not None and item is not None:
            # the tutorial builds its instance prompt exactly like this
            out["train"]["instance_prompt"] = f"a photo of {concept} {item}"
            key_map[("train", "instance_prompt")] = ("train_params", "concept_name")
            out["train"]["class_prompt"] = f"a photo of {item}"  # the class, without the token
            key_map[("train", "class_prompt")] = ("train_params", "item_type")
        if "prompts" not in out["evaluation"] and "instance_prompt" in out["train"]:
            out["evaluation"]["prompts"] = [out["train"]["instance_prompt"]]

    if errors:
        errors.sort(key=lambda e: e.line if e.line is not None else math.inf)
        first = errors[0]
        first.more = errors[1:]
        raise first
    return out, key_map, warnings


# --------------------------------------------------------------------------------------------
# loading


def _validate(
    data: dict,
    source: str,
    tree: Any,
    key_map: dict[tuple, tuple] | None = None,
) -> Config:
    def mapped(loc: tuple) -> tuple:
        if key_map:
            for n in range(len(loc), 0, -1):
                if loc[:n] in key_map:
                    return key_map[loc[:n]] + loc[n:]
        return loc

    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise _errors_from_validation(exc, source, tree, mapped) from None
    for rule in rule_problems(cfg.train):  # the rules between keys: the first one broken
        raise ConfigError(
            rule.problem,
            file=source,
            key=rule.key,
            line=_line_of(tree, mapped(tuple(rule.near.split(".")))),
        )
    return cfg


def parse_config_text(
    text: str, source: str = "<text>", overrides: dict | None = None
) -> tuple[Config, list[str]]:
    """Parse config YAML text (either format). Returns (config, warnings); raises ConfigError.

    ``overrides`` is a nested dict in this app's format, e.g. ``{"train": {"max_train_steps": 3}}``,
    merged over the file before validation.
    """
    tree = _load_yaml(text, source)
    if tree is None:
        raise ConfigError(
            "the file is empty; it needs a 'train:' section with model, instance_data and "
            "instance_prompt (see sample_configs/demo.yaml)",
            file=source,
        )
    if not isinstance(tree, dict):
        raise ConfigError(
            f"expected a mapping with a 'train:' section at the top level, got {_show(_plain(tree))}"
            " (see sample_configs/demo.yaml)",
            file=source,
        )
    warnings: list[str] = []
    key_map: dict[tuple, tuple] | None = None
    if is_tutorial_format(tree):
        data, key_map, warnings = _translate_tutorial(tree, source)
    else:
        data = _plain(tree)
        train = data.get("train")
        if isinstance(train, dict) and train.get("mixed_precision") is False:
            warnings.append(
                f'{source}: train.mixed_precision: read false as "no"; write "no" in quotes'
            )
        for (section, key), why in RETIRED_KEYS.items():
            if isinstance(data.get(section), dict) and key in data[section]:
                del data[section][key]  # an older run's config must still load
                warnings.append(f"{source}: {section}.{key}: no longer used ({why}); ignored")
    if overrides:
        data = _deep_merge(data, overrides)
    return _validate(data, source, tree, key_map), warnings


def read_config(path: str | Path, overrides: dict | None = None) -> tuple[Config, list[str]]:
    """Load a config file (either format). Returns (config, warnings); raises ConfigError."""
    source = str(path)
    try:
        size = Path(path).expanduser().stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(
                f"too large for a config ({size} bytes, at most {MAX_FILE_BYTES}); is it the "
                "right file?",
                file=source,
            )
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=source) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a config file", file=source) from None
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text; is it a YAML file?", file=source) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=source) from None
    return parse_config_text(text, source, overrides)


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Load a config file (either format); raises ConfigError. See :func:`read_config`."""
    return read_config(path, overrides)[0]


def config_to_dict(cfg: Config) -> dict:
    """The config as a plain, JSON-able dict in this app's format (DESIGN order)."""
    return cfg.model_dump(mode="json")


# --------------------------------------------------------------------------------------------
# saving

_YAML11_WORDS = {"yes", "no", "on", "off", "y", "n", "true", "false", "null", "~", ""}


def _yaml_value(value: Any, old: Any = None) -> Any:
    """A plain value, styled for ruamel: quote strings a YAML 1.1 reader would misread."""
    if isinstance(value, str):
        if isinstance(old, SingleQuotedScalarString):
            return SingleQuotedScalarString(value)
        if isinstance(old, DoubleQuotedScalarString) or value.strip().lower() in _YAML11_WORDS:
            return DoubleQuotedScalarString(value)
        if _needs_quotes(value):
            return DoubleQuotedScalarString(value)
        return value
    if isinstance(value, list):
        seq = CommentedSeq(_yaml_value(v) for v in value)
        if all(isinstance(v, str) and len(v) < 60 for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _needs_quotes(value: str) -> bool:
    """Strings that would load back as something else (numbers, dates...) get quotes."""
    try:
        loaded = YAML(typ="safe", pure=True).load(value)
    except YAMLError:
        return True
    return loaded != value


def _same(old: Any, new: Any) -> bool:
    """Whether a template value already equals the new value (7 and 7.0 are the same)."""
    p = _plain(old)
    numbers = (int, float)
    if (
        isinstance(p, numbers)
        and isinstance(new, numbers)
        and not isinstance(p, bool)
        and not isinstance(new, bool)
    ):
        return p == new
    return type(p) is type(new) and p == new


def _set_value(section: CommentedMap, key: str, value: Any) -> None:
    old = section[key]
    if _same(old, value):
        return  # untouched: keeps its formatting (5.0e-6 stays 5.0e-6)
    if isinstance(old, CommentedSeq) and isinstance(value, list):
        old[:] = [_yaml_value(v) for v in value]  # keeps flow/block style and comments
        return
    section[key] = _yaml_value(value, old)


def _insert_after(section: CommentedMap, after: str | None, key: str, value: Any) -> None:
    """Insert ``key`` after ``after`` (None: first), moving comment lines that followed ``after``."""
    keys = list(section.keys())
    pos = keys.index(after) + 1 if after in keys else 0
    section.insert(pos, key, _yaml_value(value))
    if after not in keys:
        return
    slot = section.ca.items.get(after)
    if not slot or len(slot) < 3 or slot[2] is None:
        return
    token = slot[2]
    text = token.value
    first, sep, rest = text.partition("\n")
    if not sep or not rest:
        return  # only an end-of-line comment: it stays with `after`
    # `first` is after's end-of-line comment; `rest` is full-line comments that belonged below it
    if first.strip():
        token.value = first + "\n"
    else:
        slot[2] = None
    moved = copy.copy(token)
    moved.value = "\n" + rest
    new_slot = section.ca.items.setdefault(key, [None, None, None, None])
    new_slot[2] = moved


def _detect_indent(text: str) -> tuple[int, int, int]:
    """The (mapping, sequence, offset) indentation ruamel should use to match the template."""
    mapping, offset = 2, 2
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in lines if re.match(r"^ +[^\s-][^:]*:", ln)]
    if indents:
        mapping = min(i for i in indents if i > 0)
    for prev, ln in zip(lines, lines[1:], strict=False):
        m = re.match(r"^( *)- ", ln)
        if m and prev.rstrip().endswith(":"):
            offset = max(0, len(m.group(1)) - (len(prev) - len(prev.lstrip(" "))))
            break
    return mapping, offset + 2, offset


_HEADER = (
    "dreambooth-tui config: train (required), evaluation and hub.\n"
    "Keys as in diffusers' DreamBooth script; see sample_configs/sd15-full.yaml for comments."
)
_CONVERTED = (
    "Converted from the tutorial format (train_params/eval_params) to dreambooth-tui's\n"
    "format; the original file's comments were not carried over."
)


def _dump_plain(data: dict, header: str) -> str:
    tree = CommentedMap()
    for section, values in data.items():
        sec = CommentedMap()
        for k, v in values.items():
            sec[k] = _yaml_value(v)
        tree[section] = sec
    tree.yaml_set_start_comment(header)
    y = _yaml_rt()
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def dump_config(cfg: Config, template_text: str | None = None) -> str:
    """The config as YAML text.

    With ``template_text`` (the user's file, this app's format) comments, key order and formatting
    are kept: values of the keys present are replaced, absent keys whose value differs from the
    default are added to their section, nothing else changes. A tutorial-format template is
    converted to this app's format (with a comment at the top saying so). Without a template (or
    with one that does not parse): every key, in DESIGN order.
    """
    data = config_to_dict(cfg)
    tree = None
    if template_text is not None and template_text.strip():
        try:
            tree = _yaml_rt().load(template_text)
        except YAMLError:
            tree = None
    if tree is not None and is_tutorial_format(tree):
        return _dump_plain(data, _CONVERTED)
    if not isinstance(tree, CommentedMap):
        return _dump_plain(data, _HEADER)

    indent = _detect_indent(template_text or "")
    defaults = {name: config_to_dict(_default_config_for(cfg))[name] for name in SECTIONS}
    for name in SECTIONS:
        values = data[name]
        section = tree.get(name)
        if not isinstance(section, CommentedMap):
            if name == "train":
                changed = values  # an unusable train section is replaced whole
            else:
                changed = {k: v for k, v in values.items() if v != defaults[name][k]}
            if not changed:
                continue
            new = CommentedMap()
            for k, v in changed.items():
                new[k] = _yaml_value(v)
            if name in tree:
                tree[name] = new
            else:
                previous = [s for s in SECTIONS[: SECTIONS.index(name)] if s in tree]
                _insert_after(tree, previous[-1] if previous else None, name, None)
                tree[name] = new
            continue
        order = list(values)
        for i, key in enumerate(order):
            if key in section:
                _set_value(section, key, values[key])
            elif values[key] != defaults[name][key]:
                before = [k for k in order[:i] if k in section]
                after = before[-1] if before else None
                if after is None and len(section):
                    # no earlier key present: put it first
                    section.insert(0, key, _yaml_value(values[key]))
                else:
                    _insert_after(section, after, key, values[key])
    y = _yaml_rt()
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def _default_config_for(cfg: Config) -> Config:
    """A config with cfg's required values and every other key at its default."""
    t = cfg.train
    return Config(
        train=TrainConfig(
            model=t.model, instance_data=t.instance_data, instance_prompt=t.instance_prompt
        )
    )


def save_config(cfg: Config, path: str | Path, template_text: str | None = None) -> None:
    """Write the config to ``path`` atomically (temp file + os.replace).

    If ``template_text`` is None and ``path`` exists, the existing file is the template, so its
    comments and layout survive.
    """
    path = Path(path).expanduser()
    if template_text is None and path.is_file():
        try:
            template_text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            template_text = None
    text = dump_config(cfg, template_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            try:
                os.chmod(tmp, path.stat().st_mode & 0o777)
            except OSError:
                pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------------------------
# paths


def _local(value: str) -> Path:
    return Path(os.path.expanduser(value))


def check_paths(cfg: Config, source: str | None = None) -> None:
    """Check the local paths of a config (no network: hub ids are only checked for their form).

    Raises ConfigError for: a local model path that is missing or is not a diffusers pipeline
    folder (no model_index.json); local instance_data missing or not a folder; prior preservation
    without class_data (or class_data that is a file). ``builtin:tiny`` passes.
    """
    t = cfg.train

    def fail(key: str, problem: str) -> None:
        raise ConfigError(problem, file=source, key=key)

    if not is_builtin(t.model):
        if is_local_path(t.model):
            p = _local(t.model)
            if not p.exists():
                fail(
                    "train.model",
                    f"local model folder not found: {t.model!r}; give an existing diffusers "
                    "folder, or a hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5'",
                )
            if not p.is_dir() or not (p / "model_index.json").is_file():
                fail(
                    "train.model",
                    f"{t.model!r} is not a diffusers pipeline folder (no model_index.json); "
                    "give the folder that holds model_index.json, or a hub id",
                )
        elif not has_hub_id_form(t.model):
            fail(
                "train.model",
                f"{t.model!r} is neither an existing path nor a hub id; local paths start "
                "with ./ or /, hub ids look like 'owner/name'",
            )
    if t.instance_data != BUILTIN_TINY:
        if is_local_path(t.instance_data):
            p = _local(t.instance_data)
            if not p.exists():
                fail(
                    "train.instance_data",
                    f"image folder not found: {t.instance_data!r}; give a folder of images "
                    "or a hub dataset id",
                )
            if not p.is_dir():
                fail(
                    "train.instance_data",
                    f"{t.instance_data!r} is not a folder; give the folder that holds the images",
                )
        elif not has_hub_id_form(t.instance_data):
            fail(
                "train.instance_data",
                f"{t.instance_data!r} is neither an existing folder nor a hub dataset id; local "
                "paths start with ./ or /, hub ids look like 'owner/name'",
            )
    if t.prior_preservation:
        if not t.class_data:
            fail(
                "train.class_data",
                "required when prior_preservation is true; e.g. './class-dog' "
                "(a folder, filled up with generated class images)",
            )
        p = _local(t.class_data)
        if p.exists() and not p.is_dir():
            fail(
                "train.class_data",
                f"{t.class_data!r} is a file; give a folder (it is created if missing)",
            )


# --------------------------------------------------------------------------------------------
# the form: one field at a time

_PLACEHOLDERS = {"model": "x", "instance_data": "x", "instance_prompt": "x"}
_YAML_SAFE = YAML(typ="safe", pure=True)


def _is_text_field(section: str, key: str) -> bool:
    ann = SECTION_MODELS[section].model_fields[key].annotation
    return ann in (str, str | None)


def validate_value(section: str, key: str, raw: str) -> tuple[object, str | None]:
    """Parse what a user typed into one form field and validate it against that field.

    Returns ``(value, None)`` or ``(None, "one-line error naming what is valid")``. Text fields
    take the text as typed (quotes optional; ``null`` or nothing clears an optional one); other
    fields read it as a YAML scalar or flow list (``[a, b]``); nothing typed means null.
    """
    model = SECTION_MODELS.get(section)
    if model is None:
        return None, f"unknown section {section!r}; valid: {', '.join(SECTIONS)}"
    field = model.model_fields.get(key)
    if field is None:
        return None, _unknown_key_message(key, list(model.model_fields))
    text = (raw or "").strip()
    value: Any
    if _is_text_field(section, key):
        optional = field.annotation is not str
        if optional and text.lower() in ("", "null", "~"):
            value = None
        elif len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            try:
                value = _YAML_SAFE.load(text)
            except YAMLError:
                value = text
        else:
            value = text
    elif text == "":
        value = None
    else:
        try:
            value = _YAML_SAFE.load(text)
        except YAMLError:
            value = text
        if key == "prompts" and not isinstance(value, (list, str)):
            value = text  # "a photo: dog" is one prompt, not a mapping
    data: dict[str, Any] = dict(_PLACEHOLDERS) if section == "train" else {}
    data[key] = value
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = next((e for e in errors if e["loc"] and e["loc"][0] == key), errors[0])
        message = _message_for(err)
        if text == "":
            message = re.sub(r", got null$", "", message)
            return None, (
                "a value is required"
                if message == "must not be empty"
                else f"a value is required; {message}"
            )
        return None, message
    return getattr(obj, key), None


# --------------------------------------------------------------------------------------------
# summary


def summary(cfg: Config, num_images: int | None = None) -> str:
    """One line describing the run, e.g. '5 images · 400 steps · effective batch 1 (1×1×1 GPU) ·
    full fine-tune · fp32 · prior preservation off'."""
    t = cfg.train
    parts = []
    if num_images is not None:
        parts.append(f"{num_images} image{'' if num_images == 1 else 's'}")
    parts.append(f"{t.max_train_steps} step{'' if t.max_train_steps == 1 else 's'}")
    effective = t.train_batch_size * t.gradient_accumulation_steps * t.num_processes
    gpus = "GPU" if t.num_processes == 1 else "GPUs"
    parts.append(
        f"effective batch {effective} "
        f"({t.train_batch_size}×{t.gradient_accumulation_steps}×{t.num_processes} {gpus})"
    )
    if t.method == "lora":
        parts.append(f"LoRA rank {t.lora_rank}")
    else:
        parts.append("full fine-tune")
    if t.train_text_encoder:
        parts.append("+ text encoder")
    parts.append("fp32" if t.mixed_precision == "no" else f"{t.mixed_precision} mixed")
    if t.prior_preservation:
        parts.append(f"prior preservation on ({t.num_class_images} class images)")
    else:
        parts.append("prior preservation off")
    return " · ".join(parts)
