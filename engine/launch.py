"""Prepare a run directory and start the engine process for it (torch-free).

The headless CLI and the TUI both start training through `prepare_run` + `spawn_engine`, so the
two behave alike: the engine runs as `python -m engine run RUN_DIR` in its own process session
(stdin from /dev/null, output into RUN_DIR/engine.log), through `accelerate launch` for more than
one process. Closing the TUI or losing SSH does not stop it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.config import Config, dump_config
from engine.config.paths import resolve_config_paths
from engine.redact import redact
from engine.runs import CONFIG_FILE, LOG_FILE, create_run_dir
from engine.runstop import StopRefusedError, stop_run


def resolve_local_paths(cfg: Config, base: str | Path | None = None) -> Config:
    """The config with every local path made absolute (the engine may run from another cwd):
    relative ones against `base`, the config file's folder (default: the current folder)."""
    return resolve_config_paths(cfg, base if base is not None else Path.cwd())


def run_name(cfg: Config) -> str:
    return cfg.train.run_name or cfg.train.instance_prompt


def prepare_run(
    cfg: Config, template_text: str | None = None, base: str | Path | None = None
) -> Path:
    """Create runs/<run-id>/ under the config's output_dir and write its config.yaml (relative
    paths taken against `base`, the config file's folder; default the current folder)."""
    cfg = resolve_local_paths(cfg, base)
    run_dir = create_run_dir(cfg.train.output_dir, run_name(cfg))
    (run_dir / CONFIG_FILE).write_text(redact(dump_config(cfg, template_text)), encoding="utf-8")
    return run_dir


def engine_command(
    run_dir: str | Path,
    num_processes: int = 1,
    resume: str | None = None,
    accelerate_config: str | None = None,
) -> list[str]:
    """The argv that runs the engine on a prepared run directory."""
    tail = ["-m", "engine", "run", str(run_dir)]
    if resume:
        tail += ["--resume", str(resume)]
    if num_processes <= 1 and not accelerate_config:
        return [sys.executable, *tail]
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config:
        launch += ["--config_file", str(accelerate_config)]
    else:
        launch += [
            "--multi_gpu",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
    if num_processes > 1:
        launch += ["--num_processes", str(num_processes)]
    port = os.environ.get("MASTER_PORT")
    if port:
        launch += ["--main_process_port", port]
    return [*launch, *tail]


def engine_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an engine child process (a run, `generate`, a push): this process's,
    ``extra`` on top, output unbuffered, this checkout importable wherever it starts from."""
    env = {**os.environ, **(extra or {}), "PYTHONUNBUFFERED": "1"}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def spawn_engine(
    run_dir: str | Path,
    num_processes: int = 1,
    resume: str | None = None,
    accelerate_config: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the engine detached: own session, stdin /dev/null, stdout+stderr -> engine.log."""
    run_dir = Path(run_dir).resolve()  # the engine runs in run_dir: a relative one would double
    cmd = engine_command(run_dir, num_processes, resume, accelerate_config)
    full_env = engine_env(env)
    with open(run_dir / LOG_FILE, "ab") as log:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(run_dir),
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )


class HeadlessStop:
    """SIGINT/SIGTERM to the headless CLI, delivered as the app delivers its stop.

    The first signal goes straight to the rank-0 engine (the lock's owner), never to
    `accelerate launch`: its agent would signal every worker and SIGKILL them 30 s later, in the
    middle of a large checkpoint. Rank 0 tells the other ranks at the next step boundary (they
    all agree on the step), writes the checkpoint and exits 0, and the launcher with it. While
    the engine is still starting (no lock yet) the stop waits and is delivered once it holds
    the lock (`pending`, retried by `deliver`). A second signal ends the run at once: the
    engine exits without saving and the launcher takes the other ranks down.
    """

    def __init__(
        self, run_dir: Path, proc: subprocess.Popen, say: Callable[[str], None] = print
    ) -> None:
        self.run_dir, self.proc, self.say = run_dir, proc, say
        self.signum: int | None = None
        self.delivered = self.refused = False

    @property
    def pending(self) -> bool:
        return self.signum is not None and not self.delivered

    def handle(self, signum: int, frame: object = None) -> None:
        try:
            self._handle(signum)
        except StopRefusedError as exc:  # it could reach another process: say so, send nothing
            self._refuse(exc)

    def _refuse(self, exc: StopRefusedError) -> None:
        self.delivered = self.refused = True
        self.say(f"not stopped: {exc}")

    def _handle(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self.deliver()
            if self.refused:
                return
            if self.delivered:
                self.say("stopping: finishing the step and writing a checkpoint (again: quit now)")
            else:
                self.say("stopping once the engine has started (again: quit now)")
            return
        self.say("quitting now, without a checkpoint")
        stop_run(self.run_dir, signum)  # a second signal: the engine exits at once
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the launcher ends the other ranks
        except (ProcessLookupError, PermissionError):
            pass

    def deliver(self) -> None:
        if self.pending and self.proc.poll() is None and self.signum is not None:
            try:
                self.delivered = stop_run(self.run_dir, self.signum)
            except StopRefusedError as exc:
                self._refuse(exc)


# Sharded modes keep each rank's own shard of the weights and optimizer; the engine saves
# checkpoints and final/ from rank 0's local state, so a sharded run would save a fraction of
# the model. Refused (exit 2) until the engine gathers full state dicts.
SHARDED_MODES = {"DEEPSPEED": "DeepSpeed", "FSDP": "FSDP", "MEGATRON_LM": "Megatron-LM"}
SHARDED_REFUSAL = (
    "is not supported: checkpoints and final/ would hold only rank 0's shard of the model; "
    "use several processes without sharding (--num-processes N, or distributed_type: "
    "MULTI_GPU in the accelerate config)"
)


def accelerate_config_problem(path: str | Path) -> str | None:
    """One line saying why this accelerate config file cannot be used, or None when it can."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path).expanduser()
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"{path}: cannot read the accelerate config ({exc.strerror or exc})"
    except YAMLError as exc:
        return f"{path}: not a YAML/JSON accelerate config ({str(exc).splitlines()[0]})"
    if not isinstance(data, dict):
        return f"{path}: not an accelerate config (expected keys such as distributed_type)"
    kind = str(data.get("distributed_type") or "").upper()
    for key, name in (("deepspeed_config", "DEEPSPEED"), ("fsdp_config", "FSDP")):
        if data.get(key) and kind not in SHARDED_MODES:
            kind = name  # a non-empty section turns the mode on, as accelerate does
    if kind in SHARDED_MODES:
        return f"{path}: distributed_type {SHARDED_MODES[kind]} {SHARDED_REFUSAL}"
    return None


def sharded_mode_in_env(environ: dict[str, str] | None = None) -> str | None:
    """The sharded mode `accelerate launch` switched on for this process (its env flags)."""
    environ = os.environ if environ is None else environ
    for flag, name in (
        ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed"),
        ("ACCELERATE_USE_FSDP", "FSDP"),
        ("ACCELERATE_USE_MEGATRON_LM", "Megatron-LM"),
    ):
        if environ.get(flag, "").strip().lower() in ("1", "true", "yes", "y", "on", "t"):
            return name
    return None
