"""Setting a run up: the accelerator, the models (loaded, then made ready to train), the
optimizer and its learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from engine.config import Config
from engine.config.checks import Machine, device_problems, model_problem
from engine.events import EventWriter
from engine.families import SD, Components, ModelFamily, ModelLoadError, family_of
from engine.families.lora import LoraSpec
from engine.runs import CONFIG_FILE
from engine.training.context import RunContext, StopSignal
from engine.training.errors import EngineError
from engine.training.optimizers import make_optimizer


def make_context(
    run_dir: Path, cfg: Config, events: EventWriter, is_main: bool, stop: StopSignal
) -> RunContext:
    """Refuse what this machine cannot run (as `check` does), then the accelerator and seed."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    from engine.launch import SHARDED_REFUSAL, sharded_mode_in_env

    tc = cfg.train
    sharded = sharded_mode_in_env()
    if sharded:
        raise EngineError(
            "config", f"{sharded} {SHARDED_REFUSAL}", "start the run without it", exit_code=2
        )
    cuda = torch.cuda.is_available()
    for key, problem in device_problems(cfg, Machine.here()):  # as `check` refuses them
        fix = problem.rpartition("; ")[2]
        raise EngineError("config", f"{CONFIG_FILE}: {key}: {problem}", fix, exit_code=2)
    # A fresh state per run: the engine may run more than once in one process (tests).
    AcceleratorState._reset_state(reset_partial_state=True)
    acc = Accelerator(mixed_precision=tc.mixed_precision, cpu=not cuda)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
        tc.mixed_precision, torch.float32
    )
    set_seed(tc.seed)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return RunContext(run_dir, cfg, acc, acc.device, weight_dtype, events, is_main, stop)


@dataclass
class Models:
    """The pipeline parts of a run; the trained ones are replaced by their prepared (wrapped,
    compiled) versions as the set-up goes on."""

    components: Components  # as loaded: tokenizer, schedulers, where they came from
    unet: torch.nn.Module
    vae: torch.nn.Module
    train_te: bool  # the text encoders are trained (every one of the family's)
    #: The trained text encoders by pipeline name, as the run holds them (prepared): all of the
    #: family's with train_text_encoder (SD: text_encoder; SDXL: text_encoder, text_encoder_2),
    #: else none.
    trained_tes: dict[str, torch.nn.Module] = field(default_factory=dict)
    offloaded: bool = False  # the frozen encoders wait on the CPU between uses (cached latents)
    ema: Any = None  # engine.training.ema.Ema: the trained weights' average (train.ema_decay)

    @property
    def tokenizer(self) -> Any:
        return self.components.tokenizer

    @property
    def noise_scheduler(self) -> Any:
        return self.components.noise_scheduler

    @property
    def family(self) -> ModelFamily:
        return self.components.family or SD

    @property
    def text_encoder(self) -> torch.nn.Module:
        """The first text encoder, as the run holds it (SD 1.x/2.x has only this one)."""
        return next(iter(self.text_encoders().values()))

    def trained_text_encoders(self, accelerator: Any) -> dict[str, torch.nn.Module]:
        """The text encoders a run trains, unwrapped (none unless train_text_encoder)."""
        return {n: accelerator.unwrap_model(m) for n, m in self.trained_tes.items()}

    def text_encoders(self, unwrap: Any = None) -> dict[str, torch.nn.Module]:
        """The family's text encoders by pipeline name, the trained ones as the run holds them
        (prepared; `unwrap`: accelerator.unwrap_model to take them out of their wrappers)."""
        trained = {n: unwrap(m) if unwrap else m for n, m in self.trained_tes.items()}
        return {**self.components.text_encoders, **trained}

    def trained_modules(self) -> list[torch.nn.Module]:
        """The modules the optimizer updates: the UNet, then the trained text encoders."""
        return [self.unet, *self.trained_tes.values()]

    def frozen_encoders(self) -> list[torch.nn.Module]:
        """The modules that only encode: the VAE, and the text encoders unless trained."""
        return [self.vae] + ([] if self.train_te else list(self.text_encoders().values()))

    def parts(self, unwrap: Any = None) -> Components:
        """The loaded parts with the run's own modules (prepared, or unwrapped by `unwrap`):
        what the family encodes prompts with and builds pipelines from."""
        unet = unwrap(self.unet) if unwrap else self.unet
        return replace(
            self.components, unet=unet, vae=self.vae, text_encoders=self.text_encoders(unwrap)
        )


