"""Prepare a run directory and start the engine process for it (torch-free).

The headless CLI and the TUI both start training through `prepare_run` + `spawn_engine`, so the
two behave alike: the engine runs as `python -m engine run RUN_DIR` in its own process session
(stdin from /dev/null, output into RUN_DIR/engine.log), through `accelerate launch` for more than
one process. Closing the TUI or losing SSH does not stop it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.config import BUILTIN_TINY, Config, dump_config, is_local_path
from engine.runs import CONFIG_FILE, LOG_FILE, create_run_dir


def _absolute(value: str | None) -> str | None:
    if value is None or value == BUILTIN_TINY or not is_local_path(value):
        return value
    return str(Path(value).expanduser().resolve())


def resolve_local_paths(cfg: Config) -> Config:
    """The config with every local path made absolute (the engine may run from another cwd)."""
    train = cfg.train.model_copy(
        update={
            "model": _absolute(cfg.train.model),
            "instance_data": _absolute(cfg.train.instance_data),
            "class_data": _absolute(cfg.train.class_data),
            "output_dir": str(Path(cfg.train.output_dir).expanduser().resolve()),
        }
    )
    evaluation = cfg.evaluation.model_copy(
        update={"output_dir": str(Path(cfg.evaluation.output_dir).expanduser().resolve())}
    )
    return cfg.model_copy(update={"train": train, "evaluation": evaluation})


def run_name(cfg: Config) -> str:
    return cfg.train.run_name or cfg.train.instance_prompt


def prepare_run(cfg: Config, template_text: str | None = None) -> Path:
    """Create runs/<run-id>/ under the config's output_dir and write its config.yaml."""
    cfg = resolve_local_paths(cfg)
    run_dir = create_run_dir(cfg.train.output_dir, run_name(cfg))
    (run_dir / CONFIG_FILE).write_text(dump_config(cfg, template_text), encoding="utf-8")
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


def spawn_engine(
    run_dir: str | Path,
    num_processes: int = 1,
    resume: str | None = None,
    accelerate_config: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the engine detached: own session, stdin /dev/null, stdout+stderr -> engine.log."""
    run_dir = Path(run_dir)
    cmd = engine_command(run_dir, num_processes, resume, accelerate_config)
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    full_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The engine must find this checkout's packages wherever it is started from.
    root = str(Path(__file__).resolve().parent.parent)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH")) if p)
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


def accelerate_available() -> bool:
    return shutil.which("accelerate") is not None or _has_module("accelerate")


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
