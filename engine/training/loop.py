"""The training loop: steps of the recipe on micro-batches, a `step` event each, validation
samples and checkpoints on their schedules, stop = save."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from engine import checkpoint as ckpt
from engine import faults
from engine.gpu import memory
from engine.loss_scaling import optimizer_update
from engine.recipe import (
    Loss,
    add_noise,
    dreambooth_loss,
    prediction_target,
    sample_noise,
    sample_timesteps,
)
from engine.runs import COMPLETED, STOPPED
from engine.training import checkpoints, sample_now, samples
from engine.training.batches import Batches
from engine.training.context import RunContext, RunState
from engine.training.errors import EngineError
from engine.training.optimizers import effective_lr
from engine.training.setup import Models, Optimization


@dataclass
class Training:
    """A prepared run's steps, from its models, batches and optimizer."""

    ctx: RunContext
    models: Models
    batches: Batches
    opt: Optimization
    state: RunState

    def loop(self) -> str:
        """Steps from the one after start_step to max_train_steps: COMPLETED or STOPPED."""
        from engine.compile import cache_counters, first_step_message

        tc, state = self.ctx.cfg.train, self.state
        steps = f"steps {state.start_step + 1}-{tc.max_train_steps}"
        self.ctx.phase(*(("compiling", state.compiled) if state.compiled else ("training", steps)))
        cache_before = cache_counters()
        for module in self.models.trained_modules():
            module.train()
        if tc.validation_at_start and state.start_step == 0:  # the base model, to compare
            samples.sample_or_warn(self.ctx, self.models, 0)
        for step in range(state.start_step + 1, tc.max_train_steps + 1):
            if self.ctx.should_stop():
                return STOPPED
            t0 = time.perf_counter()
            loss_v, parts, gn, lr = self.train_step(step)
            state.step_times.append(time.perf_counter() - t0)
            if state.compiled:  # that step compiled the UNet: say how long, keep it out of it_s
                self.ctx.log(
                    first_step_message(state.step_times.pop(), cache_before, state.compiled)
                )
                self.ctx.phase("training", steps)
                state.compiled = None
            state.step = step
            self.step_event(step, loss_v, parts, gn, lr)
            sample_now.serve(self.ctx, self.models, step)  # a user's request, if one came
            if step == tc.max_train_steps:
                break  # final/ is written first, then the last samples (the run)
            if step % tc.validation_steps == 0:
                samples.sample_or_warn(self.ctx, self.models, step)
            if self.ctx.should_stop():
                checkpoints.save(self.ctx, self.models, self.opt, step)
                return STOPPED
            if step % tc.checkpointing_steps == 0 and step < tc.max_train_steps:
                checkpoints.save(self.ctx, self.models, self.opt, step)
        return COMPLETED

    def compute_loss(self, k: int) -> Loss:
        """The recipe on micro-batch k (engine.recipe, one function per step)."""
        tc, sched = self.ctx.cfg.train, self.models.noise_scheduler
        mb = self.batches.batch(k)
        latents, cond, gen = mb.latents, mb.cond, mb.gen
        noise = sample_noise(latents, gen, tc.offset_noise)
        t = sample_timesteps(sched, latents.shape[0], gen, latents.device)
        noisy = add_noise(sched, latents, noise, t)
        with self.ctx.accelerator.autocast():
            pred = self.models.family.predict(self.models.unet, noisy, t, cond)
        target = prediction_target(sched, latents, noise, t)
        return dreambooth_loss(
            pred,
            target,
            t,
            sched,
            mb.num_instance if self.batches.classes is not None else None,
            tc.prior_loss_weight,
            tc.snr_gamma,
            mb.weights,
        )

    def train_step(self, step: int) -> tuple[float, list[float] | None, float, float]:
        """One optimizer update (all its accumulation micro-batches): loss, parts, grad norm, lr."""
        tc, acc, device = self.ctx.cfg.train, self.ctx.accelerator, self.ctx.device
        accum = tc.gradient_accumulation_steps
        total = torch.zeros((), device=device)
        inst = torch.zeros((), device=device)
        prior = torch.zeros((), device=device)
        faults.check_oom(step)
        for j in range(accum):
            k = (step - 1) * accum + j
            sync = j == accum - 1 or acc.num_processes == 1
            ctx = contextlib.nullcontext() if sync else acc.no_sync(self.models.unet)
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
            self.state.step = step - 1
            last = ckpt.latest_checkpoint(self.ctx.run_dir)
            kept = f"; last good checkpoint: {last.name}" if last else ""
            raise EngineError(
                "nan",
                f"the loss became {loss_v} at step {step}{kept}",
                "lower train.learning_rate, use bf16 instead of fp16, or keep "
                "train.max_grad_norm at 1.0; resume from the last checkpoint",
            )
        # The total norm before clipping (max_grad_norm > 0: the config refuses anything else).
        grad_norm = acc.clip_grad_norm_(self.opt.params, tc.max_grad_norm)
        lr = effective_lr(self.opt.optimizer, self.opt.lr_scheduler.get_last_lr()[0])
        if optimizer_update(self.opt.optimizer, self.opt.lr_scheduler, acc.scaler):
            self.ctx.log(
                f"step {step}: fp16 gradient overflow, update skipped "
                f"(loss scale now {acc.scaler.get_scale():g}; the LR schedule does not advance)"
            )
        if self.models.ema is not None:
            self.models.ema.update()
        gn = float(grad_norm)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        parts = [inst_v, prior_v] if self.batches.classes is not None else None
        return loss_v, parts, gn, lr

    def step_event(
        self, step: int, loss: float, parts: list[float] | None, grad_norm: float, lr: float
    ) -> None:
        tc, times = self.ctx.cfg.train, self.state.step_times
        it_s = len(times) / sum(times) if times else 0.0
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
            * self.ctx.accelerator.num_processes,
            "eta_s": remaining / it_s if it_s > 0 else None,
            "mem": memory(self.ctx.device),
        }
        if parts is not None:
            fields["loss_instance"], fields["loss_prior"] = parts
        self.ctx.events.emit("step", **fields)