def load_models(cfg: Config) -> Components:
    """The base model's parts, loaded by its family (a model that cannot be used: an
    EngineError)."""
    tc = cfg.train
    found = model_problem(cfg)  # model_index.json only: before any weights load
    if found:
        key, problem, kind = found
        raise EngineError(
            kind, f"{CONFIG_FILE}: {key}: {problem}", "", 2 if kind == "config" else 1
        )
    try:
        return family_of(tc.model, tc.revision).load(tc.model, tc.revision)
    except ModelLoadError as exc:
        code = 2 if exc.kind == "config" else 1
        raise EngineError(exc.kind, str(exc), exc.hint, code) from exc


def ready_to_train(c: Components, cfg: Config, device: torch.device, weight_dtype) -> Models:
    """Frozen parts in the weight dtype on the device, LoRA adapters in fp32, checkpointing.
    With train_text_encoder every text encoder of the family is trained (SDXL: both)."""
    tc = cfg.train
    trained = dict(c.text_encoders) if tc.train_text_encoder else {}
    m = Models(c, c.unet, c.vae, tc.train_text_encoder, trained)
    lora = tc.method == "lora"
    m.vae.requires_grad_(False)
    for encoder in c.text_encoders.values():
        encoder.requires_grad_(m.train_te and not lora)
    m.unet.requires_grad_(not lora)
    m.vae.to(device, dtype=m.family.vae_dtype(weight_dtype))  # SDXL's stays fp32
    for encoder in c.text_encoders.values():
        # a fully trained encoder keeps fp32 weights (the optimizer's master copy)
        encoder.to(device, **({} if m.train_te and not lora else {"dtype": weight_dtype}))
    if lora:
        m.unet.to(device, dtype=weight_dtype)
        m.family.add_lora(m.unet, LoraSpec.of(tc), trained)
        for model in m.trained_modules():
            for p in model.parameters():
                if p.requires_grad:
                    p.data = p.data.float()
    if tc.gradient_checkpointing:
        m.unet.enable_gradient_checkpointing()
        for encoder in trained.values():
            # Non-reentrant explicitly: transformers 4.x defaults to reentrant checkpoints,
            # which give a LoRA inside a frozen encoder no gradient at all.
            encoder.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
    if device.type == "cuda":
        m.unet.to(memory_format=torch.channels_last)
    return m


@dataclass
class Optimization:
    params: list[torch.nn.Parameter]  # the trained parameters (gradient clipping)
    optimizer: Any
    lr_scheduler: Any


def param_groups(models: Models, cfg: Config) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the trained weights at learning_rate, in one group (as
    runs always had: their checkpoints' optimizer state still loads), or with text_encoder_lr
    set, the text encoders' (SDXL: both) in a second group at that rate. The learning-rate
    schedule scales each group's own rate."""
    tc = cfg.train
    unet = [p for p in models.unet.parameters() if p.requires_grad]
    te = [p for m in models.trained_tes.values() for p in m.parameters() if p.requires_grad]
    if tc.text_encoder_lr is None or not te:
        return [{"params": unet + te}]
    return [{"params": unet}, {"params": te, "lr": tc.text_encoder_lr}]


def build_optimizer(models: Models, cfg: Config, device: torch.device) -> Optimization:
    """The optimizer train.optimizer names (engine.training.optimizers), and the
    learning-rate schedule."""
    from diffusers.optimization import get_scheduler

    tc = cfg.train
    groups = param_groups(models, cfg)
    params = [p for group in groups for p in group["params"]]
    optimizer = make_optimizer(groups, tc, device)
    lr_scheduler = get_scheduler(
        tc.lr_scheduler,
        optimizer,
        step_rules=tc.lr_step_rules,
        num_warmup_steps=tc.lr_warmup_steps,
        num_training_steps=tc.max_train_steps,
        num_cycles=tc.lr_num_cycles,
        power=tc.lr_power,
    )
    return Optimization(params, optimizer, lr_scheduler)


def distribute(acc: Any, models: Models, opt: Optimization, cfg: Config) -> str | None:
    """The trained models and the optimizer handed to the accelerator (and the UNet compiled
    with train.torch_compile: what was compiled is returned, compiled in the first step)."""
    names = list(models.trained_tes)
    models.unet, *encoders, opt.optimizer = acc.prepare(
        models.unet, *models.trained_tes.values(), opt.optimizer
    )
    models.trained_tes = dict(zip(names, encoders, strict=True))
    if not cfg.train.torch_compile:
        return None
    from engine.compile import compile_unet

    models.unet, compiled = compile_unet(models.unet)
    return compiled
