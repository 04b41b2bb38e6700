"""Loading a ready pipeline for a Source: device, dtype, hub errors, checkpoint and LoRA weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.generate.errors import GenerateError, usage_error
from engine.generate.source import Source, resolve_model, resolve_source

if TYPE_CHECKING:
    from engine.families import ModelFamily


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_device(device: str) -> str:
    """`device` if this machine has it, else a one-line usage error (exit 2) saying which it
    has: torch's own errors are an AssertionError for CUDA on a CPU build, and a list of every
    device type torch knows for a typo."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise usage_error(
            f"--device '{device}' is not a device", "use cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise usage_error(
                f"--device {device}: this machine has no CUDA GPU", "use --device cpu"
            )
        if dev.index is not None and dev.index >= count:
            raise usage_error(
                f"--device {device}: this machine has {count} CUDA GPU(s)",
                f"use cuda:0 to cuda:{count - 1}",
            )
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and not (mps and mps.is_available()):
        raise usage_error(f"--device {device}: this machine has no MPS device", "use --device cpu")
    return device


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
        raise usage_error(f"unknown dtype '{value}'; choose fp32, fp16 or bf16") from None


def _hub_error(model_id: str, exc: BaseException) -> GenerateError:
    """Why a hub model could not be loaded, in one line."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    from engine.hub.client import causes

    chain = causes(exc)
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
    """A ready pipeline of the model's family on ``device`` (default: the GPU if any).

    ``model``: a hub id, a local diffusers folder or ``builtin:tiny`` (with ``run_dir``: the base
    model, default the run's ``train.model``). ``lora``: a LoRA safetensors file (or a folder
    holding pytorch_lora_weights.safetensors). ``run_dir``: a training run; its final model, or
    with ``checkpoint`` (a step or "latest") that checkpoint. Half precision and SDPA attention on
    a GPU, fp32 on the CPU. Raises GenerateError.
    """
    return load_source(resolve_source(model, lora, run_dir, checkpoint), device, dtype)


def load_source(source: Source, device: str | None = None, dtype: Any = None):
    """The pipeline ``source`` names, its checkpoint or LoRA weights on top, on ``device``."""
    import torch

    from engine.families import loading_family

    device = device or default_device()
    family = loading_family(resolve_model(source.pipeline))
    pipe = _from_pretrained(source, _dtype(dtype) or default_dtype(device), family)
    if source.checkpoint_dir is not None and source.method != "lora":
        _load_full_checkpoint(pipe, source.checkpoint_dir, family.trained_module_names)
    if source.lora is not None:
        _apply_lora(pipe, source.lora, source.model)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    if device.startswith("cuda"):
        # SDPA attention: diffusers' default processor on torch 2 (AttnProcessor2_0).
        torch.backends.cuda.matmul.allow_tf32 = True
    return pipe


def _from_pretrained(source: Source, dtype: Any, family: ModelFamily):
    """The base pipeline (its family's class), quietly: a failure is one GenerateError line."""
    from diffusers.utils import logging as dlogging

    pipeline = resolve_model(source.pipeline)
    dtype_kwarg = {_dtype_kwarg_name(): dtype}
    previous = dlogging.get_verbosity()
    bars = dlogging.is_progress_bar_enabled()
    dlogging.set_verbosity_error()  # "Couldn't connect to the Hub..." is said once, by us
    dlogging.disable_progress_bar()
    _transformers_bars(False)
    try:
        return family.pipeline_class().from_pretrained(
            pipeline, **dtype_kwarg, **family.generate_extras
        )
    except OSError as exc:
        if Path(pipeline).exists():
            raise GenerateError(
                f"cannot load the model folder '{source.pipeline}' ({exc})", kind="config"
            ) from exc
        raise _hub_error(source.pipeline, exc) from exc
    except Exception as exc:
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError

        if isinstance(exc, HFValidationError):
            raise usage_error(
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


def _apply_lora(pipe, lora: Path, model: str) -> None:
    """Put a LoRA file's weights into the pipeline (diffusers' load_lora_weights)."""
    try:
        pipe.load_lora_weights(str(lora.parent), weight_name=lora.name)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise GenerateError(
            f"cannot apply the LoRA '{lora}' to '{model}' ({exc})",
            kind="config",
            hint="was it trained on this base model?",
        ) from exc
    # peft makes the adapters' dropout modules in training mode: a file whose metadata names a
    # lora_dropout would otherwise make every image noisy (and each one differently).
    for module in pipe.components.values():
        if hasattr(module, "eval") and hasattr(module, "parameters"):
            module.eval()


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


def _load_full_checkpoint(pipe, ckpt: Path, names: tuple[str, ...]) -> None:
    """Put a full fine-tune checkpoint's trained weights (`names`: "unet" first, then the text
    encoders, as the model's family trains them) into the base pipeline: their EMA where the run
    kept one (the weights its samples and final/ use, engine.training.ema)."""
    from safetensors.torch import load_file

    for name in names:
        module = getattr(pipe, name)
        path = ckpt / f"ema-{name}.safetensors"
        if not path.exists():
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
