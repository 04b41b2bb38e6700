"""The training engine: `python -m engine run RUN_DIR [--resume latest|CHECKPOINT]`.

Reads RUN_DIR/config.yaml, appends to RUN_DIR/events.jsonl, writes samples/, checkpoints/ and
final/. Stop = save: SIGTERM or SIGINT finishes the current step, writes a checkpoint, emits
finished{stopped} and exits 0; a second signal exits at once. Failures end with an `error` event
naming what happened and what to do, and keep the last good checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any

import torch

from engine import checkpoint as ckpt
from engine import crops, faults
from engine.ckpt_check import incomplete_reason, latest_whole
from engine.config import Config, ConfigError, config_to_dict, load_config
from engine.config.checks import Machine, device_problems, model_problem
from engine.data import DataError, ImageSet, load_images, normalize, stream_indices, tokenize
from engine.errors import DreamboothError
from engine.events import EventWriter
from engine.gpu import GpuMonitor, device_info, memory
from engine.loss_scaling import optimizer_update
from engine.models import ModelLoadError, add_lora, load_components, save_lora
from engine.outputs import FINAL, fsync_tree, on_cpu_fp32, recover_final, replace_folder
from engine.recipe import (
    add_noise,
    dreambooth_loss,
    latent_distribution,
    prediction_target,
    sample_latents,
    sample_noise,
    sample_timesteps,
    step_seed,
)
from engine.resume_rules import config_changes, describe, previous_config, refusal
from engine.runs import (
    COMPLETED,
    CONFIG_FILE,
    FAILED,
    STOPPED,
    RunLock,
    RunLockedError,
    finish_record,
    start_record,
    update_run_json,
)

OOM_ADVICE = (
    "lower memory use: set train.gradient_checkpointing: true, train.optimizer: adamw8bit, "
    "train.method: lora, a smaller train.resolution or train.train_batch_size "
    "(raise gradient_accumulation_steps to keep the effective batch)"
)


class EngineError(DreamboothError, RuntimeError):
    """An expected failure: becomes one `error` event and an exit code."""

    def __init__(self, kind: str, message: str, hint: str = "", exit_code: int = 1) -> None:
        super().__init__(message, kind=kind, hint=hint, exit_code=exit_code)


class StopSignal:
    """First SIGTERM/SIGINT: stop after this step. Second: exit at once."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGTERM, signal.SIGINT)}

    def uninstall(self) -> None:
        for sig, handler in getattr(self, "previous", {}).items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            os._exit(128 + signum)
        self.requested = True


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


