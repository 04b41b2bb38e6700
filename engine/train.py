"""The training engine: `python -m engine run RUN_DIR [--resume latest|CHECKPOINT]`.

Reads RUN_DIR/config.yaml, appends to RUN_DIR/events.jsonl, writes samples/, checkpoints/ and
final/. Stop = save: SIGTERM or SIGINT finishes the current step, writes a checkpoint, emits
finished{stopped} and exits 0; a second signal exits at once. Failures end with an `error` event
naming what happened and what to do, and keep the last good checkpoint.

The run's story is told here (Trainer.run); each part of it is a module of engine.training.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from engine import checkpoint as ckpt
from engine import class_images
from engine.buckets import buckets_on
from engine.config import Config, ConfigError, config_to_dict, load_config
from engine.disk_reserve import DiskReserve
from engine.events import EventWriter
from engine.export.at_end import export_at_end
from engine.gpu import GpuMonitor, device_info
from engine.outputs import FINAL, recover_final
from engine.resume_rules import describe
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
from engine.sample_request import discard_request
from engine.sources import builtin_model_path, is_builtin
from engine.training import checkpoints, ema, final, samples, setup
from engine.training.batches import Batches, bucket_step, load_data
from engine.training.context import RunContext, RunState, StopSignal, rank
from engine.training.errors import OOM_ADVICE, EngineError, out_of_memory, unexpected
from engine.training.loop import Training
from engine.training.report_to import Reporter, open_reporter
from engine.training.setup import Models, Optimization

__all__ = ["OOM_ADVICE", "EngineError", "StopSignal", "Trainer", "run"]


class Trainer:
    """One run of the engine in this process: set up, prepare, train, save, finish."""

    def __init__(self, run_dir: Path, resume: str | None, argv: list[str]) -> None:
        self.run_dir = run_dir
        self.resume = resume  # None, "latest" or a checkpoint folder
        self.argv = argv
        self.stop = StopSignal()
        self.is_main = rank() == 0
        self.events = EventWriter(run_dir / "events.jsonl", enabled=False)
        self.state = RunState()
        self.cfg: Config | None = None  # read by run() (or given before setup())
        self.ctx: RunContext | None = None  # from setup()
        self.models: Models | None = None  # from prepare()
        self.batches: Batches | None = None  # from prepare()
        self.opt: Optimization | None = None  # from prepare()
        self.gpu_monitor: GpuMonitor | None = None
        self.reporter: Reporter | None = None  # train.report_to, fed the events (main only)
        self.reserve = DiskReserve(run_dir)  # room for the last words on a full disk

    # ------------------------------------------------------------------ the parts, by name
    @property
    def accelerator(self) -> Any:
        return self.ctx.accelerator

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def unet(self) -> torch.nn.Module:
        return self.models.unet

    @property
    def text_encoder(self) -> torch.nn.Module:
        return self.models.text_encoder

    @property
    def noise_scheduler(self) -> Any:
        return self.models.noise_scheduler

    @property
    def training(self) -> Training:
        return Training(self.ctx, self.models, self.batches, self.opt, self.state)

    # ------------------------------------------------------------------ before the first step
    def setup(self) -> None:
        """The accelerator, once the config is read."""
        self.ctx = setup.make_context(self.run_dir, self.cfg, self.events, self.is_main, self.stop)

    def prepare(self) -> None:
        """Everything between the accelerator and the first step (also used by benchmarks)."""
        ctx = self.ctx
        model = self.cfg.train.model
        if is_builtin(model) and not (builtin_model_path(model) / "model_index.json").exists():
            ctx.log(f"building {model} once (builtin:tiny-shapes pre-trains for about a minute)")
        ctx.phase("loading_models", model)
        components = setup.load_models(self.cfg)
        self.models = setup.ready_to_train(components, self.cfg, ctx.device, ctx.weight_dtype)
        step = bucket_step(self.models.vae)

        def ensure_classes(instance_buckets: list | None) -> None:
            family = self.models.family
            class_images.ensure(ctx, components.source, family, instance_buckets, step)

        bucketed = buckets_on(self.cfg.train.aspect_buckets, self.models.family)
        data = load_data(self.cfg, ctx.log, step, ensure_classes, bucketed)
        self.batches = Batches(ctx, self.models, *data)
        self.batches.build_cache()
        self.build_optimizer()
        self.state.start_step = checkpoints.restore(ctx, self.models, self.opt, self.resume)

    def build_optimizer(self) -> None:
        """The optimizer and schedule; the trained models handed to the accelerator."""
        self.opt = setup.build_optimizer(self.models, self.cfg, self.device)
        self.state.compiled = setup.distribute(self.accelerator, self.models, self.opt, self.cfg)
        self.models.ema = ema.build(self.models, self.cfg, self.accelerator)
        if self.models.ema is not None:
            tc = self.cfg.train
            self.ctx.log(
                f"EMA of {len(self.models.ema.named)} trained tensors, decay {tc.ema_decay:g}, "
                f"on the {'CPU' if self.models.ema.on_cpu else 'training device'}"
            )

    # ------------------------------------------------------------------ steps
    def micro_batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int, torch.Generator]:
        """Micro-batch k with its encoder_hidden_states (SD's whole conditioning)."""
        latents, cond, bs, gen = self.batches.micro_batch(k)
        return latents, cond.hidden_states, bs, gen

    def compute_loss(self, k: int) -> Any:
        return self.training.compute_loss(k)

    def train_step(self, step: int) -> tuple[float, list[float] | None, float, float]:
        return self.training.train_step(step)

    def step_event(
        self, step: int, loss: float, parts: list[float] | None, grad_norm: float, lr: float
    ) -> None:
        self.training.step_event(step, loss, parts, grad_norm, lr)

    def check_stop(self) -> bool:
        return self.ctx.should_stop()

    # ------------------------------------------------------------------ the run
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
            self.reserve.take()
            self.events = EventWriter(self.run_dir / "events.jsonl")
            leftovers = ckpt.remove_leftovers(self.run_dir)  # a killed save's temp folders
        status, code, outputs = FAILED, 1, {"final": None, "lora": None}
        try:
            self.start(leftovers)
            self.prepare()
            self.state.step = self.state.start_step
            status = self.training.loop() if not self.check_stop() else STOPPED
            if status == COMPLETED:
                with ema.ema_weights(self.models.ema):  # final/ and its samples: the average
                    outputs = final.save_final(self.ctx, self.models)
                    samples.sample_or_warn(self.ctx, self.models, self.state.step)
                if exports := export_at_end(self.ctx):  # train.export
                    outputs["exports"] = exports  # type: ignore[assignment]
            code = 0
        except EngineError as exc:
            status, code = FAILED, exc.exit_code
            self.report(exc)
            print(f"error: {exc}", file=sys.stderr)
        except (torch.OutOfMemoryError, MemoryError) as exc:
            self.report(out_of_memory(self.ctx.device if self.ctx else None, self.state.step + 1))
            print(f"error: out of memory: {exc}", file=sys.stderr)
        except Exception as exc:  # a full disk, or a bug: keep the trace in engine.log
            err = unexpected(exc, self.run_dir)
            self.report(err)
            if err.kind == "internal":
                traceback.print_exc()
            else:
                print(f"error: {err}", file=sys.stderr)
        finally:
            self.finish(status, outputs)
            lock.release()
            self.stop.uninstall()
        return code

    def start(self, leftovers: list[Path]) -> None:
        """The config read and checked against the checkpoint, run.json, the accelerator, and
        the `run_started` event."""
        try:
            self.cfg = load_config(self.run_dir / CONFIG_FILE)
        except ConfigError as exc:
            raise EngineError("config", str(exc), "fix the config and start again", 2) from exc
        followed = checkpoints.check_resume_edits(self.run_dir, self.resume, self.cfg)
        tc = self.cfg.train
        if self.is_main:
            recover_final(self.run_dir / FINAL)  # a swap that a crash interrupted
            start_record(self.run_dir, self.argv, tc.max_train_steps)
            self.state.recorded = True
            update_run_json(self.run_dir, method=tc.method)
        self.setup()
        ctx = self.ctx
        if self.is_main:
            self.reporter = open_reporter(tc.report_to, self.run_dir, ctx.log_warning)
            if self.reporter is not None:
                self.events.listeners.append(self.reporter.on_event)
        ctx.events.emit(
            "run_started",
            run_id=self.run_dir.name,
            config=config_to_dict(self.cfg),
            total_steps=tc.max_train_steps,
            device=device_info(ctx.device),
            resumed_from_step=checkpoints.resumed_from(self.run_dir, self.resume),
            world_size=ctx.accelerator.num_processes,
        )
        if self.is_main and leftovers:
            names = ", ".join(str(p.relative_to(self.run_dir)) for p in leftovers)
            ctx.log(f"removed the temp folders of an interrupted save: {names}")
        for change in followed:
            ctx.log(f"changed since the last attempt: {describe(change)}")
        if self.is_main and ctx.device.type == "cuda":
            self.gpu_monitor = GpuMonitor(ctx.events.emit, ctx.device.index or 0).start()

    def report(self, err: EngineError) -> None:
        """The `error` event (the disk reserve given back first: the disk may be full)."""
        if self.is_main:
            self.reserve.release()
        try:
            self.events.emit("error", kind=err.kind, message=str(err), hint=err.hint)
        except OSError:
            pass  # no room even so: the engine's stderr still has the line

    def finish(self, status: str, outputs: dict[str, str | None]) -> None:
        """The `finished` event and run.json's end, whatever happened; each is tried on its own
        (the disk reserve given back first) and a failed write is said on stderr, never raised."""
        if self.gpu_monitor is not None:
            self.gpu_monitor.stop()
        if self.is_main:
            self.reserve.release()
        try:
            if self.is_main and discard_request(self.run_dir):  # came after the last step
                self.events.log("a sample request came too late: the run ended first", "warning")
        except OSError:
            pass  # a full disk: the run's end matters more (below)
        # one duration everywhere (runs.run_duration): this session plus earlier ones
        now, state = time.time(), self.state
        try:
            duration = finish_record(self.run_dir, now) if state.recorded else None
            self.events.emit(
                "finished",
                status=status,
                step=state.step,
                outputs=outputs,
                duration_s=now - state.started if duration is None else duration,
            )
        except OSError as exc:
            print(f"error: cannot write the finished event: {exc}", file=sys.stderr)
        if self.reporter is not None:
            self.reporter.close()
        try:
            if state.recorded:
                finish_record(self.run_dir, now, status=status, step=state.step)
            elif self.is_main:
                update_run_json(self.run_dir, status=status, ended=now, step=state.step)
        except OSError as exc:
            print(f"error: cannot record the end of the run in run.json: {exc}", file=sys.stderr)
        self.events.close()


def run(run_dir: str | Path, resume: str | None = None, argv: list[str] | None = None) -> int:
    return Trainer(Path(run_dir).resolve(), resume, argv or sys.argv).run()
