"""What a valid config still cannot do on this machine, found before any model loads.

`dreambooth-tui check` and `train` run `preflight` after the config file validates, and the
engine runs it again as it starts (the app starts the engine directly), so whatever `check`
accepts trains, and whatever cannot work here is refused in one line (exit 2) naming the key and
the fix: mixed precision the device lacks, an optimizer its library cannot run (or
not installed), more processes than GPUs, torch.compile without a compiler, a train.report_to
tracker not installed, and a base model of a family the engine does not
train (read from its model_index.json alone, see engine/model_family.py).

torch and bitsandbytes are imported only when a check needs them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from engine.config.errors import ConfigError
from engine.config.schema import Config


def cpu_only_torch() -> bool:
    """True when the installed torch is a CPU-only build (its version ends in `+cpu`): no GPU
    can be used, so the checks need not import torch to ask."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch").endswith("+cpu")
    except PackageNotFoundError:
        return False


@dataclass(frozen=True)
class Machine:
    """What the checks need to know about this machine."""

    cuda: bool
    gpus: int
    bf16_on_gpu: bool

    @classmethod
    def here(cls) -> Machine:
        if cpu_only_torch():
            return cls(cuda=False, gpus=0, bf16_on_gpu=False)  # without importing torch (~1.5 s)
        import torch

        cuda = torch.cuda.is_available()
        return cls(
            cuda=cuda,
            gpus=torch.cuda.device_count() if cuda else 0,
            bf16_on_gpu=bool(cuda and torch.cuda.is_bf16_supported()),
        )


def device_problems(cfg: Config, machine: Machine) -> list[tuple[str, str]]:
    """(key, problem) for each setting this machine cannot run."""
    t = cfg.train
    out: list[tuple[str, str]] = []
    if t.mixed_precision == "fp16" and not machine.cuda:
        out.append(
            (
                "train.mixed_precision",
                "fp16 needs a CUDA GPU (there is none here); set bf16 (works on CPUs, slowly) "
                'or "no"',
            )
        )
    if t.mixed_precision == "bf16" and machine.cuda and not machine.bf16_on_gpu:
        out.append(
            (
                "train.mixed_precision",
                'bf16 is not supported by this GPU (it needs Ampere or newer); set fp16 or "no"',
            )
        )
    if t.num_processes > 1 and machine.cuda and t.num_processes > machine.gpus:
        out.append(
            (
                "train.num_processes",
                f"{t.num_processes} processes but {machine.gpus} GPU"
                f"{'' if machine.gpus == 1 else 's'} here; set at most {machine.gpus}",
            )
        )
    if t.optimizer == "adamw8bit":
        problem = _bitsandbytes_problem()
        if problem:
            out.append(("train.optimizer", f"adamw8bit {problem}; set adamw"))
    if t.report_to != "none" and not _installed(t.report_to):
        out.append(
            (
                "train.report_to",
                f"{t.report_to} is not installed; pip install {t.report_to} (or pip install "
                f"'dreambooth-tui[logging]'), or set report_to: none",
            )
        )
    if t.optimizer == "prodigy" and not _installed("prodigyopt"):
        out.append(
            (
                "train.optimizer",
                "prodigy needs the prodigyopt package, which is not installed here; "
                "pip install prodigyopt, or set adamw",
            )
        )
    if t.torch_compile and not machine.cuda and not _has_compiler():
        out.append(
            (
                "train.torch_compile",
                "torch.compile on a CPU needs a C/C++ compiler (none found: cc, gcc, clang); "
                "install one or set torch_compile: false",
            )
        )
    return out


def _bitsandbytes_problem() -> str | None:
    try:
        import bitsandbytes as bnb

        bnb.optim.AdamW8bit  # noqa: B018  (the class is what the engine builds)
    except Exception as exc:  # not installed, or no build for this device
        return f"is not available here (bitsandbytes: {exc.__class__.__name__}: {exc})"
    return None


def _installed(package: str) -> bool:
    """Whether `package` can be imported here (found, not imported: check stays quick)."""
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _has_compiler() -> bool:
    return any(shutil.which(cc) for cc in ("cc", "gcc", "clang", "g++", "c++"))


def model_problem(cfg: Config) -> tuple[str, str, str] | None:
    """(key, problem, kind) when the base model cannot be trained here, or not as the config
    asks; kind is "config" or "network" (its model_index.json could not be read)."""
    from engine.families import family_of
    from engine.model_family import ModelIndexError, check_model

    tc = cfg.train
    try:
        check_model(tc.model, tc.revision)
        family_of(tc.model, tc.revision)
    except ModelIndexError as exc:
        return ("train.model", str(exc), exc.kind)
    return None


def preflight(cfg: Config, source: str | None = None, machine: Machine | None = None) -> None:
    """Raise ConfigError (one line: file, key, problem and fix) for the first thing in `cfg` this
    machine cannot train; the device is checked before the model (no network for a config that
    fails anyway)."""
    machine = machine or Machine.here()
    problems = device_problems(cfg, machine)
    if problems:
        key, problem = problems[0]
        raise ConfigError(problem, file=source, key=key)
    found = model_problem(cfg)
    if found:
        key, problem, _kind = found
        raise ConfigError(problem, file=source, key=key)
