"""The headless verbs of `dreambooth-tui` and `python -m engine` (and preparing the demo).

The app itself is opened by the console script (dreambooth_tui/), never from here: the engine
does not import tui.

Importing this module is cheap (no torch): the verbs that need torch import it when they run.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine import __version__

ACCELERATE_CONFIG_HELP = (
    "an accelerate config file (several GPUs or machines; sharded modes, DeepSpeed and FSDP, "
    "are refused)"
)
VERBS = (
    "demo",
    "train",
    "check",
    "generate",
    "runs",
    "push-dataset",
    "push-model",
    "export",
    "sample",
    "tiny",
    "run",
    "generate-worker",
)


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# ---------------------------------------------------------------------------- config loading
def load_cli_config(path: str, overrides: dict | None = None):
    """The config file with its relative paths resolved against its own folder (any cwd works);
    None after printing one error line."""
    from engine.config import ConfigError, check_paths, read_config
    from engine.config.paths import config_base, resolve_config_paths

    try:
        cfg, warnings = read_config(path, overrides)
        cfg = resolve_config_paths(cfg, config_base(path))
        check_paths(cfg, source=path)
        from engine.config.checks import preflight  # this machine, the model's family

        preflight(cfg, source=path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return cfg


def train_overrides(args: argparse.Namespace) -> dict:
    train: dict = {}
    if getattr(args, "output_dir", None):  # a command-line path: relative to the cwd
        train["output_dir"] = str(Path(args.output_dir).expanduser().resolve())
    if getattr(args, "max_train_steps", None):
        train["max_train_steps"] = args.max_train_steps
    if getattr(args, "num_processes", None):
        train["num_processes"] = args.num_processes
    return {"train": train} if train else {}


def verb_config(args: argparse.Namespace):
    """The config of `check` and `train`: the file with the command line's overrides, and its
    `--accelerate-config` (check and train refuse it alike); None after one error line."""
    cfg = load_cli_config(args.config, train_overrides(args))
    if cfg is None:
        return None
    if args.accelerate_config:
        from engine.launch import accelerate_config_problem

        problem = accelerate_config_problem(args.accelerate_config)
        if problem:
            fail(problem)
            return None
    return cfg


# ---------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from engine.config import load_config
    from engine.events import EVENTS_FILE
    from engine.launch import prepare_run, spawn_engine
    from engine.resume_rules import latest_matching
    from engine.runs import CONFIG_FILE, LOG_FILE

    cfg = verb_config(args)
    if cfg is None:
        return 2
    resume = None
    if args.resume:
        if args.resume == "latest":
            found, skipped = latest_matching(cfg.train.output_dir, cfg)
            if found is None:
                others = f" ({skipped} of another model or instance data)" if skipped else ""
                return fail(
                    f"{cfg.train.output_dir}: no unfinished run of this model and instance data "
                    f"to resume{others}; --resume latest takes the newest run that is not "
                    "completed and trains the same train.model and train.instance_data"
                )
            run_dir, resume = found, "latest"
        else:
            ckpt = Path(args.resume).expanduser().resolve()
            if not (ckpt / "state.json").exists():
                return fail(
                    f"{args.resume}: not a checkpoint folder (no state.json); pass "
                    "RUN/checkpoints/step-NNNNNN or --resume latest"
                )
            run_dir, resume = ckpt.parent.parent, str(ckpt)
        code = apply_edits(args.config, cfg, run_dir)
        if code:
            return code
        cfg = load_config(run_dir / CONFIG_FILE)
    else:
        template = Path(args.config).read_text(encoding="utf-8")
        run_dir = prepare_run(cfg, template)
    # A resumed run's files hold the earlier attempts: follow only what this engine writes.
    events_from, log_from = _size(run_dir / EVENTS_FILE), _size(run_dir / LOG_FILE)
    proc = spawn_engine(run_dir, cfg.train.num_processes, resume, args.accelerate_config)
    return follow(run_dir, proc, quiet=args.quiet, events_from=events_from, log_from=log_from)


def apply_edits(config_path: str, cfg, run_dir: Path) -> int:
    """Resume with the config file's edits: refuse (exit 2, nothing written) a change the run's
    checkpoint cannot follow; write the others into the run's config.yaml and say each."""
    from engine.config import ConfigError, dump_config, load_config
    from engine.redact import redact
    from engine.resume_rules import as_dict, config_changes, describe, refusal
    from engine.runs import CONFIG_FILE

    path = run_dir / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
        run_cfg = load_config(path)
    except (OSError, ConfigError) as exc:
        return fail(f"{path}: cannot resume this run ({exc})")
    new = cfg.model_copy(
        update={
            "train": cfg.train.model_copy(
                update={"output_dir": run_cfg.train.output_dir, "run_name": run_cfg.train.run_name}
            )
        }
    )
    frozen, followed = config_changes(as_dict(run_cfg), as_dict(new))
    if frozen:
        return fail(f"{config_path}: {refusal(frozen[0], f'run {run_dir.name}')}")
    if followed:
        for change in followed:
            print(f"resume: {describe(change)}", file=sys.stderr)
        path.write_text(redact(dump_config(new, text)), encoding="utf-8")
    return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def follow(
    run_dir: Path,
    proc: subprocess.Popen,
    quiet: bool = False,
    events_from: int = 0,
    log_from: int = 0,
) -> int:
    """Render the run's events (from byte `events_from` on) until the engine exits;
    SIGINT/SIGTERM stop the rank-0 engine (stop = save, as in the app; see
    engine.launch.HeadlessStop). A failure the events do not explain is told in one line from
    the engine's log (from byte `log_from` on), never left only in engine.log."""
    from rich.text import Text

    from engine.launch import HeadlessStop
    from engine.progress import ProgressRenderer
    from engine.runs import LOG_FILE, engine_log_error

    renderer = ProgressRenderer(run_dir, quiet=quiet)
    stop = HeadlessStop(
        run_dir, proc, lambda line: renderer.progress.console.print(Text(line, style="yellow"))
    )
    old = {s: signal.signal(s, stop.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    renderer.tail.offset = events_from
    try:
        with renderer:
            while proc.poll() is None:
                renderer.update()
                stop.deliver()
                time.sleep(0.2)
            renderer.update()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    code = proc.returncode
    if code < 0:
        code = 1
    if code != 0 and not renderer.errors and proc.returncode == -signal.SIGKILL:
        from engine.runs import CRASH_HINT, run_info

        step = run_info(run_dir).step
        print(f"error: the engine was killed at step {step}: {CRASH_HINT}", file=sys.stderr)
    elif code != 0 and not renderer.errors:
        reason = engine_log_error(run_dir, since=log_from) or (
            f"the engine exited with code {proc.returncode}"
        )
        print(f"error: {reason} (the full log: {run_dir / LOG_FILE})", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from engine.train import run

    return run(args.run_dir, args.resume, sys.argv)


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.progress import fmt_duration
    from engine.runs import list_runs, utc_iso

    runs = list_runs(args.output_dir)
    if not runs:
        print(f"no runs under {args.output_dir}")
        return 0
    header = ("run", "status", "step", "loss", "started", "duration")
    rows = [
        (
            r.run_id,
            r.state,
            f"{r.step}/{r.total_steps or '?'}",
            f"{r.last_loss:.4f}" if r.last_loss is not None else "",
            utc_iso(r.started),
            fmt_duration(r.duration) if r.duration is not None else "",
        )
        for r in runs
    ]
    notes = [r.crash_note for r in runs if r.crash_note]  # on stderr: stdout stays the table
    for note in notes:
        print(note, file=sys.stderr)
    if not sys.stdout.isatty():
        # piped: plain tab-separated lines, every field whole (scripts cut them with `cut -f`)
        for row in (header, *rows):
            print("\t".join(row))
        return 0
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    if sum(widths) + 3 * (len(widths) - 1) > console.width:
        # too narrow for one line per run: the id (the handle users pass to --run and
        # --resume) whole on its own line, the rest below it; never cut with "…"
        for run_id, state, step, loss, started, duration in rows:
            console.print(run_id, style="bold", overflow="fold", highlight=False)
            details = [state, step, f"loss {loss}" if loss else "", started, duration]
            console.print("  " + "  ".join(d for d in details if d), overflow="fold")
        return 0
    table = Table(*header, box=box.SIMPLE_HEAD, pad_edge=False)
    for column in table.columns:
        column.no_wrap = True
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreambooth-tui",
        description="DreamBooth fine-tuning of Stable Diffusion: the app (no verb) and "
        "headless verbs.",
    )
    parser.add_argument("--version", action="version", version=f"dreambooth-tui {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    from engine.cli_demo import cmd_demo, cmd_tiny

    p = sub.add_parser("demo", help="open the app on the built-in tiny model (CPU, offline)")
    p.add_argument(
        "config", nargs="?", help="demo config to write/open (default ./dreambooth-demo.yaml)"
    )
    p.add_argument("--images", choices=["auto", "kitty", "sixel", "halfcell", "unicode"])
    p.add_argument("--no-app", action="store_true", help="build the demo, don't open the app")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train from a config (headless, with a progress bar)")
    p.add_argument("config")
    p.add_argument("--output-dir", help="where runs go (overrides train.output_dir)")
    p.add_argument(
        "--resume",
        metavar="latest|PATH",
        help="continue the newest unfinished run, or from a checkpoint folder",
    )
    p.add_argument("--max-train-steps", type=int)
    p.add_argument("--num-processes", type=int, help="processes (GPUs) via accelerate launch")
    p.add_argument("--accelerate-config", help=ACCELERATE_CONFIG_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the result")
    p.set_defaults(func=cmd_train)

    from engine import cli_check

    cli_check.register(sub)  # here: `check` keeps its place in the help, after `train`

    p = sub.add_parser("runs", help="list runs (live and past)")
    p.add_argument("--output-dir", default="runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("tiny", help="write DIR/model (diffusers folder) and DIR/images")
    p.add_argument("dir", nargs="?")
    p.add_argument("--cache", action="store_true", help="build into the demo cache (once)")
    p.add_argument(
        "--shapes", action="store_true", help="builtin:tiny-shapes: pre-trained on shapes (~1 min)"
    )
    p.set_defaults(func=cmd_tiny)

    p = sub.add_parser("run", help="(internal) the engine process for a prepared run dir")
    p.add_argument("run_dir")
    p.add_argument("--resume", help="latest or a checkpoint folder")
    p.set_defaults(func=cmd_run)

    for module in (
        "engine.cli_generate",
        "engine.cli_hub",
        "engine.cli_export",
        "engine.cli_sample",
    ):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None, open_app: Callable[..., int] | None = None) -> int:
    """Run one verb. `open_app(config, demo=, images=)` opens the app after `demo` (the console
    script passes it; `python -m engine` has none)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return fail("no verb: the app is `dreambooth-tui` (or `python -m dreambooth_tui`)")
    from engine.redact import redact_output

    redact_output()  # a token pasted where it does not belong is never printed (engine.log too)
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    args.open_app = open_app
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