class Trainer:
    def __init__(self, run_dir: Path, resume: str | None, argv: list[str]) -> None:
        self.run_dir = run_dir
        self.resume = resume
        self.argv = argv
        self.stop = StopSignal()
        self.is_main = _rank() == 0
        self.events = EventWriter(run_dir / "events.jsonl", enabled=False)
        self.step = 0
        self.start_step = 0
        self.started = time.time()
        self.recorded = False  # run.json has this session's start (the main process only)
        self.accelerator = None
        self.gpu_monitor: GpuMonitor | None = None
        self.step_times: deque[float] = deque(maxlen=10)
        self.compiled: str | None = None  # what train.torch_compile compiled, until step 1

    # ------------------------------------------------------------------ helpers
    def log(self, message: str, level: str = "info") -> None:
        self.events.log(message, level)

    def phase(self, name: str, detail: str = "") -> None:
        self.events.emit("phase", name=name, detail=detail)

    def check_stop(self) -> bool:
        """All processes agree to stop when any one was signalled."""
        flag = self.stop.requested
        acc = self.accelerator
        if acc is not None and acc.num_processes > 1:
            t = torch.tensor([1.0 if flag else 0.0], device=acc.device)
            flag = bool(acc.reduce(t, reduction="sum").item() > 0)
        return flag

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
        from accelerate.utils import set_seed

        cfg = self.cfg
        tc = cfg.train
        from engine.launch import SHARDED_REFUSAL, sharded_mode_in_env

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
        self.accelerator = acc = Accelerator(mixed_precision=tc.mixed_precision, cpu=not cuda)
        self.device = acc.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
            tc.mixed_precision, torch.float32
        )
        set_seed(tc.seed)
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def load_models(self) -> None:
        tc = self.cfg.train
        self.phase("loading_models", tc.model)
        found = model_problem(self.cfg)  # model_index.json only: before any weights load
        if found:
            key, problem, kind = found
            raise EngineError(
                kind, f"{CONFIG_FILE}: {key}: {problem}", "", 2 if kind == "config" else 1
            )
        try:
            c = load_components(tc.model, tc.revision)
        except ModelLoadError as exc:
            code = 2 if exc.kind == "config" else 1
            raise EngineError(exc.kind, str(exc), exc.hint, code) from exc
        self.components = c
        self.tokenizer, self.noise_scheduler = c.tokenizer, c.noise_scheduler
        self.vae, self.text_encoder, self.unet = c.vae, c.text_encoder, c.unet
        lora = tc.method == "lora"
        self.train_te = tc.train_text_encoder
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(self.train_te and not lora)
        self.unet.requires_grad_(not lora)
        dev, wd = self.device, self.weight_dtype
        self.vae.to(dev, dtype=wd)
        if not self.train_te or lora:
            self.text_encoder.to(dev, dtype=wd)
        if lora:
            self.unet.to(dev, dtype=wd)
            add_lora(
                self.unet, tc.lora_rank, tc.lora_alpha, self.text_encoder if self.train_te else None
            )
            for model in (self.unet, self.text_encoder):
                for p in model.parameters():
                    if p.requires_grad:
                        p.data = p.data.float()
        if tc.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if self.train_te:
                # Non-reentrant explicitly: transformers 4.x defaults to reentrant checkpoints,
                # which give a LoRA inside a frozen encoder no gradient at all.
                self.text_encoder.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
        if self.device.type == "cuda":
            self.unet.to(memory_format=torch.channels_last)

    def validation_pipeline(self):
        from diffusers import StableDiffusionPipeline

        from engine.schedulers import make_scheduler

        acc = self.accelerator
        pipe = StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=acc.unwrap_model(self.text_encoder),
            tokenizer=self.tokenizer,
            unet=acc.unwrap_model(self.unet),
            scheduler=make_scheduler(self.cfg.evaluation.scheduler, self.components.sampler),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def ensure_class_images(self) -> None:
        """Generate the missing class images (engine.class_images): every process its share."""
        tc = self.cfg.train
        if not tc.prior_preservation:
            return
        from engine import class_images
        from engine.data import resolve_data

        acc = self.accelerator
        folder = Path(resolve_data(tc.class_data))
        if self.is_main:
            folder.mkdir(parents=True, exist_ok=True)
            class_images.remove_temp_files(folder)
        acc.wait_for_everyone()  # every rank plans from the same folder, before any writes
        plan = class_images.plan(folder, tc.num_class_images)
        acc.wait_for_everyone()
        if plan.missing == 0:
            return
        have = len(plan.existing)
        self.phase("generating_class_images", f"{plan.missing} of {tc.num_class_images} to make")

        def progress(made: int) -> None:
            if acc.num_processes == 1:
                self.log(f"class images {have + made}/{tc.num_class_images}")

        made = class_images.generate_missing(
            plan,
            source=self.components.source,
            revision=tc.revision,
            prompt=tc.class_prompt,
            seed=tc.seed,
            resolution=tc.resolution,
            batch_size=tc.sample_batch_size,
            device=self.device,
            dtype=self.weight_dtype,
            rank=acc.process_index,
            world_size=acc.num_processes,
            should_stop=lambda: self.stop.requested,
            progress=progress,
        )
        counts = acc.gather(torch.tensor([made], device=self.device)).tolist()
        if acc.num_processes > 1:
            self.log(
                f"class images {have + sum(counts)}/{tc.num_class_images} "
                f"(made per process: {', '.join(map(str, counts))})"
            )
        acc.wait_for_everyone()

    def load_data(self) -> None:
        tc = self.cfg.train

        def warn(msg: str) -> None:
            self.log(msg, "warning")

        try:
            self.instances = load_images(
                tc.instance_data,
                tc.instance_prompt,
                tc.resolution,
                tc.center_crop,
                tc.captions,
                tc.revision,
                tc.seed,
                warn,
            )
            self.classes: ImageSet | None = None
            if tc.prior_preservation:
                self.classes = load_images(
                    tc.class_data,
                    tc.class_prompt,
                    tc.resolution,
                    tc.center_crop,
                    False,
                    None,
                    tc.seed + 1,
                    warn,
                    limit=tc.num_class_images,
                )
        except DataError as exc:
            raise EngineError(exc.kind, str(exc), exc.hint, 2 if exc.kind == "data" else 1) from exc
        msg = f"{len(self.instances)} instance images"
        if self.classes is not None:
            msg += f", {len(self.classes)} class images"
        if self.instances.skipped:
            msg += f" ({len(self.instances.skipped)} skipped)"
        self.log(msg)
        if tc.cache_latents and not tc.center_crop:
            self.log(crops.CACHE_WARNING, "warning")

    # ------------------------------------------------------------------ caching
    def build_cache(self) -> None:
        """Latent mean/std of every image (both flips) and the frozen text embeddings."""
        tc = self.cfg.train
        self.latent_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.text_cache: dict[str, torch.Tensor] = {}
        if not tc.cache_latents:
            return
        self.phase("caching", "latents and text embeddings")
        sets = [("instance", 0, self.instances)]  # (name, data stream, images)
        if self.classes is not None:
            sets.append(("class", 1, self.classes))
        with torch.no_grad():
            for name, stream, images in sets:
                for flip in (False, True) if tc.random_flip else (False,):
                    for c in range(crops.crops_per_image(images, cache=True)):
                        means, stds = [], []
                        for i in range(0, len(images), 8):
                            ids = list(range(i, min(i + 8, len(images))))
                            views = [crops.cached(images, j, c, tc.seed, stream) for j in ids]
                            m, s = latent_distribution(
                                self.vae, self._pixels(views, [flip] * len(ids))
                            )
                            means.append(m)
                            stds.append(s)
                        key = f"{name}/{int(flip)}/{c}"
                        self.latent_cache[key] = (torch.cat(means), torch.cat(stds))
            if not self.train_te:
                prompts = set(self.instances.prompts)
                if self.classes is not None:
                    prompts |= set(self.classes.prompts)
                for p in sorted(prompts):
                    ids = tokenize(self.tokenizer, [p]).to(self.device)
                    self.text_cache[p] = self.text_encoder(ids)[0][0]
        # The frozen encoders leave the accelerator; sampling brings them back for a moment.
        if self.device.type == "cuda":
            self.vae.to("cpu")
            if not self.train_te:
                self.text_encoder.to("cpu")
            torch.cuda.empty_cache()
        self.offloaded = self.device.type == "cuda"

    def _pixels(self, views: list[torch.Tensor], flips: list[bool]) -> torch.Tensor:
        px = torch.stack(views)
        flip_t = torch.tensor(flips, dtype=torch.bool)
        if flip_t.any():
            px[flip_t] = px[flip_t].flip(-1)
        return normalize(px).to(self.device, dtype=self.weight_dtype, non_blocking=True)

    # ------------------------------------------------------------------ one step
    def micro_batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int, torch.Generator]:
        """Latents and text embeddings of micro-batch k on this rank (+ its generator)."""
        tc = self.cfg.train
        acc = self.accelerator
        seed = step_seed(tc.seed, k, acc.process_index)
        cpu_gen = torch.Generator().manual_seed(seed)
        dev_gen = torch.Generator(self.device).manual_seed(seed)
        bs = tc.train_batch_size
        start = (k * acc.num_processes + acc.process_index) * bs
        parts = [("instance", 0, self.instances)]  # (name, data stream, images)
        if self.classes is not None:
            parts.append(("class", 1, self.classes))
        latents, prompts = [], []
        for name, stream, images in parts:
            idx = stream_indices(len(images), start, bs, tc.seed, tc.shuffle, stream)
            positions = range(start, start + bs)  # the draws' places in the data sequence
            flips = (
                (torch.rand(len(idx), generator=cpu_gen) < 0.5).tolist()
                if tc.random_flip
                else [False] * len(idx)
            )
            if tc.cache_latents:
                count = crops.crops_per_image(images, cache=True)
                keys = [
                    f"{name}/{int(f)}/{crops.cached_choice(tc.seed, stream, pos, count)}"
                    for f, pos in zip(flips, positions, strict=True)
                ]
                mean = torch.stack(
                    [self.latent_cache[key][0][i] for key, i in zip(keys, idx, strict=True)]
                )
                std = torch.stack(
                    [self.latent_cache[key][1][i] for key, i in zip(keys, idx, strict=True)]
                )
            else:
                views = [
                    crops.drawn(images, i, tc.seed, stream, pos)
                    for i, pos in zip(idx, positions, strict=True)
                ]
                with torch.no_grad():
                    mean, std = latent_distribution(self.vae, self._pixels(views, flips))
            latents.append(sample_latents(mean, std, self.vae.config.scaling_factor, dev_gen))
            prompts += [images.prompts[i] for i in idx]
        if self.text_cache:
            embeds = torch.stack([self.text_cache[p] for p in prompts])
        else:
            ids = tokenize(self.tokenizer, prompts).to(self.device)
            with contextlib.nullcontext() if self.train_te else torch.no_grad():
                embeds = self.text_encoder(ids)[0]
        return torch.cat(latents), embeds, bs, dev_gen

    def compute_loss(self, k: int):
        tc = self.cfg.train
        latents, embeds, n_inst, gen = self.micro_batch(k)
        noise = sample_noise(latents, gen, tc.offset_noise)
        t = sample_timesteps(self.noise_scheduler, latents.shape[0], gen, latents.device)
        noisy = add_noise(self.noise_scheduler, latents, noise, t)
        with self.accelerator.autocast():
            pred = self.unet(noisy, t, embeds, return_dict=False)[0]
        target = prediction_target(self.noise_scheduler, latents, noise, t)
        return dreambooth_loss(
            pred,
            target,
            t,
            self.noise_scheduler,
            n_inst if self.classes is not None else None,
            tc.prior_loss_weight,
            tc.snr_gamma,
        )

    # ------------------------------------------------------------------ optimiser
    def build_optimizer(self) -> None:
        from diffusers.optimization import get_scheduler

        tc = self.cfg.train
        params = [p for p in self.unet.parameters() if p.requires_grad]
        if self.train_te:
            params += [p for p in self.text_encoder.parameters() if p.requires_grad]
        self.params = params
        if tc.optimizer == "adamw8bit":
            try:
                import bitsandbytes as bnb

                self.optimizer = bnb.optim.AdamW8bit(params, lr=tc.learning_rate, weight_decay=1e-2)
            except Exception as exc:  # import or device support
                raise EngineError(
                    "config",
                    f"train.optimizer: adamw8bit is not available here ({exc})",
                    "install bitsandbytes for this device, or set train.optimizer: adamw",
                    exit_code=2,
                ) from exc
        else:
            # One fused kernel per update on CUDA and the CPU (torch >= 2.4): on the tiny model's
            # CPU step it takes a quarter of foreach's time (benchmarks/RESULTS.md).
            fused = self.device.type in ("cuda", "cpu")
            extra = {"fused": True} if fused else {"foreach": True}
            self.optimizer = torch.optim.AdamW(
                params, lr=tc.learning_rate, weight_decay=1e-2, **extra
            )
        self.lr_scheduler = get_scheduler(
            tc.lr_scheduler,
            self.optimizer,
            step_rules=tc.lr_step_rules,
            num_warmup_steps=tc.lr_warmup_steps,
            num_training_steps=tc.max_train_steps,
            num_cycles=tc.lr_num_cycles,
            power=tc.lr_power,
        )
        acc = self.accelerator
        if self.train_te:
            self.unet, self.text_encoder, self.optimizer = acc.prepare(
                self.unet, self.text_encoder, self.optimizer
            )
        else:
            self.unet, self.optimizer = acc.prepare(self.unet, self.optimizer)
        if tc.torch_compile:  # compiled in the first step: train_loop reports it
            from engine.compile import compile_unet

            self.unet, self.compiled = compile_unet(self.unet)

    # ------------------------------------------------------------------ outputs
    def trainable_te(self):
        return self.accelerator.unwrap_model(self.text_encoder) if self.train_te else None

    def save_checkpoint(self, step: int) -> Path | None:
        acc = self.accelerator
        tc = self.cfg.train
        tmp = ckpt.temp_dir(self.run_dir, step)
        ckpt.write_rank_state(tmp, acc.process_index)
        acc.wait_for_everyone()
        path = None
        if self.is_main:
            for old in ckpt.make_room(self.run_dir, tc.checkpoints_total_limit, step):
                self.log(f"removed old checkpoint {old.name} to make room")
            unet = acc.unwrap_model(self.unet)
            te = self.trainable_te()
            lora_writer = (lambda d: save_lora(d, unet, te)) if tc.method == "lora" else None
            meta = {
                "method": tc.method,
                "train_text_encoder": self.train_te,
                "world_size": acc.num_processes,
                "time": time.time(),
            }
            try:
                path = ckpt.write_checkpoint(
                    self.run_dir,
                    step,
                    unet,
                    te,
                    self.optimizer,
                    self.lr_scheduler,
                    meta,
                    lora_writer,
                    acc.scaler,
                )
            except OSError as exc:
                raise self.disk_error(exc, f"checkpoint at step {step}") from exc
            self.events.emit("checkpoint", step=step, path=str(path.relative_to(self.run_dir)))
            for old in ckpt.prune(self.run_dir, tc.checkpoints_total_limit):
                self.log(f"removed old checkpoint {old.name}", level="debug")  # housekeeping
        acc.wait_for_everyone()
        return path

    def disk_error(self, exc: OSError, what: str) -> EngineError:
        last = ckpt.latest_checkpoint(self.run_dir)
        kept = f"; the last good checkpoint is {last.name}" if last else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return EngineError(
                "disk",
                f"disk full while writing the {what}{kept}",
                f"free space under {self.run_dir.parent}, then resume the run",
            )
        return EngineError(
            "disk",
            f"cannot write the {what}: {exc.strerror or exc}{kept}",
            f"check that {self.run_dir} is writable, then resume the run",
        )

    @contextlib.contextmanager
    def encoders_on_device(self):
        if getattr(self, "offloaded", False):
            self.vae.to(self.device)
            if not self.train_te:
                self.text_encoder.to(self.device)
        try:
            yield
        finally:
            if getattr(self, "offloaded", False):
                self.vae.to("cpu")
                if not self.train_te:
                    self.text_encoder.to("cpu")
                torch.cuda.empty_cache()

    def sample(self, step: int) -> None:
        """Validation images, each made as `generate` makes it (engine.render): one image per
        forward pass, image i of a prompt from a CPU generator seeded evaluation.seed + i."""
        from engine.render import render

        ec = self.cfg.evaluation
        if not ec.prompts:
            return
        if self.is_main:
            faults.check_sample(step)
            out = self.run_dir / "samples" / f"step-{step:06d}"
            out.mkdir(parents=True, exist_ok=True)
            res = self.cfg.train.resolution
            unet = self.accelerator.unwrap_model(self.unet)
            unet.eval()
            try:
                with self.encoders_on_device(), self.accelerator.autocast():
                    pipe = self.validation_pipeline()
                    index = []
                    for pi, prompt in enumerate(ec.prompts):
                        paths = []
                        for i in range(ec.num_images):
                            (image,) = render(
                                pipe,
                                [prompt],
                                [ec.seed + i],
                                negative_prompt=ec.negative_prompt,
                                num_inference_steps=ec.num_inference_steps,
                                guidance_scale=ec.guidance_scale,
                                height=ec.height or res,
                                width=ec.width or res,
                            )
                            p = out / f"{pi:02d}-{i:02d}.png"
                            image.save(p)
                            paths.append(str(p.relative_to(self.run_dir)))
                        index.append({"prompt": prompt, "paths": paths, "seed": ec.seed})
                        self.events.emit(
                            "sample", step=step, prompt=prompt, paths=paths, seed=ec.seed
                        )
                    (out / "prompts.json").write_text(
                        json.dumps(index, indent=2, ensure_ascii=False)
                    )
            finally:
                unet.train()

    def sample_or_warn(self, step: int) -> None:
        """Sampling never ends a run: a failure (out of memory, disk, anything) is a warning
        and training goes on (issue 9: the finished model must survive a late failure)."""
        try:
            self.sample(step)
        except Exception as exc:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            oom = isinstance(exc, torch.OutOfMemoryError | MemoryError)
            what = "out of memory" if oom else f"{exc.__class__.__name__}: {exc}"
            self.log(
                f"validation samples at step {step} failed ({what}); training goes on", "warning"
            )
        self.accelerator.wait_for_everyone()

    def save_final(self) -> dict[str, str | None]:
        """final/: written to .tmp-final, then swapped in (engine.outputs.replace_folder)."""
        import shutil

        tc = self.cfg.train
        self.phase("saving", "final model")
        outputs: dict[str, str | None] = {"final": None, "lora": None}
        if self.is_main:
            acc = self.accelerator
            final = self.run_dir / FINAL
            tmp = self.run_dir / f".tmp-{FINAL}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir()
                if tc.method == "lora":
                    save_lora(tmp, acc.unwrap_model(self.unet), self.trainable_te())
                    outputs["lora"] = f"{FINAL}/pytorch_lora_weights.safetensors"
                else:
                    pipe = self.final_pipeline()
                    with on_cpu_fp32(pipe.unet, pipe.text_encoder, pipe.vae):
                        pipe.save_pretrained(tmp, safe_serialization=True)
                fsync_tree(tmp)
                replace_folder(tmp, final)
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise self.disk_error(exc, "final model") from exc
            outputs["final"] = FINAL
        self.accelerator.wait_for_everyone()
        return outputs

    def final_pipeline(self):
        """The trained pipeline as final/ holds it: the model's own scheduler (class and
        config), so `generate --run` derives the same sampler the validation samples used."""
        from diffusers import StableDiffusionPipeline

        acc = self.accelerator
        return StableDiffusionPipeline(
            vae=self.vae,
            text_encoder=acc.unwrap_model(self.text_encoder),
            tokenizer=self.tokenizer,
            unet=acc.unwrap_model(self.unet),
            scheduler=self.components.sampler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )

    # ------------------------------------------------------------------ the loop
    def step_event(
        self, step: int, loss: float, parts: list[float] | None, grad_norm: float, lr: float
    ) -> None:
        tc = self.cfg.train
        it_s = len(self.step_times) / sum(self.step_times) if self.step_times else 0.0
        remaining = tc.max_train_steps - step
        fields: dict[str, Any] = {
            "step": step,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "it_s": it_s,
            "samples_s": it_s
            * tc.train_batch_size
            * tc.gradient_accumulation_steps
            * self.accelerator.num_processes,
            "eta_s": remaining / it_s if it_s > 0 else None,
            "mem": memory(self.device),
        }
        if parts is not None:
            fields["loss_instance"], fields["loss_prior"] = parts
        self.events.emit("step", **fields)

    def prepare(self) -> None:
        """Everything between the accelerator and the first step (also used by benchmarks)."""
        self.load_models()
        self.ensure_class_images()
        self.load_data()
        self.build_cache()
        self.build_optimizer()
        self.restore()

    def train_step(self, step: int) -> tuple[float, list[float] | None, float | None, float]:
        """One optimizer update (all its accumulation micro-batches): loss, parts, grad norm, lr."""
        tc = self.cfg.train
        acc = self.accelerator
        accum = tc.gradient_accumulation_steps
        total = torch.zeros((), device=self.device)
        inst = torch.zeros((), device=self.device)
        prior = torch.zeros((), device=self.device)
        faults.check_oom(step)
        for j in range(accum):
            k = (step - 1) * accum + j
            sync = j == accum - 1 or acc.num_processes == 1
            ctx = contextlib.nullcontext() if sync else acc.no_sync(self.unet)
            with ctx:
                loss = self.compute_loss(k)
                acc.backward(loss.total / accum)
            total += loss.total.detach() / accum
            inst += loss.instance.detach() / accum
            if loss.prior is not None:
                prior += loss.prior.detach() / accum
        stats = torch.stack([total, inst, prior])
        if acc.num_processes > 1:
            stats = acc.reduce(stats, reduction="mean")
        loss_v, inst_v, prior_v = stats.tolist()
        if faults.nan_at(step):
            loss_v = float("nan")
        if not math.isfinite(loss_v):
            self.step = step - 1
            last = ckpt.latest_checkpoint(self.run_dir)
            kept = f"; last good checkpoint: {last.name}" if last else ""
            raise EngineError(
                "nan",
                f"the loss became {loss_v} at step {step}{kept}",
                "lower train.learning_rate, use bf16 instead of fp16, or keep "
                "train.max_grad_norm at 1.0; resume from the last checkpoint",
            )
        # The total norm before clipping (max_grad_norm > 0: the config refuses anything else).
        grad_norm = acc.clip_grad_norm_(self.params, tc.max_grad_norm)
        lr = self.lr_scheduler.get_last_lr()[0]
        if optimizer_update(self.optimizer, self.lr_scheduler, acc.scaler):
            self.log(
                f"step {step}: fp16 gradient overflow, update skipped "
                f"(loss scale now {acc.scaler.get_scale():g}; the LR schedule does not advance)"
            )
        gn = float(grad_norm) if grad_norm is not None else None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        parts = [inst_v, prior_v] if self.classes is not None else None
        return loss_v, parts, gn, lr

    def train_loop(self) -> str:
        from engine.compile import cache_counters, first_step_message

        tc = self.cfg.train
        steps = f"steps {self.start_step + 1}-{tc.max_train_steps}"
        self.phase(*(("compiling", self.compiled) if self.compiled else ("training", steps)))
        cache_before = cache_counters()
        self.unet.train()
        if self.train_te:
            self.text_encoder.train()
        for step in range(self.start_step + 1, tc.max_train_steps + 1):
            if self.check_stop():
                return STOPPED
            t0 = time.perf_counter()
            loss_v, parts, gn, lr = self.train_step(step)
            self.step_times.append(time.perf_counter() - t0)
            if self.compiled:  # that step compiled the UNet: say how long, keep it out of it_s
                self.log(first_step_message(self.step_times.pop(), cache_before, self.compiled))
                self.phase("training", steps)
                self.compiled = None
            self.step = step
            self.step_event(step, loss_v, parts, gn, lr)
            if step == tc.max_train_steps:
                break  # final/ is written first, then the last samples (run)
            if step % tc.validation_steps == 0:
                self.sample_or_warn(step)
            if self.check_stop():
                self.save_checkpoint(step)
                return STOPPED
            if step % tc.checkpointing_steps == 0 and step < tc.max_train_steps:
                self.save_checkpoint(step)
        return COMPLETED

    # ------------------------------------------------------------------ run
    def resume_checkpoint(self, report: bool = False) -> Path | None:
        """The checkpoint to resume from: `--resume PATH`, or for `latest` the newest whole one
        (a checkpoint cut short by a crash on a filesystem without atomic renames is skipped,
        and with `report` said so, with the reason)."""
        if self.resume != "latest":
            return Path(self.resume) if self.resume else None
        path, skipped = latest_whole(ckpt.list_checkpoints(self.run_dir))
        for folder, reason in skipped if report else []:
            self.log(f"skipped checkpoint {folder.name}: {reason}", level="warning")
        return path

    def restore(self) -> None:
        if not self.resume:
            return
        path = self.resume_checkpoint(report=True)
        if path is None:
            self.log("no checkpoint yet: starting from step 0")
            return
        if not (path / "state.json").exists():
            raise EngineError(
                "config",
                f"{path}: not a checkpoint folder (no state.json)",
                "pass a checkpoints/step-NNNNNN folder or --resume latest",
                2,
            )
        if (reason := incomplete_reason(path)) is not None:
            raise EngineError(
                "config",
                f"{path}: not a whole checkpoint ({reason})",
                "pass an earlier checkpoints/step-NNNNNN folder or --resume latest",
                2,
            )
        acc = self.accelerator
        te = self.trainable_te()
        self.start_step = ckpt.load_checkpoint(
            path,
            acc.unwrap_model(self.unet),
            te,
            self.optimizer,
            self.lr_scheduler,
            acc.process_index,
            acc.scaler,
        )
        self.log(f"resumed from {path.name} (step {self.start_step})")

    def check_resume_edits(self) -> list:
        """A resume under a config its checkpoint cannot follow is refused (exit 2, nothing
        written); the changes it can follow are returned, to be logged."""
        if not self.resume:
            return []
        previous = previous_config(self.run_dir)
        if previous is None:
            return []
        frozen, followed = config_changes(previous, config_to_dict(self.cfg))
        if frozen:
            raise EngineError(
                "config", f"{CONFIG_FILE}: {refusal(frozen[0], 'the checkpoint')}", "", 2
            )
        return followed

    def resumed_from(self) -> int | None:
        if not self.resume:
            return None
        path = self.resume_checkpoint()
        if path is None or not (path / "state.json").exists():
            return None
        return int(ckpt.read_state(path)["step"])

    def run(self) -> int:
        self.stop.install()
        lock = RunLock(self.run_dir)
        leftovers: list[Path] = []
        if self.is_main:
            try:
                lock.acquire()
            except RunLockedError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            self.events = EventWriter(self.run_dir / "events.jsonl")
            leftovers = ckpt.remove_leftovers(self.run_dir)  # a killed save's temp folders
        status, code, outputs = FAILED, 1, {"final": None, "lora": None}
        try:
            try:
                self.cfg: Config = load_config(self.run_dir / CONFIG_FILE)
            except ConfigError as exc:
                raise EngineError("config", str(exc), "fix the config and start again", 2) from exc
            followed = self.check_resume_edits()
            tc = self.cfg.train
            if self.is_main:
                recover_final(self.run_dir / FINAL)  # a swap that a crash interrupted
                start_record(self.run_dir, self.argv, tc.max_train_steps)
                self.recorded = True
                update_run_json(self.run_dir, method=tc.method)
            self.setup()
            acc = self.accelerator
            self.events.emit(
                "run_started",
                run_id=self.run_dir.name,
                config=config_to_dict(self.cfg),
                total_steps=tc.max_train_steps,
                device=device_info(self.device),
                resumed_from_step=self.resumed_from(),
                world_size=acc.num_processes,
            )
            if self.is_main and leftovers:
                names = ", ".join(str(p.relative_to(self.run_dir)) for p in leftovers)
                self.log(f"removed the temp folders of an interrupted save: {names}")
            for change in followed:
                self.log(f"changed since the last attempt: {describe(change)}")
            if self.is_main and self.device.type == "cuda":
                self.gpu_monitor = GpuMonitor(self.events.emit, self.device.index or 0).start()
            self.prepare()
            self.step = self.start_step
            status = self.train_loop() if not self.check_stop() else STOPPED
            if status == COMPLETED:
                outputs = self.save_final()
                self.sample_or_warn(self.step)
            code = 0
        except EngineError as exc:
            status, code = FAILED, exc.exit_code
            self.events.emit("error", kind=exc.kind, message=str(exc), hint=exc.hint)
            print(f"error: {exc}", file=sys.stderr)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            peak = memory(self.device)["peak"] if self.accelerator else 0
            self.events.emit(
                "error",
                kind="oom",
                message=f"out of {'GPU ' if self.device.type == 'cuda' else ''}memory at step "
                f"{self.step + 1} (peak {peak / 2**30:.2f} GiB allocated)",
                hint=OOM_ADVICE,
            )
            print(f"error: out of memory: {exc}", file=sys.stderr)
        except OSError as exc:
            err = (
                self.disk_error(exc, "run files")
                if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else EngineError(
                    "internal",
                    f"{exc.__class__.__name__}: {exc}",
                    f"see {self.run_dir / 'engine.log'}",
                )
            )
            self.events.emit("error", kind=err.kind, message=str(err), hint=err.hint)
            traceback.print_exc()
        except Exception as exc:  # a bug: keep the trace in engine.log, say where it is
            self.events.emit(
                "error",
                kind="internal",
                message=f"{exc.__class__.__name__}: {exc}",
                hint=f"the full trace is in {self.run_dir / 'engine.log'}",
            )
            traceback.print_exc()
        finally:
            if self.gpu_monitor is not None:
                self.gpu_monitor.stop()
            # one duration everywhere (runs.run_duration): this session plus earlier ones
            now = time.time()
            duration = finish_record(self.run_dir, now) if self.recorded else None
            self.events.emit(
                "finished",
                status=status,
                step=self.step,
                outputs=outputs,
                duration_s=now - self.started if duration is None else duration,
            )
            if self.recorded:
                finish_record(self.run_dir, now, status=status, step=self.step)
            elif self.is_main:
                update_run_json(self.run_dir, status=status, ended=now, step=self.step)
            self.events.close()
            lock.release()
            self.stop.uninstall()
        return code


def run(run_dir: str | Path, resume: str | None = None, argv: list[str] | None = None) -> int:
    return Trainer(Path(run_dir).resolve(), resume, argv or sys.argv).run()
